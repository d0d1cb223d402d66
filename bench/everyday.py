#!/usr/bin/env python3
"""Benchmark of the everyday run: a re-run with nothing to change, and a config-only change (quickjh_default_url
flipped between /lab and /tree: a restart, no rebuild) until the hub answers again, each several times, with the
tasks that took the longest. Runs on this machine's Docker under bench-only names (container quickjh-bench, port
18100, its own volumes and folders; bench/benchhub.py) and removes them at the end.

  .venv/bin/python bench/everyday.py [RUNS]      (default 5; needs `make deploy`'s set-up)
"""

from __future__ import annotations

import re
import statistics
import sys
import time

import requests
import urllib3

from benchhub import URL, clean, run_playbook, users

urllib3.disable_warnings()


def run(**settings) -> tuple[float, str, dict[str, float]]:
    """One playbook run: its wall time, its recap and each task's time (Ansible's profile_tasks)."""
    wall, stdout = run_playbook(users(2), **settings)
    tasks = {name.strip(): float(seconds) for name, seconds in re.findall(r"\n(\S.*?) -+ ([0-9.]+)s", stdout)}
    return wall, re.search(r"ok=\d+ +changed=\d+", stdout).group(0), tasks


def answers() -> bool:
    try:
        return requests.get(f"{URL}/hub/health", timeout=5, verify=False).status_code == 200
    except requests.RequestException:
        return False


def summary(label: str, walls: list[float], recaps: list[str], tasks: list[dict[str, float]]) -> None:
    print(
        f"{label}: median {statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f}); {recaps[-1]}"
    )
    names = {name for run_tasks in tasks for name in run_tasks}
    medians = {name: statistics.median(t.get(name, 0.0) for t in tasks) for name in names}
    for name, seconds in sorted(medians.items(), key=lambda item: -item[1])[:8]:
        print(f"    {seconds:5.2f} s  {name}")
    print(f"    {sum(medians.values()):5.2f} s  every task together")


def main(runs: int) -> None:
    clean()
    try:
        run_playbook(users(2))  # the first deployment (and the image, when it is not there)
        time.sleep(35)  # past Docker's first health check: the no-op then finds the hub healthy, as day to day
        noop = [run() for _ in range(runs)]
        summary(
            "re-run with nothing to change", [w for w, _, _ in noop], [r for _, r, _ in noop], [t for _, _, t in noop]
        )
        changes, healthy = [], []
        for i in range(runs):
            started = time.monotonic()
            changes.append(run(quickjh_default_url="/tree" if i % 2 == 0 else "/lab"))
            while not answers():
                time.sleep(0.1)
            healthy.append(time.monotonic() - started)
        summary(
            "config-only change, run",
            [w for w, _, _ in changes],
            [r for _, r, _ in changes],
            [t for _, _, t in changes],
        )
        print(
            f"config-only change, until the hub answers: median {statistics.median(healthy):.1f} s "
            f"(min {min(healthy):.1f}, max {max(healthy):.1f})"
        )
    finally:
        clean()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
