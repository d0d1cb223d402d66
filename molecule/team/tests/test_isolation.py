"""Users attack each other and the hub, as a hostile non-admin would from a kernel or a terminal (user2 attacks,
user1 is the victim); each attack fails, and the other users and the next playbook run are unaffected."""

from __future__ import annotations

import contextlib
import json
import tarfile
import threading
import time
from pathlib import Path

import requests

from hubfixtures import converge_users, playbook, project_playbook

# What user2 runs against user1's kernel, given user1's UID: the ports user1 listens on (from /proc/net/tcp),
# every message a ZeroMQ subscriber on them gets in 5 s, the Unix sockets of user1 it can connect to, whether it
# can list user1's runtime folder, and what user1's server answers it over HTTP (under the hub's base URL).
SNOOP = r"""
import json, os, socket, time, urllib.error, urllib.request, zmq
victim = {uid}
ports = []
for table in ('/proc/net/tcp', '/proc/net/tcp6'):
    for line in open(table).read().splitlines()[1:]:
        f = line.split()
        if f[3] == '0A' and int(f[7]) == victim:
            ports.append(int(f[1].split(':')[1], 16))
ctx, poller = zmq.Context(), zmq.Poller()
for port in ports:
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b'')
    sub.connect(f'tcp://127.0.0.1:{{port}}')
    poller.register(sub, zmq.POLLIN)
got, deadline = 0, time.time() + 5
while time.time() < deadline:
    for sub, _ in poller.poll(200):
        sub.recv_multipart()
        got += 1
sockets = [l.split()[-1] for l in open('/proc/net/unix').read().splitlines()[1:]
           if l.split()[-1].startswith(f'/run/user/{{victim}}/')]
opened = 0
for path in sockets:
    try:
        socket.socket(socket.AF_UNIX).connect(path)
        opened += 1
    except OSError:
        pass
try:
    os.listdir(f'/run/user/{{victim}}')
    runtime = 'listed'
except PermissionError:
    runtime = 'refused'
http = []
for port in ports:
    try:
        http.append(urllib.request.urlopen(f'http://127.0.0.1:{{port}}{prefix}/user/user1/api/kernels',
                                           timeout=5).status)
    except urllib.error.HTTPError as err:
        http.append(err.code)
    except OSError as err:
        http.append(type(err).__name__)
print(json.dumps(dict(ports=len(ports), got=got, sockets=len(sockets), opened=opened, runtime=runtime, http=http)))
"""


def detached(script: str) -> str:
    """A terminal command that leaves `script` running after the terminal closes, as `setsid nohup` does."""
    return f"setsid -f bash -c '{script}' </dev/null >/dev/null 2>&1"


