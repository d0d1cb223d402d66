#!/bin/bash
# Entry point of a user's own container (quickjh_spawner: docker; tini is PID 1). The hub starts it as root with
# the user's account in the environment (QUICKJH_USER, QUICKJH_UID, QUICKJH_GID, QUICKJH_GROUPS "group:gid ...").
# Root only writes the container's own account files and /run/user/UID, then gives up every privilege for good
# (no capabilities, no new privileges: sudo and setuid programs do nothing) and runs the user's server as the
# user. The home (the user's folder of the home volume, mounted at /home/NAME) is touched only as the user.
set -eu
if [ "${1:-}" = --as-user ]; then
  shift
  # As the user: ~/notebook, and the user's site-packages (so a first `pip install` imports in a running kernel),
  # and ~/notebook/NAME for each shared folder mounted here (those of the user's groups).
  site=$(python3 -c 'import site; print(site.getusersitepackages())')
  mkdir -p "$HOME/notebook" "$site" 2>/dev/null || true
  for folder in /srv/shared/*/; do
    [ -d "$folder" ] && ln -s "${folder%/}" "$HOME/notebook/$(basename "$folder")" 2>/dev/null || true
  done
  cd "$HOME"
  exec "$@"
fi
name=$QUICKJH_USER uid=$QUICKJH_UID gid=$QUICKJH_GID
[[ $name =~ ^[a-z_][a-z0-9_-]*$ && $uid =~ ^[0-9]+$ && $gid =~ ^[0-9]+$ && $uid -ge 1000 ]] || {
  echo "quickjh-single: not a hub user: ${name@Q} ${uid@Q} ${gid@Q}" >&2; exit 1; }
others=()
for pair in ${QUICKJH_GROUPS:-}; do
  group=${pair%:*} id=${pair#*:}
  getent group "$group" >/dev/null || groupadd -g "$id" "$group"
  [ "$id" = "$gid" ] || others+=("$group")
done
getent group "$gid" >/dev/null || groupadd -g "$gid" "$name"
useradd -M -N -u "$uid" -g "$gid" -d "/home/$name" -s /bin/bash ${others[@]:+-G "$(IFS=,; echo "${others[*]}")"} "$name"
install -d -m 700 -o "$uid" -g "$gid" "/run/user/$uid"
exec setpriv --reuid="$uid" --regid="$gid" --init-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- \
  env HOME="/home/$name" USER="$name" LOGNAME="$name" SHELL=/bin/bash \
  XDG_RUNTIME_DIR="/run/user/$uid" JUPYTER_RUNTIME_DIR="/run/user/$uid" "$0" --as-user "$@"
