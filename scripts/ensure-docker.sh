#!/usr/bin/env bash
# Make sure a Docker daemon answers on this machine: install docker.io (Debian/Ubuntu, as root) and start dockerd
# in the background when none does. Used by `make` and by CI, which start on bare machines.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "No Docker daemon answers and I can only install one as root on Debian/Ubuntu: install Docker Engine." >&2
    exit 1
  fi
  echo "Installing docker.io ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null && docker info >/dev/null 2>&1; then
  exit 0
fi
echo "Starting dockerd in the background (log: /var/log/dockerd.log) ..."
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
