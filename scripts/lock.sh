#!/usr/bin/env bash
# Make the lock file of the hub image's Python packages for each JupyterHub version given (default: the role's),
# resolved where they run: in a container of the role's base image, with its Debian Python, as the image's venv.
#   scripts/lock.sh [VERSION ...]        (make lock; writes roles/quickjh/files/locks/jupyterhub-VERSION.txt, and
#                                         for JupyterHub 6 and later jupyterhub-VERSION-collaboration.txt: what
#                                         quickjh_collaboration adds, resolved against the first)
# The image installs exactly those pins (pip --no-deps), so one commit gives one set of packages on every host and
# every day; run this again to take newer releases (security fixes), review the diff, commit it.
# LOCKS=DIR writes the files there instead (the default scenario's test of this script).
set -euo pipefail
cd "$(dirname "$0")/.."
defaults=roles/quickjh/defaults/main.yml
base=$(sed -n 's/^quickjh_base_image: *"\{0,1\}\([^" ]*\)"\{0,1\}.*/\1/p' "$defaults")
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  versions=("$(sed -n 's/^quickjh_jupyterhub_version: *"\{0,1\}\([^" ]*\)"\{0,1\}.*/\1/p' "$defaults")")
fi
# What the image's venv holds besides JupyterHub (one list: the Dockerfile installs the lock made from it), and the
# floors past known advisories (jupyter-server 2.20, JupyterLab 4.6.2).
# The logins of quickjh_auth (oauthenticator, ldapauthenticator) and the QR codes of quickjh_otp (segno) too.
packages="jupyterlab>=4.6.2 notebook jupyter-server>=2.20 jupyterhub-idle-culler jupyter-resource-usage dockerspawner"
packages+=" oauthenticator jupyterhub-ldapauthenticator segno"
collaboration="jupyter-collaboration"
for version in "${versions[@]}"; do
  locks=$(realpath "${LOCKS:-roles/quickjh/files/locks}")
  out=$locks/jupyterhub-$version.txt
  extra=$locks/jupyterhub-$version-collaboration.txt
  docker run --rm -i -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/host-ca.crt:ro \
    -v "$locks:/locks" \
    -e PIP_CERT=/etc/ssl/certs/host-ca.crt -e PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ${https_proxy:+-e https_proxy="$https_proxy"} ${http_proxy:+-e http_proxy="$http_proxy"} \
    "$base" bash -euc "
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv python3-pip ca-certificates >/dev/null
      python3 -m venv --system-site-packages /v
      /v/bin/pip install -q jupyterhub==$version $packages >&2
      echo '# Python packages of the hub image for JupyterHub $version (scripts/lock.sh: make lock), resolved on $base'
      echo \"# with \$(python3 --version) on \$(date -u +%Y-%m-%d).\"
      /v/bin/pip freeze --local | grep -v '^rfc3987-syntax==' | tee /tmp/base.txt
      if [ ${version%%.*} -ge 6 ]; then
        /v/bin/pip install -q -c /tmp/base.txt $collaboration >&2
        { echo '# jupyter-collaboration and what it adds to jupyterhub-$version.txt (scripts/lock.sh: make lock): installed with'
          echo '# quickjh_collaboration, resolved against that lock'\''s pins.'
          /v/bin/pip freeze --local | grep -v '^rfc3987-syntax==' | grep -vxF -f /tmp/base.txt; } >/locks/${extra##*/}.new
      fi
    " >"$out.new"
  mv "$out.new" "$out"
  echo "$out: $(grep -c '==' "$out") packages"
  if [ -f "$extra.new" ]; then mv "$extra.new" "$extra" && echo "$extra: $(grep -c '==' "$extra") packages"; fi
done
