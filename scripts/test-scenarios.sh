#!/usr/bin/env bash
# Run molecule scenarios (`molecule test -s NAME` each), all of them even when one fails, then print each
# scenario's time and result, and remove the test images they share (quickjh-test, quickjh-test-*) when all passed.
#   scripts/test-scenarios.sh default team data                   one after another
#   scripts/test-scenarios.sh "default team | remote swarm" data  two lanes side by side, then data
# Each argument is a stage, run once the one before has ended. In a stage, lanes ("|") run side by side, each its
# scenarios in turn: a scenario spends most of its time waiting on what it tests (hubs starting, servers culled,
# nodes down; a 2-core machine sat 70% idle through the containers scenario). The first scenario of a stage builds
# the image the others share (quickjh-test): the other lanes start their first scenario at once, so it must be one
# that needs no such image (remote builds on its own servers), and the rest once that image's scenario has
# converged. Each scenario's output goes to a file, printed whole when the scenario ends, with a line every five
# minutes on what still runs.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # molecule and ansible from the project's venv (make venv)
logs=$(mktemp -d)
# Chromium fails what it is loading (net::ERR_NETWORK_CHANGED) whenever an address comes or goes on this machine:
# each container's start and end does, its veth's IPv6 link-local address, and another lane starts containers while
# a browser test runs. While the scenarios run, new interfaces get no IPv6 (the setting as it was comes back after).
ipv6=/proc/sys/net/ipv6/conf/default/disable_ipv6
was=$(cat "$ipv6" 2>/dev/null || true)
[ -n "$was" ] && [ -w "$ipv6" ] && echo 1 >"$ipv6"
trap 'rm -rf "$logs"; [ -n "$was" ] && [ -w "$ipv6" ] && echo "$was" >"$ipv6"' EXIT

run() {  # run SCENARIO: its output in $logs/SCENARIO.log, then its summary line in $logs/SCENARIO.result
  local started result=passed
  started=$(date +%s)
  molecule test -s "$1" >"$logs/$1.log" 2>&1 || result=FAILED
  printf 'scenario %-10s %5d s  %s\n' "$1" $(($(date +%s) - started)) "$result" >"$logs/$1.result"
}

converged() {  # converged SCENARIO: its converge succeeded, or it has ended (then the others build what they need)
  [ -e "$logs/$1.result" ] || sed 's/\x1b\[[0-9;]*m//g' "$logs/$1.log" 2>/dev/null |
    grep -qE "➜ converge: Executed: Successful"
}

lane() {  # lane FIRST SCENARIO...: the lane's scenarios in turn; those after its first wait for FIRST's converge
  local first=$1 scenario
  shift
  for scenario in "$@"; do
    if [ "$scenario" != "$1" ] && [ "$scenario" != "$first" ]; then
      until converged "$first"; do sleep 5; done
    fi
    run "$scenario"
  done
}

report() {  # report SCENARIO...: print each one that has ended and was not printed yet; 1 while any still runs
  local scenario running=0
  for scenario in "$@"; do
    if [ -e "$logs/$scenario.result" ] && [ ! -e "$logs/$scenario.printed" ]; then
      cat "$logs/$scenario.log"
      sed 's/^scenario /test-scenarios: ended: /' "$logs/$scenario.result"  # the summary's line comes at the end
      touch "$logs/$scenario.printed"
    fi
    [ -e "$logs/$scenario.printed" ] || running=1
  done
  return "$running"
}

order=()
for stage in "$@"; do
  IFS='|' read -ra lanes <<<"$stage"
  read -ra first <<<"${lanes[0]}"
  scenarios=()
  for each in "${lanes[@]}"; do
    read -ra names <<<"$each"
    scenarios+=("${names[@]}")
    lane "${first[0]}" "${names[@]}" &
  done
  order+=("${scenarios[@]}")
  started=$(date +%s)
  until report "${scenarios[@]}"; do
    sleep 10
    if [ $((($(date +%s) - started) % 300)) -lt 10 ]; then
      running=()
      for scenario in "${scenarios[@]}"; do
        [ -e "$logs/$scenario.log" ] && [ ! -e "$logs/$scenario.result" ] && running+=("$scenario")
      done
      echo "test-scenarios: $(($(date +%s) - started)) s into the stage; running: ${running[*]}"
    fi
  done
  wait
done

summary=$(for scenario in "${order[@]}"; do cat "$logs/$scenario.result"; done)
status=0
if grep -q ' FAILED$' <<<"$summary"; then
  status=1
  echo "A scenario failed: the shared test image quickjh-test stays, so the next run does not build it again."
else
  for images in 'quickjh-test-*' quickjh-test; do  # profiles' images first: they are built on the hub's
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$images" | xargs -r docker image rm >/dev/null
  done
fi
echo "$summary"
exit "$status"
