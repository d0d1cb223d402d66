"""The users list over a hub's life: add, passwords, promote and demote, remove, bad input, re-creation.

Runs after test_default.py on the same deployment; every check is what a user or an admin sees over HTTP.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import docker
import pytest

from hubfixtures import can_login, converge, converge_users, wait_healthy


def sync_report(result) -> str:
    """The role's output and errors with folded lines joined: the report reads 'user2: created; ...'."""
    return " ".join((result.stdout + result.stderr).split())


def test_a_new_user_logs_in_and_runs_code(base_users, user):
    users = base_users + [{"name": "user2", "password": "user2-first-pw"}]
    result = converge_users(users)
    assert "user2: created" in sync_report(result)
    assert "RUNNING HANDLER [quickjh : Restart the hub]" not in result.stdout  # everyone's kernels go on
    user2 = user("user2")
    user2.login("user2-first-pw")
    user2.start_server()
    name, uid, cwd = user2.whoami()
    assert (name, cwd) == ("user2", "/home/user2/notebook") and uid >= 1000
    # nothing changed: nothing to do
    assert "changed=0" in converge_users(users).stdout


def test_password_changes_follow_update_password(base_users, user):
    on_create = base_users + [{"name": "user2", "password": "user2-second-pw"}]
    converge_users(on_create)
    assert can_login(user, "user2", "user2-first-pw")
    assert not can_login(user, "user2", "user2-second-pw")
    always = base_users + [{"name": "user2", "password": "user2-second-pw", "update_password": "always"}]
    assert "user2: password" in sync_report(converge_users(always))
    assert can_login(user, "user2", "user2-second-pw")
    assert not can_login(user, "user2", "user2-first-pw")
    assert "changed=0" in converge_users(always).stdout  # same password again: crypt says nothing to do


def test_check_mode_reports_and_changes_nothing(base_users, user):
    users = base_users + [{"name": "user3", "password": "user3-first-pw"}]
    result = converge_users(users, "--check", "--diff")
    assert "user3: created" in sync_report(result)
    assert not can_login(user, "user3", "user3-first-pw")


def test_check_mode_for_a_hub_not_made_yet_says_so_and_makes_nothing():
    fresh = {
        "quickjh_container_name": "quickjh-test-fresh",
        "quickjh_config_dir": "/tmp/quickjh-test-fresh/config",
        "quickjh_home_volume": "quickjh-test-fresh-home",
        "quickjh_state_volume": "quickjh-test-fresh-state",
        "quickjh_port": 18098,  # its own: the scenario's hub holds 18000, and a real run would stop on it
    }
    said = " ".join(converge("--check", "-e", json.dumps(fresh)).stdout.split())
    assert "has no hub yet: a real run would write /tmp/quickjh-test-fresh/config, start the container" in said
    client = docker.from_env()
    assert not client.containers.list(all=True, filters={"name": "quickjh-test-fresh"})
    assert not client.volumes.list(filters={"name": "quickjh-test-fresh"})
    assert not Path("/tmp/quickjh-test-fresh").exists()


def test_promote_without_a_new_login_and_demote_ends_every_session(base_users, login, passwords, hub_url):
    user1 = login("user1")
    admin = login("admin", start=False)
    promoted = [dict(u, admin=True) if u["name"] == "user1" else u for u in base_users]
    assert "user1: admin, hub admin" in sync_report(converge_users(promoted))
    assert admin.hub_api("GET", "/users/user1").json()["admin"] is True
    user1.stop_server()  # like a Linux login, the sudo group comes with the next server start
    user1.start_server()
    assert user1.can_sudo(passwords["user1"])
    report = sync_report(converge_users(base_users))
    assert "user1: not admin, hub not admin (server stopped)" in report
    # user1 had root in the container: it is made anew, and every session ends (docs/security.md)
    assert "The hub is made anew: user1 had root in its container" in report
    assert admin.http.get(f"{hub_url}/hub/home", allow_redirects=False, timeout=30).status_code == 302
    admin = login("admin", start=False)
    assert admin.hub_api("GET", "/users/user1").json()["admin"] is False
    user1 = login("user1")
    assert user1.model()["admin"] is False
    assert not user1.can_sudo(passwords["user1"])


def test_removing_a_user_stops_them_and_keeps_or_archives_the_home(base_users, user, login, hub):
    converge_users(base_users + [{"name": "user3", "password": "user3-first-pw"}])
    user2 = user("user2")
    user2.login("user2-second-pw")
    user2.start_server()
    user2.run("open('mine.txt', 'w').write('user2 was here')")
    uid2 = user2.whoami()[1]
    removed = base_users + [
        {"name": "user2", "state": "absent"},
        {"name": "user3", "state": "absent", "remove_home": True},
    ]
    report = sync_report(converge_users(removed))
    assert "user2: removed, removed from the hub" in report
    assert re.search(r"user3: removed, home archived to /srv/jupyterhub/removed-homes/user3-\d+-\d+\.tar\.gz", report)
    assert not can_login(user, "user2", "user2-second-pw")
    assert login("admin", start=False).hub_api("GET", "/users/user2").status_code == 404
    assert hub().exec_run("test -f /home/user2/notebook/mine.txt").exit_code == 0
    assert hub().exec_run("test -e /home/user3").exit_code != 0
    assert hub().exec_run("sh -c 'test -s /srv/jupyterhub/removed-homes/user3-*.tar.gz'").exit_code == 0
    # A new user never gets the kept home's UID; user2 coming back gets it, and the files.
    converge_users(base_users + [{"name": "user4", "password": "user4-first-pw"}])
    user4 = user("user4")
    user4.login("user4-first-pw")
    user4.start_server()
    assert user4.whoami()[1] != uid2
    converge_users(base_users + [{"name": "user2", "password": "user2-back-pw"}])
    user2 = user("user2")
    user2.login("user2-back-pw")
    user2.start_server()
    assert user2.whoami()[1] == uid2
    assert user2.run("print(open('mine.txt').read())").strip() == "user2 was here"


