"""quickjh-users: keep the container's Linux accounts in step with quickjh_users, and keep them across re-creation.

  quickjh-users sync       read {"users": [...], "shared": [...], "check": bool, "policy": {...}} on stdin, apply
                           it, print a JSON report whose "msg" is the line the role shows
  quickjh-users add NAME   add one hub user (then set the password with `passwd NAME`; quickjh-adduser does both)
  quickjh-users end NAME   end at once everything the user runs (a runaway job, a fork bomb): every process, and in
                           docker mode their container, as the sync does when it demotes or removes that user
  quickjh-users save       copy the human accounts (UID_MIN..UID_MAX) to the state volume
  quickjh-users watch      save them within half a second of any change (the image's entry point runs it)
  quickjh-users restore    put the saved accounts back into /etc after the container was (re)created

The image runs it as root from /usr/local/sbin, in Python's isolated mode (no user's site-packages, no PYTHON*
variables): from an admin's terminal `sudo quickjh-users ...`, from the host `docker exec CONTAINER quickjh-users ...`.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.error

from quickjh import settings
from quickjh.accounts import read_accounts, read_homes, uid_range
from quickjh.apply import apply
from quickjh.ending import end_user
from quickjh.hubapi import access, stop_server
from quickjh.nofollow import Refused
from quickjh.persistence import restore, save, watch
from quickjh.plan import PlanError, plan
from quickjh.rules import is_human_uid, user_problems
from quickjh.sync import sync


def add(name: str) -> int:
    problems = user_problems([{"name": name, "password_hash": "$6$" + "x" * 8}], uid_range())
    if problems:
        raise PlanError("; ".join(problems))
    changes = plan([{"name": name}], read_accounts(), read_homes(), uid_range())
    failed = apply(changes)
    save()
    print(
        f"{name}: {', '.join(changes[0].what) if changes else 'already there'}"
        + "".join(f"; NOT DONE: {why}" for why in failed.values())
    )
    return 1 if failed else 0


def end(name: str) -> int:
    account = read_accounts().get(name)
    if account is None or not is_human_uid(account.uid, uid_range()):
        raise PlanError(f"{name!r} is not a hub user")
    end_user(name, account.uid, settings.load())
    with contextlib.suppress(OSError, urllib.error.URLError), access():  # the hub is told, when it answers
        stop_server(name)
    print(f"{name}: everything they ran has ended")
    return 0


def run_sync() -> int:
    result = sync(json.load(sys.stdin), settings.load())
    print(json.dumps(result))
    return 1 if result.get("failed") else 0


def restored() -> int:
    count, dropped = restore()
    print(f"quickjh-users: restored {count} saved accounts", file=sys.stderr)
    if dropped:
        print(
            f"quickjh-users: sudo not restored for {', '.join(dropped)} (not an admin in quickjh_users)",
            file=sys.stderr,
        )
    return 0


# Each command, with the number of arguments it takes.
COMMANDS = {
    "sync": (run_sync, 0),
    "add": (add, 1),
    "end": (end, 1),
    "save": (lambda: save() and 0, 0),
    "watch": (watch, 0),
    "restore": (restored, 0),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    command, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if command not in COMMANDS or len(args) != COMMANDS[command][1]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return COMMANDS[command][0](*args) or 0
    except PlanError as err:
        print(json.dumps({"changed": False, "failed": True, "msg": f"quickjh_users: {err}"}))
        return 1
    except (subprocess.CalledProcessError, urllib.error.URLError, Refused, OSError) as err:
        print(json.dumps({"changed": True, "failed": True, "msg": f"quickjh_users: stopped half-way: {err}"}))
        return 1
