"""A team arriving together: five users log in, start their servers and run code in kernels at the same moment.
bench/load.py measures 20 and 50; this catches a regression (a dead kernel, a 5xx, a start gone slow) in CI."""

from __future__ import annotations

from crowd import arrive_together, summary


def test_five_users_at_once_all_run_code(hub_url, verify, passwords):
    crowd = {name: pw for name, pw in passwords.items() if name.startswith("crowd")}
    assert len(crowd) == 5
    arrivals, wall = arrive_together(hub_url, verify, crowd)
    print(f"5 users at once: {summary(arrivals, wall)}")
    assert [(a.name, a.error) for a in arrivals if not a.ok] == []
    assert wall < 45  # about 8 s on 2 cores; a minute means users wait on something that broke
