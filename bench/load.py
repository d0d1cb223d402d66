#!/usr/bin/env python3
"""Benchmark of a team arriving together: N users at once, each logs in as a browser does, starts the server,
starts a kernel over its websocket, runs code, checks the output and stops (molecule/shared/crowd.py). First one
user alone, 5 times. Prints ok/failed, the wall time, p50/p95 of login, spawn and login-to-output, and the peak
memory of the hub process and of the whole container. Runs on the bench hub (bench/benchhub.py), removed at the end.

  .venv/bin/python bench/load.py [COUNTS...]      (default: 20 50; needs `make deploy`'s set-up)
"""
from __future__ import annotations

import statistics
import sys
import threading
from pathlib import Path

import docker

from benchhub import CERT, URL, clean, playbook, users

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "molecule" / "shared"))
from crowd import arrive_together, summary  # noqa: E402


class PeakMemory:
    """The container's peak memory while it runs (Docker's stats stream), and the hub process's own (VmHWM)."""

    def __init__(self, container) -> None:
        self.container, self.peak, self.done = container, 0, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        for stats in self.container.stats(decode=True):
            self.peak = max(self.peak, stats.get("memory_stats", {}).get("usage", 0))
            if self.done.is_set():
                return

    def hub(self) -> str:
        out = self.container.exec_run(["sh", "-c", "grep VmHWM /proc/$(pgrep -of 'bin/jupyterhub ')/status"]).output
        return out.decode().split(":")[-1].strip()

    def stop(self) -> str:
        self.done.set()
        self.thread.join(5)
        return f"hub process peak {self.hub()}, container peak {self.peak / 2**20:.0f} MiB"


def main(counts: list[int]) -> None:
    listed = users(max(counts))
    passwords = {u["name"]: u["password"] for u in listed}
    try:
        clean()
        playbook(listed)
        hub = docker.from_env().containers.get("quickjh-bench")
        alone = [arrive_together(URL, CERT, dict([next(iter(passwords.items()))]))[0][0] for _ in range(5)]
        print(f"one user alone, 5 times: login to output median "
              f"{statistics.median(a.output or float('nan') for a in alone):.1f} s "
              f"({', '.join(f'{a.output:.1f}' if a.ok else a.error for a in alone)})", flush=True)
        for count in counts:
            memory = PeakMemory(hub)
            arrivals, wall = arrive_together(URL, CERT, dict(list(passwords.items())[:count]))
            print(f"{count} users at once: {summary(arrivals, wall)}; {memory.stop()}", flush=True)
            for failed in (a for a in arrivals if not a.ok):
                print(f"  {failed.name}: {failed.error}", flush=True)
    finally:
        clean(image=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [20, 50])
