"""Who uses what in docker mode: each user's figures come from their own container's cgroup (the host's, read-only
in the hub), matching what the user was made to do (the default scenario tests the page, metrics and local mode)."""

from __future__ import annotations

import json
import time

MB = 1024 * 1024


def test_a_users_container_memory_and_home_are_what_they_did(login, hub):
    user1 = login("user1")
    with user1.kernel() as execute:
        execute("held = bytearray(300 * 1024 * 1024)\nfor i in range(0, len(held), 4096): held[i] = 1")
        execute("open('fifty.bin', 'wb').write(b'x' * 50 * 1024 * 1024)")
        hub().exec_run(["quickjh-usage", "homes"])
        before = json.loads(hub().exec_run(["quickjh-usage", "--json"]).output).get("at")
        deadline = time.monotonic() + 75
        while (now := json.loads(hub().exec_run(["quickjh-usage", "--json"]).output)).get("at") == before:
            assert time.monotonic() < deadline, "no new sample"
            time.sleep(2)
    user1.run("import os; os.remove('fifty.bin')")
    figures = now["users"]["user1"]
    print(
        f"\nuser1's container: {figures['memory'] / MB:.0f} MB, peak {figures['peak'] / MB:.0f} MB; {now['collector']}"
    )
    assert figures["memory"] >= 300 * MB and figures["peak"] >= figures["memory"] and figures["home"] >= 50 * MB
    assert figures["running"] and now["collector"]["share_of_a_core"] < 0.01