def test_accounts_made_in_a_terminal_survive_the_container_killed_2_s_later(
    base_users, hub_url, login, passwords, hub, user
):
    admin, user1 = login("admin"), login("user1")
    # The admin adds a user in a terminal; user1 changes their own password.
    printed = admin.run(
        "import subprocess\n"
        f"r = subprocess.run(['sudo', '-S', '-p', '', 'quickjh-adduser', 'termuser'],"
        f" input={passwords['admin']!r} + '\\nterm-user-pw-1\\nterm-user-pw-1\\n', capture_output=True, text=True)\n"
        "print(r.returncode, r.stdout, r.stderr)\n"
    )
    assert printed.startswith("0"), printed
    term = user("termuser")
    term.login("term-user-pw-1")
    term.start_server()
    term.run("open('t.txt', 'w').write('terminal user file')")
    before = {"termuser": term.whoami()[1], "user1": user1.whoami()[1], "admin": admin.whoami()[1]}
    # user1 changes their own password on the hub's page (a non-admin's terminal runs with no new privileges, so
    # `passwd` there says where to go)
    printed = user1.terminal("passwd")
    assert "change your password on the hub's page" in printed and printed.endswith("[exit 1]"), printed
    changed = user1.change_password(passwords["user1"], "user1-Own-pw-9")
    assert changed.status_code == 200 and "Your password is changed." in changed.text, changed.text

    time.sleep(2)
    old = hub()
    old.kill()  # the container dies 2 s after the last change: no save at stop
    old.remove()
    converge_users(base_users)
    wait_healthy(hub_url)

    term = user("termuser")
    term.login("term-user-pw-1")
    term.start_server()
    assert term.whoami()[1] == before["termuser"]
    assert term.run("print(open('t.txt').read())").strip() == "terminal user file"
    assert not can_login(user, "user1", passwords["user1"])
    user1 = user("user1")
    user1.login("user1-Own-pw-9")
    user1.start_server()
    assert user1.whoami()[1] == before["user1"]
    assert user1.run("print(open('kept.txt').read())").strip() == "still here"
    assert login("admin").whoami()[1] == before["admin"]


# Each rule's cases are unit tests (tests/test_quickjh_checks.py); here one of the rules and one of argument_specs'
# checks stop a real run before it touches anything.
BAD_INPUT = [
    ([{"name": "a user", "password": "long-enough-pw"}], "user 'a user' is not a valid Linux user name"),
    (
        [{"name": "colour", "password": "long-enough-pw", "colour": "red"}],
        "quickjh_users.colour. Supported parameters include",
    ),
    # chpasswd reads name:password lines: a newline would set root's password
    ([{"name": "newline", "password": "long-enough\nroot:owned-pw"}], "user 'newline' has a password with a control"),
]


def state_of_the_hub(settings, hub) -> tuple:
    container = hub()
    accounts = container.exec_run("cat /etc/passwd /etc/shadow /etc/group").output
    with open(f"{settings['quickjh_config_dir']}/settings.json", "rb") as config:
        return container.id, container.attrs["State"]["StartedAt"], container.image.id, accounts, config.read()


@pytest.mark.parametrize("users,message", BAD_INPUT, ids=[u[-1]["name"][:12] for u, _ in BAD_INPUT])
def test_bad_input_is_refused_before_anything_changes(base_users, settings, hub, users, message):
    before = state_of_the_hub(settings, hub)
    result = converge_users(base_users + users, "-e", "quickjh_default_url=/tree", ok=False)
    assert message in sync_report(result)
    assert state_of_the_hub(settings, hub) == before


def test_weak_passwords_pass_only_when_allowed(base_users, user):
    weak = base_users + [{"name": "weakling", "password": "weak"}]
    assert "has a password shorter than 8" in sync_report(converge_users(weak, ok=False))
    converge_users(weak, "-e", "quickjh_allow_weak_passwords=true")
    assert can_login(user, "weakling", "weak")
    converge_users(base_users + [{"name": "weakling", "state": "absent"}])


def test_a_missing_notebook_folder_does_not_break_a_login(hub, login):
    login("admin", start=False).stop_server()
    assert hub().exec_run("rm -rf /home/admin/notebook").exit_code == 0
    assert login("admin").whoami()[2] == "/home/admin/notebook"


def test_proxy_credentials_reach_the_build_only_never_what_users_can_read(base_users):
    proxy = {"quickjh_https_proxy": "http://team:s3cret-proxy-pw@proxy.example.org:3128"}
    said = converge_users(base_users, "--check", "--diff", "-e", json.dumps(proxy)).stdout
    assert '"https_proxy": "http://proxy.example.org:3128"' in said  # users' servers get the proxy...
    assert "s3cret-proxy-pw" not in said  # ...without its credentials, and --diff shows none