def report(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def uid_of(hub, name: str) -> int:
    return int(hub().exec_run(["id", "-u", name]).output)


def live_processes(hub, uid: int) -> list[str]:
    out = hub().exec_run(["ps", "-o", "pid=,stat=,comm=", "-U", str(uid)]).output.decode().splitlines()
    return [line for line in out if line.split()[1][0] not in "ZX"]


def test_a_user_cannot_read_or_reach_another_users_running_kernel(login, hub):
    victim, snoop = login("user1"), login("user2")
    talker = threading.Thread(
        target=victim.run,
        kwargs={"code": "import time\nfor i in range(40):\n    print('secret', i, flush=True)\n    time.sleep(0.5)"},
    )
    talker.start()
    time.sleep(3)
    seen = json.loads(snoop.run(SNOOP.format(uid=uid_of(hub, "user1"), prefix=victim.path)))
    talker.join()
    print(f"user2 against user1's kernel: {seen}")
    assert seen["sockets"] >= 5, "user1's kernel should talk over Unix sockets in /run/user/UID"
    assert seen["opened"] == 0 and seen["runtime"] == "refused" and seen["got"] == 0
    # On TCP: user1's server, which wants user1's login, and the kernel's pipe for output of forked children,
    # which drops what does not carry the kernel's secret. Neither gave user2 a byte of user1's work.
    assert seen["ports"] <= 2 and 403 in seen["http"] and 200 not in seen["http"], seen
    specs = victim.server_api("GET", "/kernelspecs").json()["kernelspecs"]
    assert specs["python3"]["spec"]["metadata"]["debugger"] is False  # debugpy would listen on TCP
    # Through the hub, with user2's own login: user1's server is not user2's.
    reply = snoop.http.get(f"{snoop.base}/user/user1/api/kernels", allow_redirects=False, timeout=30)
    assert reply.status_code in (302, 403, 404) and "secret" not in reply.text
    assert "secret 39" in victim.run("print('secret 39')")


def test_the_hubs_state_and_key_are_closed_to_users(login):
    out = login("user2").terminal(
        "ls /srv/jupyterhub; cat /srv/jupyterhub/jupyterhub_cookie_secret /srv/jupyterhub/quickjh-sync.token "
        "/srv/jupyterhub/accounts.json /etc/quickjh/tls/hub.key /etc/quickjh/settings.json /etc/shadow; "
        'python3 -c \'import sqlite3; sqlite3.connect("/srv/jupyterhub/jupyterhub.sqlite").execute("select 1")\''
    )
    assert out.count("Permission denied") >= 7 and "unable to open database" in out, out
    assert "BEGIN" not in out and '"passwd"' not in out


def test_links_in_a_home_do_not_stop_the_sync_nor_hand_root_folders_out(base_users, login, hub, user):
    attacker = login("user2")
    # A folder root runs things from, flipped in and out as user2's notebook folder while the server restarts.
    attacker.terminal(
        detached(
            "end=$((SECONDS + 20)); while [ $SECONDS -lt $end ]; do rm -rf ~/notebook;"
            " ln -sfn /usr/local/sbin ~/notebook; rm -f ~/notebook; done; rm -rf ~/notebook; ln -s /nope ~/notebook"
        )
    )
    flipper_ends = time.monotonic() + 20
    try:
        for _ in range(3):
            attacker.stop_server()
            with contextlib.suppress(TimeoutError, OSError):  # its own session may break: that is all it may break
                attacker.start_server(timeout=30)
        deadline = time.monotonic() + 60  # the flipper ends on a link to nowhere
        while hub().exec_run(["readlink", "/home/user2/notebook"]).output.strip() != b"/nope":
            assert time.monotonic() < deadline
            time.sleep(1)
        # The next run adds user3: user2's home is reported, everyone else's change is applied.
        result = converge_users(base_users + [{"name": "user3", "password": "us3r3-team-pw", "admin": True}], ok=False)
        assert "user3: created" in report(result)
        assert "NOT DONE, an admin must fix: user2: /home/user2/notebook is not a folder" in report(result)
        sbin = (
            hub().exec_run(["stat", "-c", "%u %a", "/usr/local/sbin", "/usr/local/sbin/quickjh-users"]).output.split()
        )
        assert sbin == [b"0", b"755", b"0", b"755"]
        assert login("user1").whoami()[0] == "user1"
        newcomer = user("user3")
        newcomer.login("us3r3-team-pw")
        newcomer.start_server()
        assert newcomer.whoami()[0] == "user3"
        # user2 removes the link: the next run makes the folder, as user2.
        assert hub().exec_run(["rm", "/home/user2/notebook"]).exit_code == 0
        converge_users(base_users + [{"name": "user3", "password": "us3r3-team-pw", "admin": True}])
        assert hub().exec_run(["stat", "-c", "%U", "/home/user2/notebook"]).output.strip() == b"user2"
    finally:  # pass or fail, user2's home as the next test expects it: the link gone once the flipper is done
        time.sleep(max(0.0, flipper_ends - time.monotonic()))
        hub().exec_run(["sh", "-c", "if [ -L /home/user2/notebook ]; then rm /home/user2/notebook; fi"])


def test_a_backup_holds_links_in_a_home_as_links_never_the_secret_behind_them(settings, login, hub, tmp_path):
    login("user2").terminal(
        "ln -sfn /srv/jupyterhub/jupyterhub_cookie_secret ~/notebook/grab; "
        + detached(
            "end=$((SECONDS + 30)); while [ $SECONDS -lt $end ]; do rm -f ~/notebook/flip; echo mine >~/notebook/flip;"
            " rm -f ~/notebook/flip; ln -s /srv/jupyterhub/jupyterhub_cookie_secret ~/notebook/flip; done"
        )
    )
    backups = tmp_path / "backups"
    project_playbook("backup.yml", "-e", f"quickjh_backup_dir={backups}")
    secret = hub().exec_run(["cat", "/srv/jupyterhub/jupyterhub_cookie_secret"]).output.strip()
    (archive,) = backups.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        home = [m for m in tar.getmembers() if m.name.startswith("home/user2/")]
        assert any(m.name == "home/user2/notebook/grab" and m.issym() for m in home)
        leaked = [m.name for m in home if m.isfile() and secret in tar.extractfile(m).read()]
    assert leaked == []


def test_rights_taken_away_end_every_process_at_once_and_what_an_admin_left(
    base_users, login, hub, user, passwords, hub_url
):
    listed = base_users + [{"name": "user3", "password": "us3r3-team-pw", "admin": True}]
    admin3 = user("user3")
    admin3.login("us3r3-team-pw")
    admin3.start_server()
    assert admin3.can_sudo("us3r3-team-pw")
    admin3.terminal(detached("sleep 1000"))
    # As root, user3 leaves a setuid-root shell in the container, and takes a copy of the cookie secret.
    planted = admin3.terminal(
        "echo us3r3-team-pw | sudo -S -p '' sh -c 'install -m 4755 /bin/bash /usr/local/bin/rootsh"
        " && cat /srv/jupyterhub/jupyterhub_cookie_secret' > ~/secret-copy"
    )
    assert planted.endswith("[exit 0]"), planted
    victim = login("user1", start=False)
    uid3 = uid_of(hub, "user3")
    assert any("sleep" in line for line in live_processes(hub, uid3))
    demoted = [dict(u, admin=False) if u["name"] == "user3" else u for u in listed]
    said = report(converge_users(demoted))
    assert "user3: not admin" in said and "The hub is made anew: user3 had root in its container" in said
    assert live_processes(hub, uid3) == []  # the server, its terminals and the detached sleep, all holding sudo
    assert hub().exec_run(["test", "-e", "/usr/local/bin/rootsh"]).exit_code != 0  # the container is new
    copy = hub().exec_run(["cat", "/home/user3/secret-copy"]).output.strip()
    assert copy and copy != hub().exec_run(["cat", "/srv/jupyterhub/jupyterhub_cookie_secret"]).output.strip()
    assert victim.http.get(f"{hub_url}/hub/home", allow_redirects=False, timeout=30).status_code == 302
    admin3 = user("user3")
    admin3.login("us3r3-team-pw")
    admin3.start_server()
    assert not admin3.can_sudo("us3r3-team-pw")
    admin3.terminal(detached("sleep 1000"))
    removed = base_users + [{"name": "user3", "state": "absent"}]
    assert "user3: removed" in report(converge_users(removed))
    assert live_processes(hub, uid3) == []
    assert hub().exec_run(["id", "user3"]).exit_code != 0


def test_a_fork_bomb_stops_at_the_users_limit_and_others_keep_working(settings, login, hub, hub_url, verify):
    neighbour = login("user1")
    bomber = login("user2")
    bomber.run("import subprocess\nsubprocess.Popen(['bash', '-c', ':(){ :|:& };:'], start_new_session=True)")
    uid2 = uid_of(hub, "user2")
    try:
        time.sleep(10)
        started = time.monotonic()
        assert requests.get(f"{hub_url}/hub/health", timeout=10, verify=verify).status_code == 200
        login("user1", start=False)  # a new login through the form
        assert "42" in neighbour.terminal("echo $((6 * 7))", timeout=120)
        print(f"during user2's fork bomb: user1 logged in and ran a command in {time.monotonic() - started:.1f} s")
        threads = len(hub().exec_run(["ps", "-o", "pid=", "-L", "-U", str(uid2)]).output.splitlines())
        assert 100 < threads <= settings["quickjh_user_max_processes"]
    finally:  # what an admin does (sudo quickjh-users end NAME): every process of the user ends at once
        assert hub().exec_run(["quickjh-users", "end", "user2"]).exit_code == 0
    assert live_processes(hub, uid2) == []
    assert neighbour.run("print(6 * 7)").strip() == "42"


def test_plain_http_beyond_the_host_is_warned_about(settings):
    result = playbook(
        Path(__file__).resolve().parents[2] / "shared/converge.yml",
        "--check",
        "-e",
        "quickjh_tls=off",
        "-e",
        "quickjh_bind_address=0.0.0.0",
    )
    assert "passwords and session cookies cross the network in plain HTTP" in report(result)
