#!/bin/bash
# quickjh-adduser NAME: add a hub user from an admin's terminal (`sudo quickjh-adduser NAME`), then set the password.
# The account gets a UID no one else's files hold, a 700 home with ~/notebook, and survives container re-creation.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: sudo quickjh-adduser NAME" >&2
  exit 2
fi
/usr/local/sbin/quickjh-users add "$1"
passwd "$1"
/usr/local/sbin/quickjh-users save
