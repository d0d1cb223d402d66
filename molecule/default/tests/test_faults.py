"""Faults: the hub process killed, a build that fails. The hub comes back by itself, or keeps serving untouched."""
from __future__ import annotations

import json
import time

from hubfixtures import converge, wait_healthy


def test_the_hub_killed_with_sigkill_comes_back_by_itself_with_users_files(login, hub, hub_url):
    user1 = login("user1")
    user1.run("open('before-kill.txt', 'w').write('still mine')")
    before = hub().attrs["RestartCount"]
    killed = hub().exec_run(["pkill", "-KILL", "-f", "^/opt/jupyterhub/bin/python3 /opt/jupyterhub/bin/jupyterhub "])
    assert killed.exit_code == 0, killed.output
    started = time.monotonic()
    time.sleep(1)
    wait_healthy(hub_url)
    print(f"hub killed with SIGKILL: answering again after {time.monotonic() - started:.1f} s")
    assert hub().attrs["RestartCount"] == before + 1  # the restart policy, not a playbook run, brought it back
    again = login("user1")
    assert again.run("print(open('before-kill.txt').read())").strip() == "still mine"


def test_a_build_that_fails_names_the_cause_and_leaves_the_hub_serving(settings, login, hub, hub_url):
    user1 = login("user1")
    container = hub()
    broken = settings["quickjh_pip_packages"] + ["quickjh-no-such-package-anywhere"]
    result = converge("-e", json.dumps({"quickjh_pip_packages": broken}), ok=False)
    assert "quickjh-no-such-package-anywhere" in result.stdout + result.stderr
    assert (hub().id, hub().attrs["State"]["StartedAt"]) == (container.id, container.attrs["State"]["StartedAt"])
    assert user1.run("print(6 * 7)").strip() == "42"  # the running session never noticed
    converge()  # the next good run converges to the same hub
    wait_healthy(hub_url)
    assert hub().id == container.id
    assert login("user1").run("print(6 * 7)").strip() == "42"
