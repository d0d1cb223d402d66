#!/bin/bash
# Entry point of the quickjh image (tini is PID 1): bring back the accounts saved on the state volume, keep saving
# them while the hub runs (users added in a terminal, passwords changed with `passwd`), save once more at stop.
set -u
/usr/local/sbin/quickjh-users restore
( while sleep 10; do /usr/local/sbin/quickjh-users save; done ) &
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
