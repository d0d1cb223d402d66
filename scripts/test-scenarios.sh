#!/usr/bin/env bash
# Run molecule scenarios one after another (`molecule test -s NAME` each), all of them even when one fails, then
# print each scenario's time and result, and remove the test image they share (quickjh-test) when all passed.
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
  docker image ls --format '{{.Repository}}:{{.Tag}}' quickjh-test | xargs -r docker image rm >/dev/null
else
  echo "A scenario failed: the shared test image quickjh-test stays, so the next run does not build it again."
fi
printf '%s\n' "${summary[@]}"
exit "$status"
