"""Accounts kept across re-creation of the container: the human accounts (UID_MIN..UID_MAX) are saved on the state
volume at each change (`quickjh-users watch`, run by the image's entry point) and put back into /etc at start."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from quickjh import accounts
from quickjh.accountlock import end_user_holders
from quickjh.accounts import read_table, uid_range
from quickjh.rules import ADMIN_GROUP, NAME, PRIVILEGED_GROUPS
from quickjh.settings import state_dir


def snapshot(etc: Path | None = None) -> dict:
    """The human accounts (UID_MIN..UID_MAX), their own groups, and their memberships of the image's groups."""
    etc = etc or accounts.ETC
    low, high = uid_range(etc)
    passwd = [r for r in read_table(etc / "passwd") if len(r) >= 7 and low <= int(r[2]) <= high]
    names = {r[0] for r in passwd}
    groups = [r for r in read_table(etc / "group") if len(r) >= 4]
    own = [r for r in groups if low <= int(r[2]) <= high]
    return {
        "passwd": [":".join(r) for r in passwd],
        "shadow": [":".join(r) for r in read_table(etc / "shadow") if r[0] in names],
        "group": [":".join(r) for r in own],
        "gshadow": [":".join(r) for r in read_table(etc / "gshadow") if r[0] in {g[0] for g in own}],
        "members": {
            r[0]: sorted(set(r[3].split(",")) & names)
            for r in groups
            if not low <= int(r[2]) <= high and set(r[3].split(",")) & names
        },
    }


def write_table(path: Path, rows: list[list[str]]) -> None:
    st = path.stat()
    tmp = path.with_name(path.name + ".quickjh")
    tmp.write_text("".join(":".join(r) + "\n" for r in rows), errors="surrogateescape")
    os.chown(tmp, st.st_uid, st.st_gid)
    tmp.chmod(st.st_mode & 0o777)
    tmp.replace(path)


def merge(path: Path, saved: list[str], members: dict[str, list[str]] | None = None, column: int = 3) -> None:
    """Put saved lines into a colon file (replacing same-named rows) and add saved members to its groups."""
    if not path.exists():
        return
    rows = read_table(path)
    wanted = {line.split(":")[0]: line.split(":") for line in saved}
    rows = [wanted.pop(r[0], r) for r in rows] + list(wanted.values())
    for row in rows:
        extra = (members or {}).get(row[0])
        if extra and len(row) > column:
            current = [m for m in row[column].split(",") if m]
            row[column] = ",".join(current + [m for m in extra if m not in current])
    write_table(path, rows)


@contextlib.contextmanager
def accounts_lock():
    """The lock useradd, usermod, chpasswd and passwd hold while they change the account files (lckpwdf, waiting
    up to 15 s): a snapshot never sees half of a change, such as an account without its password line."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.lckpwdf() != 0:
        raise OSError(ctypes.get_errno(), "the account files stay locked (lckpwdf)")
    try:
        yield
    finally:
        libc.ulckpwdf()


def save() -> bool:
    """Write the snapshot to the state volume when it changed; True if written. The lock is held while reading
    only: a sync's useradd waits for no disk. (A slower writer may put an older snapshot back; the watcher sees the
    files changed since its own read and saves again within half a second.)"""
    target = state_dir() / "accounts.json"
    try:
        with accounts_lock():
            data = json.dumps(snapshot(), indent=1, sort_keys=True)
    except OSError:  # held 15 s: a user's own passwd, stopped? End it (it loses only its own change), once more
        for name in end_user_holders():
            print(f"quickjh-users watch: {name}: their own passwd held the account files' lock, ended", file=sys.stderr)
        with accounts_lock():
            data = json.dumps(snapshot(), indent=1, sort_keys=True)
    if target.exists() and target.read_text() == data:
        return False
    write_atomically(target, data)
    return True


def write_atomically(target: Path, data: str) -> None:
    """data into target whole or not at all (mode 600, a file of its own per writer, then renamed)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".")
    try:
        with open(fd, "w") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def watch(every: float = 0.5) -> None:
    """Save within `every` seconds of any change to the account files, whoever made it (passwd or useradd in a
    terminal, the sync): a container killed 2 s later keeps it. Stat calls only, while nothing changes."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped: let save() remove its temporary file
    files = [accounts.ETC / name for name in ("passwd", "shadow", "group", "gshadow")]
    seen = None
    while True:
        try:
            now = [(st.st_ino, st.st_mtime_ns, st.st_size) for st in map(os.stat, files)]
            if now != seen:
                save()
                seen = now
        except Exception as err:
            print(f"quickjh-users watch: not saved, trying again: {err!r}", file=sys.stderr)
        time.sleep(every)


def human_rows(saved: list[str], table: Path, low: int, high: int) -> list[str]:
    """Saved rows of a human account or group: a valid name, id in UID_MIN..UID_MAX, not a name the image has."""
    image = {
        row[0] for row in read_table(table) if len(row) > 2 and not (row[2].isdigit() and low <= int(row[2]) <= high)
    }

    def human(fields: list[str]) -> bool:
        return (
            len(fields) > 3
            and bool(NAME.fullmatch(fields[0]))
            and fields[0] not in image
            and all(f.isdigit() and low <= int(f) <= high for f in fields[2 : 4 if table.name == "passwd" else 3])
        )

    return [line for line in saved if human(line.split(":"))]


def keep_listed(users: list[dict]) -> None:
    """Who quickjh_users names as present (people.json on the state volume), and of them the admins (admins.json):
    the only ones a restore makes sudoers, and with a login kind from elsewhere the people let in besides its groups
    and the admins it makes. Read at each login, so a change of the list needs no restart of the hub."""
    present = [u for u in users if u.get("state", "present") == "present"]
    write_atomically(state_dir() / "people.json", json.dumps(sorted(u["name"] for u in present)))
    write_atomically(state_dir() / "admins.json", json.dumps(sorted(u["name"] for u in present if u.get("admin"))))


def listed(what: str = "admins") -> set[str]:
    """The names keep_listed kept last: "people" or "admins" (none before the first sync)."""
    try:
        return set(json.loads((state_dir() / f"{what}.json").read_text()))
    except (OSError, ValueError):
        return set()


def restore() -> tuple[int, list[str]]:
    """Put the saved accounts back; a saved row that is not a human account (UID_MIN..UID_MAX) never comes back, and
    no membership of a group that carries rights does, but sudo for the admins quickjh_users names. Returns how many
    accounts came back and whose sudo did not."""
    source = state_dir() / "accounts.json"
    if not source.exists():
        return 0, []
    saved = json.loads(source.read_text())
    low, high = uid_range()
    passwd = human_rows(saved["passwd"], accounts.ETC / "passwd", low, high)
    group = human_rows(saved["group"], accounts.ETC / "group", low, high)
    names, groups = ({line.split(":")[0] for line in rows} for rows in (passwd, group))
    members = {g: [m for m in ms if m in names] for g, ms in saved["members"].items() if g not in PRIVILEGED_GROUPS}
    admins = listed()
    sudoers = [m for m in saved["members"].get(ADMIN_GROUP, []) if m in names]
    members[ADMIN_GROUP] = [m for m in sudoers if m in admins]
    merge(accounts.ETC / "group", group, members, 3)
    merge(accounts.ETC / "gshadow", [line for line in saved["gshadow"] if line.split(":")[0] in groups], members, 3)
    merge(accounts.ETC / "passwd", passwd)
    merge(accounts.ETC / "shadow", [line for line in saved["shadow"] if line.split(":")[0] in names])
    return len(passwd), [m for m in sudoers if m not in admins]
