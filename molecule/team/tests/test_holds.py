"""Nothing a user does holds the hub or the users sync for the others: user2 (the hostile user) holds every new
process of theirs (ptrace, or SIGSTOP) in a tight loop while restarting their server, as code started from their
own kernel; the hub, another user's login and code, and the admin's API keep answering, and the next run removes
user2."""

from __future__ import annotations

import threading
import time

import requests

from hubfixtures import converge_users

# user2's loop, detached from the server it will restart: every new process of user2's is held at once,
# for `seconds`: traced (ptrace attach stops it, and a tracer that never lets go holds it) where the kernel allows
# it, stopped (SIGSTOP) where not (a launcher that has not yet exec'd the server cannot be traced by user2). Then
# everything held is let go, and how many of each kind is written to ~/.held.
STOPPER = r"""
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH, WALL = 16, 17, 0x40000000
me, traced, stopped = os.getuid(), set(), set()
before = {{int(pid) for pid in os.listdir('/proc') if pid.isdigit()}}  # what runs now (this kernel too) is let be
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    for pid in {{int(pid) for pid in os.listdir('/proc') if pid.isdigit()}} - before - traced - stopped:
        try:  # its real user, looked at again and again: a launcher turns into user2 on its way to the server
            status = open(f'/proc/{{pid}}/status').read()
            if int(status.split('\nUid:')[1].split()[0]) == me:
                if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
                    traced.add(pid)
                else:
                    os.kill(pid, signal.SIGSTOP)
                    stopped.add(pid)
        except (OSError, IndexError, ValueError):
            pass
for pid in traced:
    try:
        os.waitpid(pid, os.WNOHANG | WALL)
    except OSError:
        pass
    libc.ptrace(PTRACE_DETACH, pid, None, None)
for pid in traced | stopped:
    try:
        os.kill(pid, signal.SIGCONT)
    except OSError:
        pass
open(os.path.expanduser('~/.held'), 'w').write(f'{{len(traced)}} traced, {{len(stopped)}} stopped')
"""


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def test_a_user_who_stops_every_process_of_theirs_while_restarting_holds_nothing_for_others(
    base_users, login, user, passwords, hub, hub_url, verify
):
    neighbour, admin, attacker = login("user1"), login("admin", start=False), login("user2")
    started = attacker.run(
        "import os, subprocess, sys\n"
        "if os.path.exists(os.path.expanduser('~/.held')): os.remove(os.path.expanduser('~/.held'))\n"
        f"subprocess.Popen([sys.executable, '-c', {STOPPER.format(seconds=40)!r}], start_new_session=True,"
        " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print('stopper started')"
    )
    assert "stopper started" in started
    worst: dict[str, float] = {"health": 0.0, "login": 0.0, "code": 0.0, "admin API": 0.0}
    restarts = threading.Thread(target=restart_repeatedly, args=(attacker, 25), daemon=True)
    with neighbour.kernel() as execute:
        execute("x = 41")
        restarts.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            health = requests.get(f"{hub_url}/hub/health", timeout=10, verify=verify)
            worst["health"] = max(worst["health"], health.elapsed.total_seconds())
            worst["login"] = max(worst["login"], timed(lambda: user("user1").login(passwords["user1"])))
            worst["code"] = max(worst["code"], timed(lambda: execute("x += 0; print(x + 1)")))
            worst["admin API"] = max(worst["admin API"], timed(lambda: admin.hub_api("GET", "/users")))
            time.sleep(0.5)
        assert execute("print(x + 1)").strip() == "42"
    restarts.join()
    held = ""
    while not held and time.monotonic() < deadline + 30:  # the loop ends 40 s after it started
        time.sleep(1)
        found = hub().exec_run(["sh", "-c", "cat ~user2/.held"])
        held = found.output.decode() if found.exit_code == 0 else ""
    print(f"\nwhile user2 held every process of theirs ({held}) and restarted their server, worst answers: {worst}")
    assert sum(int(word) for word in held.split()[::2]) > 0, held  # user2 did hold processes of their restarts
    assert all(seconds < 2 for seconds in worst.values()), worst
    # The next run removes user2 (their stopped processes included) and applies the rest, and user2's API token and
    # session end with them; then user2 is back.
    token = attacker.hub_api("POST", "/users/user2/tokens", json={"note": "kept for later"}).json()["token"]
    assert (
        requests.get(
            f"{hub_url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=10, verify=verify
        ).status_code
        == 200
    )
    uid = hub().exec_run(["id", "-u", "user2"]).output.decode().strip()
    removed = converge_users([{"name": "user2", "state": "absent"} if u["name"] == "user2" else u for u in base_users])
    assert "user2: removed" in " ".join(removed.stdout.split())
    assert hub().exec_run(["pgrep", "-U", uid]).exit_code == 1  # nothing of user2's left (the name is gone)
    assert (
        requests.get(
            f"{hub_url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=10, verify=verify
        ).status_code
        == 403
    )
    assert attacker.hub_api("GET", "/user").status_code == 403
    converge_users(base_users)


def restart_repeatedly(attacker, seconds: float) -> None:
    """user2 restarts their own server over the API, again and again, without waiting for it to come up."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        attacker.hub_api("DELETE", f"/users/{attacker.name}/server")
        time.sleep(1)
        attacker.hub_api("POST", f"/users/{attacker.name}/server")
        time.sleep(2)


def test_a_hub_that_stops_answering_is_started_again_by_itself_and_the_next_run_says_so(
    settings, base_users, hub, hub_url, login
):
    login("user1").run("open('before-freeze.txt', 'w').write('kept')")
    before = hub().attrs["RestartCount"]
    hub_pid = hub().exec_run(["pgrep", "-f", "^/opt/jupyterhub/bin/python3 /opt/jupyterhub/bin/jupyterhub "])
    assert hub().exec_run(["kill", "-STOP", hub_pid.output.split()[0].decode()]).exit_code == 0  # frozen
    started = time.monotonic()
    deadline = started + settings["quickjh_watchdog_seconds"] + 120
    while time.monotonic() < deadline:
        if hub().attrs["RestartCount"] > before:
            try:
                if requests.get(f"{hub_url}/hub/health", timeout=5, verify=False).status_code == 200:
                    break
            except requests.RequestException:
                pass
        time.sleep(1)
    else:
        raise AssertionError("the frozen hub was not started again")
    print(
        f"\na frozen hub answered again after {time.monotonic() - started:.0f} s (watch: "
        f"{settings['quickjh_watchdog_seconds']} s)"
    )
    assert hub().attrs["RestartCount"] == before + 1
    assert login("user1").run("print(open('before-freeze.txt').read())").strip() == "kept"
    said = " ".join(converge_users(base_users).stdout.split())
    assert "WARNING: " in said and "the hub did not answer for" in said and "was started again" in said
    assert "the hub did not answer" not in " ".join(converge_users(base_users).stdout.split())  # said once
