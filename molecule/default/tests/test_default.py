"""What the team sees once the role ran: logins, code in kernels, sudo, private homes, files and logins kept."""

from __future__ import annotations

import pytest

from hubclient import LoginFailed
from hubfixtures import converge, wait_healthy


@pytest.mark.parametrize("name", ["admin", "user1"])
def test_user_logs_in_and_runs_code(login, name):
    user = login(name)
    printed = user.whoami()
    assert printed[0] == name
    assert printed[1] >= 1000
    assert printed[2] == f"/home/{name}/notebook"


def test_wrong_password_is_rejected(user, passwords):
    with pytest.raises(LoginFailed):
        user("user1").login(passwords["user1"] + "x")
    with pytest.raises(LoginFailed):
        user("root").login(passwords["admin"])


def test_admin_is_hub_admin_and_user1_is_not(login):
    assert login("admin", start=False).model()["admin"] is True
    assert login("user1", start=False).model()["admin"] is False


@pytest.mark.parametrize("name,can_sudo", [("admin", True), ("user1", False)])
def test_only_admins_can_sudo(login, passwords, name, can_sudo):
    assert login(name).can_sudo(passwords[name]) is can_sudo


def test_homes_are_private(login):
    printed = login("user1").run(
        "import os, stat\n"
        "print(oct(stat.S_IMODE(os.stat('/home/admin').st_mode)),"
        " oct(stat.S_IMODE(os.stat(os.path.expanduser('~')).st_mode)))\n"
        "try:\n    os.listdir('/home/admin'); print('readable')\n"
        "except PermissionError:\n    print('denied')\n"
    )
    assert printed.split() == ["0o700", "0o700", "denied"]


def test_terminal_opens_bash_with_the_venv_on_path(login):
    printed = login("user1").run(
        "import subprocess\n"
        "print(subprocess.run(['bash', '-lc', 'command -v jupyterhub pip'], capture_output=True, text=True).stdout)"
    )
    assert printed.split() == ["/opt/jupyterhub/bin/jupyterhub", "/opt/jupyterhub/bin/pip"]


def test_login_survives_a_container_restart(login, hub, hub_url):
    user = login("user1", start=False)
    hub().restart()
    wait_healthy(hub_url)
    reply = user.http.get(f"{hub_url}/hub/home", allow_redirects=False, timeout=30)
    assert reply.status_code == 200, reply.headers.get("Location")


def test_files_survive_recreating_the_container(login, hub, hub_url):
    login("user1").run("open('kept.txt', 'w').write('still here')")
    hub().remove(force=True)
    converge()
    wait_healthy(hub_url)
    assert login("user1").run("print(open('kept.txt').read())").strip() == "still here"


def test_config_change_restarts_the_hub_without_a_rebuild(hub, hub_url, login):
    before = hub()
    result = converge("-e", "quickjh_default_url=/tree")
    after = hub()
    assert after.id == before.id and after.image.id == before.image.id
    assert after.attrs["State"]["StartedAt"] != before.attrs["State"]["StartedAt"]
    assert "RUNNING HANDLER [quickjh : Restart the hub]" in result.stdout
    user = login("user1")
    landing = user.http.get(f"{hub_url}/user/user1/", allow_redirects=False, timeout=30)
    assert landing.headers["Location"].split("?")[0] == "/user/user1/tree"
    converge()  # back to the scenario's settings
