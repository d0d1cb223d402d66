"""The load figures' arithmetic (molecule/shared/crowd.py): nearest-rank percentiles and the summary line."""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "molecule" / "shared"))
from crowd import Arrival, percentile, summary


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 0.5) == 10
    assert percentile(values, 0.95) == 19
    assert percentile([3.0], 0.95) == 3
    assert math.isnan(percentile([], 0.5))


def test_summary_counts_only_users_who_saw_their_output():
    arrivals = [Arrival("a", 0.1, 1.0, 2.0), Arrival("b", 0.2, None, None, error="TimeoutError: x")]
    line = summary(arrivals, 2.5)
    assert line.startswith("1/2 ok, wall 2.5 s, login p50 0.1 s p95 0.2 s, spawn p50 1.0 s")
