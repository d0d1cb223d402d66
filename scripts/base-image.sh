#!/usr/bin/env bash
# Make sure the base image named by the role's default (quickjh_base_image) exists in the local Docker.
# Where it is missing and cannot be pulled (no registry reachable), build it with debootstrap and `docker import`
# under that very tag, so tests run the same defaults users get.
set -euo pipefail

image=${1:-$(sed -n 's/^quickjh_base_image: *"\{0,1\}\([^" ]*\)"\{0,1\}.*/\1/p' "$(dirname "$0")/../roles/quickjh/defaults/main.yml")}
suite=${image#*:}          # debian:trixie-slim -> trixie-slim
suite=${suite%-slim}       # -> trixie

if docker image inspect "$image" >/dev/null 2>&1; then
  exit 0
fi
if timeout 60 docker pull "$image" >/dev/null 2>&1; then
  exit 0
fi
case "$image" in
  debian:*) ;;
  *) echo "Cannot pull $image and can only build debian:* images locally." >&2; exit 1 ;;
esac
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
echo "Building $image locally with debootstrap ($suite) ..."
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase "$suite" "$root" >/dev/null
# Match the official slim images (debuerreotype's slimify): dpkg leaves out docs, man pages and translations, apt
# keeps no package files, and neither is in the image now.
cat >"$root"/etc/dpkg/dpkg.cfg.d/docker <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
cat >"$root"/etc/apt/apt.conf.d/docker-clean <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
find "$root"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* "$root"/usr/share/lintian/*
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
echo "Built $image"
