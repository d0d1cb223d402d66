#!/usr/bin/env bash
# Run molecule scenarios one after another (`molecule test -s NAME` each), all of them even when one fails, then
# print each scenario's time and result, and remove the test images they share (quickjh-test, quickjh-test-*) when
# all passed.
#   scripts/test-scenarios.sh default team data
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # molecule and ansible from the project's venv (make venv)
summary=()
status=0
for scenario in "$@"; do
  started=$(date +%s)
  if molecule test -s "$scenario"; then result=passed; else result=FAILED; status=1; fi
  summary+=("$(printf 'scenario %-8s %5d s  %s' "$scenario" $(($(date +%s) - started)) "$result")")
done
if [ "$status" -eq 0 ]; then
  for images in 'quickjh-test-*' quickjh-test; do  # profiles' images first: they are built on the hub's
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$images" | xargs -r docker image rm >/dev/null
  done
else
  echo "A scenario failed: the shared test image quickjh-test stays, so the next run does not build it again."
fi
printf '%s\n' "${summary[@]}"
exit "$status"
