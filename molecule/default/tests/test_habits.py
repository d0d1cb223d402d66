"""Habits users bring: accounts made the Linux way in an admin's terminal, the hub's admin page, a first
`pip install` in a running kernel, and what they expect to find in JupyterLab.

Runs after test_faults.py on the same deployment; every check is a login and what the user sees.
"""

from __future__ import annotations

import time

import pytest

from hubfixtures import can_login, converge, wait_healthy

# Made in an admin's terminal as people do it, with the password each gets (None: none given).
SEED = "useradd -m seed2 && mkdir /home/seed2/notebook && chmod 700 /home/seed2 && chown -R seed2: /home/seed2"
MADE = {
    "seed2": (SEED, "Seed2-linux-pw"),  # the seed recipe, word for word
    "deb3": ("adduser --disabled-password --comment '' deb3", "Deb3-adduser-pw"),  # Debian's adduser
    "locked4": ("useradd -m locked4 && echo locked4:Locked4-pw | chpasswd && passwd -l locked4", None),
    "nopw5": ("useradd -m nopw5", None),  # no password ever set
    "sys6": ("useradd --system -m -d /home/sys6 sys6 && echo sys6:System6-pw | chpasswd", None),  # a system account
}
REFUSED = {"locked4": "Locked4-pw", "nopw5": "", "sys6": "System6-pw"}


def as_root(admin, passwords, script: str, lines: str = "") -> str:
    """Run a shell script with sudo from the admin's kernel (as from a terminal); lines go to its standard input
    after sudo's password (passwd's new password twice). Returns the exit status and what it printed."""
    return admin.run(
        "import subprocess\n"
        f"r = subprocess.run(['sudo', '-S', '-p', '', 'bash', '-c', {script!r}],"
        f" input={passwords['admin']!r} + '\\n' + {lines!r}, capture_output=True, text=True)\n"
        "print(r.returncode, r.stdout, r.stderr)\n"
    )


@pytest.fixture(scope="module")
def made(login, passwords):
    """The accounts of MADE, made in the admin's terminal; removed the same way at the end."""
    admin = login("admin")
    for name, (script, password) in MADE.items():
        if password:
            script += f" && passwd {name}"
        printed = as_root(admin, passwords, script, f"{password}\n{password}\n" if password else "")
        assert printed.startswith("0"), printed
    yield MADE
    admin = login("admin")
    for name in MADE:
        admin.hub_api("DELETE", f"/users/{name}")  # stops the server first
    names = " ".join(MADE)
    printed = as_root(
        admin, passwords, f"for n in {names}; do userdel -r $n 2>/dev/null; done; ! getent passwd {names}"
    )
    assert printed.startswith("0"), printed


def test_accounts_made_the_linux_way_log_in_and_locked_or_system_ones_do_not(made, user):
    for name in ("seed2", "deb3"):
        person = user(name)
        person.login(made[name][1])
        person.start_server()
        assert person.whoami()[0::2] == (name, f"/home/{name}/notebook")
    for name, password in REFUSED.items():
        assert not can_login(user, name, password), name


def test_an_account_useradd_gave_the_uid_of_a_kept_home_is_refused_until_it_has_its_own(made, login, passwords, user):
    admin = login("admin")
    printed = as_root(
        admin,
        passwords,
        "useradd -m ghost9 && userdel ghost9 && useradd -m reuse9"
        " && echo reuse9:Reuse9-own-pw | chpasswd && stat -c %u /home/ghost9 && id -u reuse9",
    )
    status, kept_uid, new_uid = printed.split()[:3]
    assert status == "0" and kept_uid == new_uid, printed  # useradd handed out the UID that owns ghost9's home
    try:
        assert not can_login(user, "reuse9", "Reuse9-own-pw")
        assert as_root(admin, passwords, "usermod -u 1900 reuse9").startswith("0")
        assert can_login(user, "reuse9", "Reuse9-own-pw")
    finally:
        as_root(admin, passwords, "userdel -r reuse9; rm -rf /home/ghost9")


