"""The container's accounts as /etc has them: reading passwd, shadow, group and login.defs, and the hub's rule of
who may log in. Reads only: nothing here changes a file (standard library only; the hub imports it at each login).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from quickjh.rules import UID_RANGE, is_human_uid

ETC = Path(os.environ.get("QUICKJH_ETC", "/etc"))
HOME_ROOT = Path(os.environ.get("QUICKJH_HOME_ROOT", "/home"))
NO_PASSWORD = frozenset({"", "!", "!!", "*", "!*"})  # shadow's password field of an account never given one


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    hash: str = ""
    groups: set[str] = field(default_factory=set)
    expire: str = ""  # shadow's expiry date, days since 1970 ("": never); quickjh_users' locked: true sets 1

    @property
    def expired(self) -> bool:
        return self.expire.isdigit() and int(self.expire) <= int(time.time() // 86400)


@dataclass
class Home:
    uid: int
    mode: int
    notebook: bool


def uid_range(etc: Path | None = None) -> tuple[int, int]:
    """UID_MIN and UID_MAX of login.defs (UID_RANGE when unset)."""
    values = dict(zip(("UID_MIN", "UID_MAX"), UID_RANGE, strict=True))
    path = (etc or ETC) / "login.defs"
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in values and parts[1].isdigit():
                values[parts[0]] = int(parts[1])
    return values["UID_MIN"], values["UID_MAX"]


def read_table(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    text = path.read_text(errors="surrogateescape")  # `chfn -r` lets a user put any bytes into /etc/passwd
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def read_accounts(etc: Path | None = None) -> dict[str, Account]:
    etc = etc or ETC
    shadow = {row[0]: row for row in read_table(etc / "shadow") if len(row) > 1}
    accounts = {
        row[0]: Account(
            row[0],
            int(row[2]),
            int(row[3]),
            row[5],
            row[6],
            shadow.get(row[0], ["", ""])[1],
            expire=(shadow.get(row[0], []) + [""] * 9)[7],
        )
        for row in read_table(etc / "passwd")
        if len(row) >= 7
    }
    for row in read_table(etc / "group"):
        for member in filter(None, row[3].split(",")) if len(row) >= 4 else ():
            if member in accounts:
                accounts[member].groups.add(row[0])
    return accounts


def group_ids(etc: Path | None = None) -> dict[str, int]:
    """Every group's GID, by name."""
    return {row[0]: int(row[2]) for row in read_table((etc or ETC) / "group") if len(row) > 2 and row[2].isdigit()}


def own_groups(accounts: dict[str, Account], low: int) -> set[str]:
    """The own groups of the container's human accounts (each named after its user)."""
    return {a.name for a in accounts.values() if a.uid >= low}


def read_homes(root: Path | None = None) -> dict[str, Home]:
    root = root or HOME_ROOT
    homes = {}
    for entry in root.iterdir() if root.exists() else ():
        if entry.is_dir() and not entry.is_symlink():
            st = entry.stat()
            homes[entry.name] = Home(st.st_uid, st.st_mode & 0o777, (entry / "notebook").is_dir())
    return homes


def login_problem(name: str, etc: Path | None = None, home_root: Path | None = None) -> str | None:
    """Why this account may not log in to the hub, or None when it may: every human account (UID_MIN..UID_MAX) with
    a usable password may, however it was made. The password itself is PAM's to check. An account that useradd
    gave the UID of a removed user's kept home would own that home: it may not, until it has a UID of its own."""
    etc, home_root = etc or ETC, home_root or HOME_ROOT
    account = read_accounts(etc).get(name)
    low, high = uid_range(etc)
    if account is None:
        return f"{name!r} has no account in the hub's container"
    if not is_human_uid(account.uid, (low, high)):
        return f"{name!r} is a system account (uid {account.uid}, outside {low}-{high})"
    if account.expired:
        return f"{name!r} is locked (quickjh_users' locked: true; the list unlocks it)"
    if account.hash in NO_PASSWORD or account.hash.startswith(("!", "*")):
        return f"{name!r} has no password or a locked one (sudo passwd {name} sets one)"
    others = sorted(home for home, found in read_homes(home_root).items() if found.uid == account.uid and home != name)
    if others:
        return (
            f"{name!r} has uid {account.uid}, which owns {home_root}/{others[0]}, another user's kept home: give "
            f"{name} a UID of its own (sudo usermod -u UID {name}; sudo quickjh-adduser picks one)"
        )
    return None
