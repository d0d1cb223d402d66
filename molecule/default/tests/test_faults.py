"""Faults: the hub process killed, a build that fails, a base image nowhere, a run killed during the users sync. The
hub comes back by itself or keeps serving untouched, and the next run converges. (The Docker daemon restarted: the
remote scenario, on a server's own daemon.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import hubfixtures
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


def test_a_base_image_neither_there_nor_loadable_nor_pullable_stops_the_run_naming_three_ways(hub):
    container = hub()
    result = converge("-e", "quickjh_base_image=debian:quickjh-nowhere", ok=False)
    said = " ".join((result.stdout + result.stderr).split())  # Ansible folds long messages
    assert "has no debian:quickjh-nowhere (quickjh_base_image) and could not pull it" in said
    for way in ("docker load -i base.tar", "quickjh_image_archives", "reach a registry"):
        assert way in said
    assert (hub().id, hub().attrs["State"]["StartedAt"]) == (container.id, container.attrs["State"]["StartedAt"])


def test_a_run_killed_during_the_users_sync_leaves_no_half_made_account(settings, hub, user):
    listed = settings["quickjh_users"]
    added = [{"name": f"mid{i:03d}", "password": f"mid-pw-{i:03d}"} for i in range(150)]
    playbook = Path(hubfixtures.__file__).parent / "converge.yml"
    run = subprocess.Popen(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(playbook),
            "-e",
            json.dumps({"quickjh_users": listed + added}),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while hub().exec_run(["getent", "passwd", "mid020"]).exit_code != 0:
        assert run.poll() is None and time.monotonic() < deadline, "the sync never started making accounts"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)  # the controller dies, and the sync inside the container with it
    hub().exec_run(["pkill", "-KILL", "-f", "quickjh-users sync"])
    run.wait()
    try:
        check_and_finish(hub, user, listed + added)
    finally:  # the next tests find the list as the scenario has it, and no kept homes of these users
        converge("-e", json.dumps({"quickjh_users": listed + [{"name": m["name"], "state": "absent"} for m in added]}))
        hub().exec_run(["sh", "-c", "rm -rf /home/mid[0-9]*"])
    assert hub().exec_run(["getent", "passwd", "mid000"]).exit_code != 0


def check_and_finish(hub, user, listed: list[dict]) -> None:
    """The account files are whole right after the kill; the next run makes the rest; the first and the
    last made log in and run code."""
    made = hub().exec_run(["sh", "-c", "getent passwd | grep -c '^mid'"]).output.decode().strip()
    print(f"killed during the sync: {made} of 150 accounts made")
    assert int(made) < 150, "the sync had finished: the kill came too late to test anything"
    for check in (["pwck", "-r", "-q"], ["grpck", "-r"]):  # every account whole: passwd, shadow, group, gshadow
        result = hub().exec_run(check)
        assert result.exit_code == 0, (check, result.output.decode())

    result = converge("-e", json.dumps({"quickjh_users": listed}))
    assert "mid149: created" in result.stdout
    for name in ("mid000", "mid149"):
        mid = user(name)
        mid.login(f"mid-pw-{name[3:]}")
        mid.start_server()
        assert mid.run("print(6 * 7)").strip() == "42"