def test_a_brand_new_users_first_pip_install_imports_in_the_running_kernel(made, user):
    seed2 = user("seed2")
    seed2.login(made["seed2"][1])
    seed2.start_server()
    with seed2.kernel(timeout=300) as execute:
        assert "tabulate" in execute("%pip install -q tabulate\nimport tabulate; print(tabulate.__name__)")
        assert "text_unidecode" in execute(
            "!pip install -q text-unidecode\nimport text_unidecode; print(text_unidecode.__name__)"
        )
        printed = seed2.terminal("pip install -q toolz")  # a terminal, while the kernel runs
        assert printed.endswith("[exit 0]"), printed
        assert execute("import toolz; print(toolz.__file__)").startswith("/home/seed2/.local/lib/")


def test_the_admin_page_adds_only_accounts_that_can_log_in_and_says_how_to_add_others(made, login, user):
    admin = login("admin", start=False)
    page = admin.http.get(f"{admin.base}/hub/admin", timeout=30)
    assert page.status_code == 200 and "sudo quickjh-adduser NAME" in page.text
    reply = admin.hub_api("POST", "/users", json={"usernames": ["ghost7"]})
    assert reply.status_code == 400, reply.text
    assert "quickjh_users" in reply.json()["message"] and "quickjh-adduser ghost7" in reply.json()["message"]
    assert admin.hub_api("GET", "/users/ghost7").status_code == 404  # not left behind as a user without a login
    assert admin.hub_api("POST", "/users", json={"usernames": ["nopw5"]}).status_code == 400
    reply = admin.hub_api("POST", "/users", json={"usernames": ["deb3"]})
    assert reply.status_code in (201, 409), reply.text  # 409: deb3 logged in already, so the hub knows them


def test_an_account_locked_in_a_terminal_loses_its_session_at_the_next_server_start(made, login, passwords, user):
    deb3 = user("deb3")
    deb3.login(made["deb3"][1])
    deb3.stop_server()
    admin = login("admin")
    assert as_root(admin, passwords, "passwd -l deb3").startswith("0")
    try:
        assert deb3.hub_api("POST", "/users/deb3/server").status_code == 403  # still logged in, no longer let in
        assert not can_login(user, "deb3", made["deb3"][1])
    finally:
        assert as_root(admin, passwords, "passwd -u deb3").startswith("0")
    assert can_login(user, "deb3", made["deb3"][1])


def test_terminal_accounts_survive_recreation_and_userdel_removes_one_for_good(
    made, login, passwords, user, hub, hub_url
):
    time.sleep(1)  # the saver keeps each change to the accounts within half a second
    old = hub()
    old.kill()
    old.remove()
    converge()
    wait_healthy(hub_url)
    assert all(can_login(user, name, made[name][1]) for name in ("seed2", "deb3"))
    assert not any(can_login(user, name, password) for name, password in REFUSED.items())

    admin = login("admin")
    admin.hub_api("DELETE", "/users/seed2/server")
    printed = as_root(admin, passwords, "userdel -r seed2")
    assert printed.startswith("0"), printed
    hub().restart()
    wait_healthy(hub_url)
    assert not can_login(user, "seed2", made["seed2"][1])
    assert "seed2" not in hub().exec_run("getent passwd seed2").output.decode()
    assert login("admin", start=False).hub_api("GET", "/users/seed2").status_code == 404  # the hub forgot them


def test_jupyterlab_has_git_the_memory_indicator_and_no_news_pop_up(login):
    user1 = login("user1")
    printed = user1.terminal("git --version")
    assert printed.endswith("[exit 0]") and "git version" in printed, printed
    metrics = user1.server_api("GET", "/metrics/v1")
    assert metrics.status_code == 200 and metrics.json()["rss"] > 0, metrics.text
    lab = user1.http.get(f"{user1.base}/user/user1/lab", timeout=30).text
    assert "@jupyter-server/resource-usage" in lab  # the status bar's memory indicator is loaded
    reply = user1.http.get(
        f"{user1.base}/user/user1/lab/api/settings/@jupyterlab/apputils-extension:notification", timeout=30
    )
    defaults = {name: value.get("default") for name, value in reply.json()["schema"]["properties"].items()}
    assert (defaults["fetchNews"], defaults["checkForUpdates"]) == ("false", False), defaults  # each user may opt in


@pytest.fixture(autouse=True, scope="module")
def _hub_is_up(hub_url):
    wait_healthy(hub_url)
