#!/bin/bash
# Entry point of the quickjh image (tini is PID 1): bring back the accounts saved on the state volume, keep saving
# each change while the hub runs (users added in a terminal, passwords changed with `passwd`), save once more at stop.
# Job control (-m): without it bash starts background commands with SIGINT ignored, the hub's services inherit
# that, and the hub's stop then waits on them until Docker kills it (and the save at stop below never runs).
set -um
# The hub's state (database, cookie secret, tokens, saved accounts) is root's alone, on volumes made before too.
chmod 700 "$QUICKJH_STATE"  # QUICKJH_STATE: the image's ENV
# A restore that fails stops the start: the saver below would otherwise overwrite the saved accounts.
/usr/local/sbin/quickjh-users restore || exit 1
# The token quickjh-users uses to tell the hub about admins and removed users (read by jupyterhub_config.py).
token=$QUICKJH_STATE/quickjh-sync.token
if [ ! -s "$token" ]; then
  (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' > "$token")
fi
# A new image (another JupyterHub, base image or package set; the role passes its tag): copy the hub database
# aside, then bring its schema up to date (upgrade-db changes nothing when it already is). A failed upgrade stops
# here; the restarts that follow keep the first copy, the one from before any upgrade was tried.
db=$QUICKJH_STATE/jupyterhub.sqlite
stamp=$QUICKJH_STATE/quickjh-image
if [ -s "$db" ] && [ "$(cat "$stamp" 2>/dev/null)" != "${QUICKJH_IMAGE:-}" ]; then
  before="before-${QUICKJH_IMAGE##*:}.sqlite"
  if ! compgen -G "$QUICKJH_STATE/db-backups/*-$before" >/dev/null; then
    copy=$QUICKJH_STATE/db-backups/jupyterhub-$(date -u +%Y%m%dT%H%M%SZ)-$before
    echo "quickjh: image $(cat "$stamp" 2>/dev/null || echo unknown) -> ${QUICKJH_IMAGE:-unknown}: database copied to $copy"
    /usr/local/sbin/quickjh-backup copy-db "$copy" || exit 1
  fi
  jupyterhub upgrade-db --config /etc/jupyterhub/jupyterhub_config.py || exit 1
fi
echo "${QUICKJH_IMAGE:-}" > "$stamp"
# A proxy pid file left by the container's previous life (a crash, a kill -9) names a PID that, in this new
# container, is some other process: JupyterHub would kill it as a stale proxy, and this start would fail.
rm -f "$QUICKJH_STATE/jupyterhub-proxy.pid"
/usr/local/sbin/quickjh-users watch &
saver=$!
"$@" &
hub=$!
trap 'kill -TERM "$hub" 2>/dev/null' TERM INT
status=0
while kill -0 "$hub" 2>/dev/null; do
  wait "$hub"
  status=$?
done
kill "$saver" 2>/dev/null
/usr/local/sbin/quickjh-users save
exit "$status"
