"""What a hostile teammate can still try, each as code in their own kernel or terminal started through the hub, or in
a real browser (docs/security.md lists each with what it gets): the account files' lock, a setgid copy kept after
losing a group, the proxy's ports, tokens for others, and a page served to whoever opens it."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import pytest

from browser_check import chromium, log_in, log_in_to
from hubfixtures import converge, converge_users

# An admin's own passwd (admins may run it: their server has no "no new privileges"), driven through a terminal,
# stopped (SIGSTOP) the moment it holds the account files' lock; tried until caught. Prints "caught PID" or "missed".
HOLD_THE_LOCK = r"""
import os, pty, signal, time
inode = str(os.stat('/etc/.pwd.lock').st_ino)
passwords = [{old!r}, {new!r}]
def holds(pid):
    return any(line.split()[4] == str(pid) and line.split()[5].endswith(':' + inode)
               for line in open('/proc/locks').read().splitlines() if len(line.split()) > 5)
for attempt in range(200):
    old, new = passwords[attempt % 2], passwords[(attempt + 1) % 2]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv('/usr/bin/passwd', ['passwd'])
    for answer in (old, new, new):
        time.sleep(0.2)
        os.write(fd, (answer + '\n').encode())
    end = time.monotonic() + 3
    while time.monotonic() < end:
        if holds(pid):
            os.kill(pid, signal.SIGSTOP)
            if holds(pid):  # still holding once stopped (it may have let go just before)
                print('caught', pid, 'with', new)
                raise SystemExit
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
print('missed')
"""


def test_a_users_own_passwd_holding_the_account_files_lock_holds_no_account_change(
    base_users, login, user, passwords, hub
):
    printed = login("user2").terminal("passwd")  # a non-admin's passwd cannot even start: no new privileges
    assert "change your password on the hub's page" in printed and printed.endswith("[exit 1]"), printed
    admin = login("admin")
    # The kernel stays up while the run goes: ending it would hang up passwd's terminal, which lets go of the lock
    with admin.kernel(timeout=900) as execute:
        attack_while_the_run_goes(execute, passwords, base_users, user, hub)


def attack_while_the_run_goes(execute, passwords, base_users, user, hub):
    try:
        printed = execute(HOLD_THE_LOCK.format(old=passwords["admin"], new="Adm1n-team-pw-2"))
        assert printed.startswith("caught"), printed
        caught_pid = printed.split()[1]
        # The next run adds carol and changes user1's password: the stopped passwd is ended, the rest applies.
        changed = [
            dict(u, password="us3r1-team-pw-2", update_password="always") if u["name"] == "user1" else u
            for u in base_users
        ]
        said = " ".join(converge_users([*changed, {"name": "carol", "password": "c4rol-team-pw"}]).stdout.split())
        assert "carol: created" in said and "user1: password" in said
        # Ended by the sync, or before it by the accounts' saver, which waits 15 s for the lock when passwd had
        # written the files first; either way root says so.
        ended = "admin: their own passwd held the account files' lock, ended"
        assert ended in said or ended in hub().logs().decode(), said
        # ended: gone, or a zombie its parent (the attacker's kernel) has not reaped
        state = hub().exec_run(["sh", "-c", f"grep '^State:' /proc/{caught_pid}/status || echo gone"]).output.decode()
        assert "zombie" in state or "gone" in state, state
        for name, password in (("carol", "c4rol-team-pw"), ("user1", "us3r1-team-pw-2")):
            user(name).login(password)
    finally:
        # back, pass or fail: every password as the list gives it (a passwd missed may have changed the admin's),
        # no carol
        converge_users([*base_users, {"name": "carol", "state": "absent"}])
        converge_users([dict(u, update_password="always") for u in base_users])


def test_a_setgid_copy_made_while_in_a_group_gives_nothing_once_out_of_it(base_users, login, user):
    member = [dict(u, groups=["analysts"]) if u["name"] == "user2" else u for u in base_users]
    converge_users(member)
    user2 = login("user2")
    user2.stop_server()
    user2.start_server()  # the group comes with the next start, as with a Linux login
    made = user2.terminal("cp /bin/cat ~/gcat && chgrp analysts ~/gcat && chmod 2755 ~/gcat && ls -l ~/gcat")
    assert "analysts" in made and "-rwxr-sr-x" in made, made
    converge_users(base_users)  # out of analysts: every process of user2's ended
    user2 = login("user2")
    printed = user2.terminal("~/gcat /srv/shared/data/plan.txt; id -Gn")
    assert "Permission denied" in printed and "analysts" not in printed.split("[exit")[0].splitlines()[-1], printed


def test_the_proxys_ports_are_roots_alone(login):
    printed = login("user2").run(
        "import socket\n"
        "for port in (443, 81, 80):\n"
        "    s = socket.socket()\n"
        "    try:\n"
        "        s.bind(('0.0.0.0', port)); print(port, 'bound')\n"
        "    except OSError as e:\n"
        "        print(port, type(e).__name__)\n"
    )
    assert printed.split("\n")[:3] == ["443 PermissionError", "81 PermissionError", "80 PermissionError"], printed


def test_an_admin_makes_api_tokens_for_themselves_only(login):
    admin = login("admin", start=False)
    assert admin.hub_api("POST", "/users/user1/tokens", json={"note": "for later"}).status_code == 403
    assert admin.hub_api("POST", "/users/admin/tokens", json={"note": "mine"}).status_code == 201


# The page user2 serves from their own server (their ~/.jupyter config adds a static folder): in whoever's browser
# opens it, it reads the hub's token page for its xsrf token and asks the hub for a token of that visitor's.
PAGE = """<!doctype html><title>loading</title><script>
(async () => {
  const base = location.pathname.split('/user/')[0];
  try {
    const page = await (await fetch(base + '/hub/token', {credentials: 'include'})).text();
    const xsrf = (page.match(/xsrf_token: "([^"]+)"/) || [])[1] || '';
    const who = (page.match(/user: "([^"]+)"/) || [])[1] || 'admin';
    const made = await fetch(base + '/hub/api/users/' + who + '/tokens', {method: 'POST', credentials: 'include',
      headers: {'X-XSRFToken': xsrf, 'Content-Type': 'application/json'}, body: JSON.stringify({note: 'taken'})});
    document.title = 'result:' + made.status;
  } catch (e) { document.title = 'result:' + e; }
})();
</script>"""


@pytest.fixture(scope="module")
def served_page(login):
    """user2's page, at /user/user2/static/quickjh-page.html on user2's server."""
    user2 = login("user2")
    user2.run(
        "import os, pathlib\n"
        "pathlib.Path('~/.jupyter').expanduser().mkdir(exist_ok=True)\n"
        "pathlib.Path('~/.jupyter/jupyter_server_config.py').expanduser().write_text("
        "\"import os\\nc.ServerApp.extra_static_paths = [os.path.expanduser('~/served')]\\n\")\n"
        "pathlib.Path('~/served').expanduser().mkdir(exist_ok=True)\n"
        f"pathlib.Path('~/served/quickjh-page.html').expanduser().write_text({PAGE!r})\n"
    )
    yield user2
    login("user2").run(  # a new login: the tests between changed the hub's origins, and its cookies with them
        "import shutil, os; shutil.rmtree(os.path.expanduser('~/served')); "
        "os.remove(os.path.expanduser('~/.jupyter/jupyter_server_config.py'))"
    )


def visit(hub: str, page_url: str, admin_password: str, resolve: list[str], trust: str = "") -> str:
    """The admin logs in at hub in Chromium, then opens page_url; returns the title the page set. trust: the
    certificate Chromium trusts (it then checks every name), or none (it ignores certificate errors)."""
    with chromium([f"--host-resolver-rules={', '.join(resolve)}"] if resolve else [], trust) as browser:
        page = browser.new_context(ignore_https_errors=not trust).new_page()
        page.set_default_timeout(120_000)
        log_in_to(page, hub, "admin", admin_password)
        page.goto(page_url)
        page.wait_for_function("document.title.startsWith('result:')", timeout=60_000)
        return page.title()


def certified_names(address: str, port: int, names: list[str], cafile: str) -> list[str]:
    """Those of names whose TLS handshake at address:port verifies against cafile alone (name and chain)."""
    context = ssl.create_default_context(cafile=cafile)
    verified = []
    for name in names:
        with socket.create_connection((address, port), timeout=10) as raw:
            try:
                context.wrap_socket(raw, server_hostname=name).close()
                verified.append(name)
            except ssl.SSLCertVerificationError:
                pass
    return verified


def test_without_subdomains_a_users_page_acts_as_whoever_opens_it_with_them_it_gets_nothing(
    settings, served_page, passwords, hub_url, login, verify
):
    user2 = served_page
    user2.stop_server()
    user2.start_server()  # the static folder comes with the next start
    # Without quickjh_subdomain_host, as docs/security.md warns: the admin's visit makes a token of the admin's.
    title = visit(hub_url, f"{hub_url}/user/user2/static/quickjh-page.html", passwords["admin"], [])
    assert title == "result:201", title
    print(f"\nwithout subdomains, user2's page opened by the admin: {title} (a token of the admin's was made)")
    # With it, user2's server is at user2.hub.test: the page has another origin, and the hub's login is not its.
    port = settings["quickjh_port"]
    subdomains = {"quickjh_subdomain_host": f"https://hub.test:{port}"}
    converge("-e", json.dumps(subdomains))
    try:
        hub = f"https://hub.test:{port}{settings['quickjh_base_url'].rstrip('/')}"
        # The role's self-signed certificate now names the host and every name below it, and no other.
        names = ["hub.test", "user2.hub.test", "admin.hub.test", "hub.example.org"]
        address = settings.get("ansible_host", settings["quickjh_bind_address"])
        assert certified_names(address, port, names, verify) == names[:3]
        resolve = ["MAP hub.test 127.0.0.1", "MAP *.hub.test 127.0.0.1"]
        login("user2", start=False).stop_server()
        trust = Path(verify).read_text()  # Chromium trusts the role's certificate alone, and checks every name
        with chromium([f"--host-resolver-rules={', '.join(resolve)}"], trust) as browser:
            page = browser.new_context().new_page()
            page.goto(f"{hub}/hub/login")
            log_in(page, "user2", passwords["user2"])  # user2's server starts, now at user2.hub.test
            page.wait_for_url(lambda now: "user2.hub.test" in now, timeout=180_000)
        page_url = f"https://user2.hub.test:{port}{settings['quickjh_base_url'].rstrip('/')}/user/user2/static/quickjh-page.html"
        title = visit(hub, page_url, passwords["admin"], resolve, trust)
        print(f"with quickjh_subdomain_host, the same page opened by the admin: {title}")
        assert title != "result:201" and title.startswith("result:"), title
    finally:
        converge()
