"""Who uses what in docker mode: each user's figures come from their own container's cgroup (the host's, read-only
in the hub), matching what the user was made to do (the default scenario tests the page, metrics and local mode)."""

from __future__ import annotations

from hubfixtures import busy

MB = 1024 * 1024


def test_a_users_container_memory_and_home_are_what_they_did(login, hub):
    with busy(login("user1"), hub) as now:
        figures = now["users"]["user1"]
    print(
        f"\nuser1's container: {figures['memory'] / MB:.0f} MB, peak {figures['peak'] / MB:.0f} MB; {now['collector']}"
    )
    assert figures["memory"] >= 300 * MB and figures["peak"] >= figures["memory"] and figures["home"] >= 50 * MB
    assert figures["running"] and now["collector"]["share_of_a_core"] < 0.01
