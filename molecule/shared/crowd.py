"""Users arriving together, as a class or a workshop does: each logs in through the form, starts the server,
starts a kernel over its websocket, runs code, checks what it printed, and stops. Used by bench/load.py and by a
test that runs a few users at once."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hubclient import HubUser

CODE, EXPECTED = "print(6 * 7)", "42"


@dataclass
class Arrival:
    """One user's times, in seconds from the moment they all started (None: that step was not reached)."""

    name: str
    login: float | None = None
    spawn: float | None = None  # the server's start: asked for, until ready and opened
    output: float | None = None  # from the login form to the code's output
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.output is not None and not self.error


def arrive(base: str, verify: bool | str, name: str, password: str, barrier: threading.Barrier) -> Arrival:
    arrival = Arrival(name)
    user = HubUser(base, name, verify=verify)
    barrier.wait(timeout=120)
    began = time.monotonic()
    try:
        user.login(password)
        arrival.login = time.monotonic() - began
        asked = time.monotonic()
        user.start_server(timeout=300)
        arrival.spawn = time.monotonic() - asked
        printed = user.run(CODE, timeout=120).strip()
        if printed != EXPECTED:
            raise AssertionError(f"the kernel printed {printed!r}")
        arrival.output = time.monotonic() - began
    except Exception as failed:
        arrival.error = f"{type(failed).__name__}: {failed}"[:300]
    finally:
        with contextlib.suppress(Exception):
            user.stop_server()
    return arrival


def arrive_together(base: str, verify: bool | str, passwords: dict[str, str]) -> tuple[list[Arrival], float]:
    """All these users at once; return each one's times and the wall time until the last one's output."""
    barrier = threading.Barrier(len(passwords))
    with ThreadPoolExecutor(len(passwords)) as pool:
        started = time.monotonic()
        futures = [pool.submit(arrive, base, verify, name, pw, barrier) for name, pw in passwords.items()]
        arrivals = [f.result() for f in futures]
    outputs = [a.output for a in arrivals if a.output is not None]
    return arrivals, max(outputs) if outputs else time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share 0.5: the median) of values, or NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summary(arrivals: list[Arrival], wall: float) -> str:
    """One line: how many succeeded, the wall time, p50/p95 of each step."""
    parts = [f"{sum(a.ok for a in arrivals)}/{len(arrivals)} ok", f"wall {wall:.1f} s"]
    for step in ("login", "spawn", "output"):
        values = [getattr(a, step) for a in arrivals if getattr(a, step) is not None]
        parts.append(f"{step} p50 {percentile(values, 0.5):.1f} s p95 {percentile(values, 0.95):.1f} s")
    return ", ".join(parts)
