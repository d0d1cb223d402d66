"""What a person sees, in real Chromium (scripts/browser_check.py, which an operator runs against any hub): the
login form refusing a wrong password, JupyterLab, a cell typed and run with Shift+Enter, a terminal, the logout."""

from __future__ import annotations

from browser_check import round_trip


def test_a_person_logs_in_runs_a_cell_opens_a_terminal_and_logs_out_in_chromium(hub_url, passwords):
    times = round_trip(hub_url, "user1", passwords["user1"], insecure=True)  # the role's self-signed certificate
    print("\nbrowser: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in times.items()))
