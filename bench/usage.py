#!/usr/bin/env python3
"""Benchmark of the usage collector's own cost (quickjh-usage collect): a hub with 50 users, idle, in local mode,
measured over MINUTES minutes from the collector's CPU time (utime + stime of it and of its du children, from the
host's /proc), as a share of one core. Runs under bench-only names (bench/benchhub.py) and removes them at the end.

  .venv/bin/python bench/usage.py [USERS] [MINUTES]      (default 50 users, 11 minutes: one du of the homes in it)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchhub import clean, playbook, users


def collector_ticks() -> tuple[int, int]:
    """The collector's CPU ticks (its own and its children's, du's) and the clock's ticks per second."""
    pid = subprocess.run(
        ["docker", "exec", "quickjh-bench", "pgrep", "-f", "quickjh-usage collect"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    stat = subprocess.run(
        ["docker", "exec", "quickjh-bench", "cat", f"/proc/{pid}/stat"], capture_output=True, text=True, check=True
    ).stdout
    fields = stat.rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]), os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 50
    minutes = float(argv[1]) if len(argv) > 1 else 11
    clean()
    try:
        wall, _, recap = playbook(users(count))
        print(f"hub with {count} users deployed in {wall:.0f} s ({recap})")
        time.sleep(40)  # past the first sample and the first du
        before, hz = collector_ticks()
        started = time.monotonic()
        time.sleep(minutes * 60)
        after, _ = collector_ticks()
        elapsed = time.monotonic() - started
        share = (after - before) / hz / elapsed
        print(f"collector: {(after - before) / hz:.2f} s of CPU in {elapsed:.0f} s = {share * 100:.3f}% of a core")
    finally:
        clean()


if __name__ == "__main__":
    main(sys.argv[1:])
