#!/usr/bin/env python3
"""Benchmark of a team arriving together: N users at once, each logs in as a browser does, starts the server,
starts a kernel over its websocket, runs code, checks the output and stops (molecule/shared/crowd.py). First one
user alone, 5 times. Prints ok/failed, the wall time, p50/p95 of login, spawn and login-to-output, and the peak
memory of the hub process and of the whole container. It measures quickjh's hub (bench/benchhub.py), the same
with quickjh_spawner docker (a container per user), then the bare hub of the seed recipe built from the same base
and versions (bench/barehub.py), and removes them. `swarm` measures quickjh_spawner swarm on the swarm scenario's
nodes (this machine's Docker and two workers: `molecule create -s swarm && molecule converge -s swarm` first), as a
hub of its own beside the scenario's; it is not among the defaults.

  .venv/bin/python bench/load.py [quickjh|docker|swarm|bare] [COUNTS...]   (default: quickjh, docker and bare,
                                                                           20 and 50 users; needs `make deploy`'s
                                                                           set-up)
"""

from __future__ import annotations

import glob
import os
import statistics
import sys
import threading
from pathlib import Path

import docker

import barehub
from benchhub import CERT, URL, clean, playbook, users

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "molecule" / "shared"))
from crowd import arrive_together, summary
from hubclient import wait_healthy


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

    def stop(self) -> str:
        self.done.set()
        self.thread.join(5)
        pid = next(p[0] for p in self.container.top(ps_args="-o pid,args")["Processes"] if "bin/jupyterhub " in p[1])
        peak = next(
            line.split()[1]
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        )  # the host's view of that process (the bench runs beside Docker)
        return f"hub process peak {int(peak) >> 10} MiB, container peak {self.peak >> 20} MiB"


def measure(
    label: str, url: str, verify: bool | str, container: str, passwords: dict[str, str], counts: list[int]
) -> None:
    wait_healthy(url)
    hub = docker.from_env().containers.get(container)
    first = dict([next(iter(passwords.items()))])
    alone = [arrive_together(url, verify, first)[0][0] for _ in range(5)]
    print(
        f"{label}, one user alone, 5 times: login to output median "
        f"{statistics.median(a.output or float('inf') for a in alone):.1f} s "
        f"({', '.join(f'{a.output:.1f}' if a.ok else a.error for a in alone)})",
        flush=True,
    )
    for count in counts:
        memory = PeakMemory(hub)
        arrivals, wall = arrive_together(url, verify, dict(list(passwords.items())[:count]))
        print(f"{label}, {count} users at once: {summary(arrivals, wall)}; {memory.stop()}", flush=True)
        for failed in (a for a in arrivals if not a.ok):
            print(f"  {failed.name}: {failed.error}", flush=True)


def main(args: list[str]) -> None:
    hubs = [a for a in args if a in ("quickjh", "docker", "swarm", "bare")] or ["quickjh", "docker", "bare"]
    counts = [int(a) for a in args if a.isdigit()] or [20, 50]
    listed = users(max(counts))
    passwords = {u["name"]: u["password"] for u in listed}
    try:
        if "quickjh" in hubs:
            clean()
            playbook(listed)
            measure("quickjh", URL, CERT, "quickjh-bench", passwords, counts)
            clean()
        if "docker" in hubs:
            clean()
            playbook(listed, quickjh_spawner="docker")
            measure("quickjh docker mode", URL, CERT, "quickjh-bench", passwords, counts)
            clean()
        if "swarm" in hubs:
            # the newest: an older run's folder holds a key its servers no longer accept
            inventories = sorted(
                glob.glob(str(Path.home() / ".ansible/tmp/molecule.*.swarm/inventory")), key=os.path.getmtime
            )[::-1]
            if not inventories:
                sys.exit("swarm: no swarm scenario here; first: molecule create -s swarm && molecule converge -s swarm")
            clean()
            swarm = {
                "quickjh_spawner": "swarm",
                "quickjh_metrics": False,
                "quickjh_swarm_subnet": "10.214.0.0/24",  # a subnet of its own beside the scenario's hub
                # docker mode's settings above (the role's defaults), not the scenario's limits and profile
                "quickjh_user_mem_limit": "",
                "quickjh_user_cpus": 0,
                "quickjh_user_max_processes": 512,
                "quickjh_profiles": [],
            }
            playbook(listed, inventories[0], **swarm)
            measure("quickjh swarm mode", URL, CERT, "quickjh-bench", passwords, counts)
            clean()
        if "bare" in hubs:
            barehub.start(passwords)
            measure("bare hub", barehub.URL, False, barehub.NAME, passwords, counts)
    finally:
        clean(image=True)
        barehub.stop(image=True)


if __name__ == "__main__":
    main(sys.argv[1:])
