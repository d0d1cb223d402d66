#!/bin/sh
# quickjh: `passwd` for users whose server runs with no new privileges (every non-admin in local mode, everyone in
# docker mode), where the real passwd cannot change the hub's password: it says where to change it. Others (root,
# admins in local mode) get the real passwd.
if [ "$(id -u)" -ne 0 ] && grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status; then
  echo "passwd: change your password on the hub's page: ${JUPYTERHUB_BASE_URL:-/}hub/password" >&2
  echo "        (JupyterLab: File > Hub Control Panel, then 'Change my password')" >&2
  exit 1
fi
exec /usr/bin/passwd "$@"
