#!/usr/bin/python3
"""quickjh-users: keep the container's Linux accounts in step with quickjh_users, and keep them across re-creation.

  quickjh-users sync       read {"users": [...], "check": bool, "policy": {...}} on stdin, apply it, print a JSON
                           report whose "msg" is the line the role shows
  quickjh-users add NAME   add one hub user from a terminal (then set the password with `passwd NAME`)
  quickjh-users save       copy the human accounts (UID_MIN..UID_MAX) to the state volume
  quickjh-users restore    put the saved accounts back into /etc after the container was (re)created

The rules of the list (user_problems) run twice from this one file: on the controller, where the role's filter
plugin imports it before anything is touched, and here again before a sync. Only the standard library: it runs on
the image's system python3.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ETC = Path(os.environ.get("QUICKJH_ETC", "/etc"))
HOME_ROOT = Path(os.environ.get("QUICKJH_HOME_ROOT", "/home"))
HUB_API = os.environ.get("QUICKJH_HUB_API", "http://127.0.0.1:8081/hub/api")
USERS_GROUP = "jupyterhub-users"
ADMIN_GROUP = "sudo"
UID_RANGE = (1000, 60000)  # login.defs' UID_MIN and UID_MAX when it sets none (Debian's values)
NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
CRYPT_HASH = re.compile(r"\$(y|gy|7|2[abxy]|6|5)\$[./A-Za-z0-9$=,]{8,}")
# Names a listed user may not take: the accounts and groups of the image (Debian's base) and the hub's own groups.
RESERVED = frozenset("""
    _apt adm audio backup bin cdrom daemon dialout dip fax floppy games irc jupyterhub jupyterhub-users kmem list lp
    mail man messagebus news nobody nogroup operator plugdev proxy root sasl shadow src staff sudo sync sys
    systemd-network systemd-timesync tape tty users utmp uucp video voice www-data""".split())


def state_dir() -> Path:
    """The state volume's mount point: the image's ENV sets it (sudoers keeps it for `sudo quickjh-adduser`)."""
    return Path(os.environ["QUICKJH_STATE"])


class PlanError(Exception):
    """The list asks for something that would hurt: nothing is changed."""


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    hash: str = ""
    groups: set[str] = field(default_factory=set)


@dataclass
class Home:
    uid: int
    mode: int
    notebook: bool


@dataclass
class Change:
    name: str
    action: str  # create | update | remove
    what: list[str]
    uid: int | None = None
    shell: str = "/bin/bash"
    groups: set[str] = field(default_factory=set)
    password: str | None = None
    password_hash: str | None = None
    fix_home: bool = False
    archive_home: bool = False


def user_problems(users: list[dict], uid_range_: tuple[int, int] = UID_RANGE, min_password_length: int = 8,
                  allow_weak_passwords: bool = False) -> list[str]:
    """Every rule of the list, one message per broken rule naming the entry (the types are argument_specs' job)."""
    names = [str(u["name"]) for u in users]
    uids = [u["uid"] for u in users if u.get("uid") is not None]
    out = []
    for user in users:
        name, uid = str(user["name"]), user.get("uid")
        password, hash_ = (None if user.get(key) is None else str(user[key]) for key in ("password", "password_hash"))
        who = f"user {name!r}"
        if not NAME.fullmatch(name):
            out.append(f"{who} is not a valid Linux user name (lower case letters, digits, _ or -, starting with a "
                       "letter or _, at most 32 characters)")
        elif name in RESERVED:
            out.append(f"{who} is a name the image uses for itself: pick another")
        if names.count(name) > 1:
            out.append(f"{who} is listed more than once")
        if user.get("state", "present") == "present" and (password is None) == (hash_ is None):
            out.append(f"{who} needs exactly one of password and password_hash")
        if password is not None and not allow_weak_passwords:
            if password == name:
                out.append(f"{who} has a password equal to the user name")
            elif len(password) < min_password_length:
                out.append(f"{who} has a password shorter than {min_password_length} characters "
                           "(quickjh_min_password_length)")
        if hash_ is not None and not CRYPT_HASH.fullmatch(hash_):
            out.append(f"{who} has a password_hash that is not a crypt(3) hash (yescrypt $y$, bcrypt $2b$, "
                       "SHA-512 $6$, SHA-256 $5$, scrypt $7$): make one with mkpasswd")
        if uid is not None and not uid_range_[0] <= uid <= uid_range_[1]:
            out.append(f"{who} has uid {uid}, outside {uid_range_[0]}-{uid_range_[1]} (the system accounts are below "
                       f"{uid_range_[0]})")
        elif uid is not None and uids.count(uid) > 1:
            out.append(f"{who} has uid {uid}, which another listed user has too")
        out += [f"{who} has an invalid group name {group!r}" for group in user.get("groups") or []
                if not NAME.fullmatch(group)]
    return out


def uid_range(etc: Path = ETC) -> tuple[int, int]:
    """UID_MIN and UID_MAX of login.defs (UID_RANGE when unset)."""
    values = dict(zip(("UID_MIN", "UID_MAX"), UID_RANGE))
    path = etc / "login.defs"
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in values and parts[1].isdigit():
                values[parts[0]] = int(parts[1])
    return values["UID_MIN"], values["UID_MAX"]


def read_table(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split(":") for line in path.read_text().splitlines() if line and not line.startswith("#")]


def read_accounts(etc: Path = ETC) -> dict[str, Account]:
    hashes = {row[0]: row[1] for row in read_table(etc / "shadow") if len(row) > 1}
    accounts = {
        row[0]: Account(row[0], int(row[2]), int(row[3]), row[5], row[6], hashes.get(row[0], ""))
        for row in read_table(etc / "passwd")
        if len(row) >= 7
    }
    for row in read_table(etc / "group"):
        for member in filter(None, row[3].split(",")) if len(row) >= 4 else ():
            if member in accounts:
                accounts[member].groups.add(row[0])
    return accounts


def read_homes(root: Path = HOME_ROOT) -> dict[str, Home]:
    homes = {}
    for entry in root.iterdir() if root.exists() else ():
        if entry.is_dir() and not entry.is_symlink():
            st = entry.stat()
            homes[entry.name] = Home(st.st_uid, st.st_mode & 0o777, (entry / "notebook").is_dir())
    return homes


def crypt(password: str, setting: str) -> str:
    """libcrypt's crypt(3): the same hashing PAM uses to check a login."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    result = lib.crypt(password.encode(), setting.encode())
    return result.decode() if result else ""


def password_differs(user: dict, account: Account, verify=crypt) -> bool:
    if user.get("password_hash"):
        return user["password_hash"] != account.hash
    if user.get("password") is not None:
        return not account.hash.startswith("$") or verify(user["password"], account.hash) != account.hash
    return False


def free_uid(taken: set[int], uid_min: int, uid_max: int) -> int:
    for uid in range(uid_min, uid_max + 1):
        if uid not in taken:
            return uid
    raise PlanError(f"no free UID left between {uid_min} and {uid_max}")


def choose_uid(user: dict, accounts: dict[str, Account], homes: dict[str, Home], uid_min: int, uid_max: int) -> int:
    """A UID nobody else's files or account hold: the owner of an existing home keeps it."""
    name = user["name"]
    owners = {a.uid: a.name for a in accounts.values()}
    for home_name, home in homes.items():
        owners.setdefault(home.uid, home_name)
    wanted = user.get("uid")
    if wanted is None and name in homes and homes[name].uid >= uid_min:
        wanted = homes[name].uid
        if owners.get(wanted, name) != name and wanted in {a.uid for a in accounts.values()}:
            raise PlanError(f"user '{name}': /home/{name} belongs to UID {wanted}, which is user "
                            f"'{owners[wanted]}'; move that home aside or give '{name}' a uid")
    if wanted is not None:
        if owners.get(wanted, name) != name:
            raise PlanError(f"user '{name}': uid {wanted} is already used by '{owners[wanted]}'")
        return wanted
    return free_uid(set(owners), uid_min, uid_max)


def plan(users: list[dict], accounts: dict[str, Account], homes: dict[str, Home],
         uid_range_: tuple[int, int] = (1000, 60000), verify=crypt) -> list[Change]:
    """What to do to bring the accounts to the list; no side effects."""
    changes: list[Change] = []
    accounts = dict(accounts)
    for user in users:
        name = user["name"]
        account = accounts.get(name)
        if user.get("state", "present") == "absent":
            archive = bool(user.get("remove_home")) and name in homes
            if account or archive:
                what = (["removed"] if account else []) + (["home archived"] if archive else [])
                changes.append(Change(name, "remove", what, archive_home=archive))
            continue
        groups = set(user.get("groups") or []) | {USERS_GROUP} | ({ADMIN_GROUP} if user.get("admin") else set())
        shell = user.get("shell") or "/bin/bash"
        change = Change(name, "update", [], shell=shell, groups=groups)
        if account is None:
            change.action, change.what = "create", ["created"]
            change.uid = choose_uid(user, accounts, homes, *uid_range_)
            change.password, change.password_hash = user.get("password"), user.get("password_hash")
            accounts[name] = Account(name, change.uid, change.uid, f"{HOME_ROOT}/{name}", shell)
            changes.append(change)
            continue
        if account.uid < uid_range_[0]:
            raise PlanError(f"user '{name}' is a system account of the image (uid {account.uid}): pick another name")
        if user.get("uid") is not None and user["uid"] != account.uid:
            raise PlanError(f"user '{name}' has uid {account.uid}; the list asks for {user['uid']}: "
                            "changing a UID would orphan the user's files, so quickjh does not do it")
        if (ADMIN_GROUP in account.groups) != bool(user.get("admin")):
            change.what.append("admin" if user.get("admin") else "not admin")
        if account.groups - {ADMIN_GROUP} != groups - {ADMIN_GROUP}:
            change.what.append("groups")
        if account.shell != shell:
            change.what.append("shell")
        if user.get("update_password", "on_create") == "always" and password_differs(user, account, verify):
            change.what.append("password")
            change.password, change.password_hash = user.get("password"), user.get("password_hash")
        home = homes.get(name)
        if home is None or home.uid != account.uid or home.mode != 0o700 or not home.notebook:
            change.what.append("home")
            change.fix_home = True
        if change.what:
            changes.append(change)
    return changes


def run(*cmd: str, stdin: str | None = None) -> None:
    subprocess.run(cmd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL)


def ensure_groups(groups: set[str]) -> None:
    existing = {row[0] for row in read_table(ETC / "group")}
    for group in sorted(groups - existing):
        run("groupadd", group)


def fix_home(name: str) -> None:
    account = read_accounts()[name]
    home = HOME_ROOT / name
    home.mkdir(mode=0o700, exist_ok=True)
    os.chown(home, account.uid, account.gid)
    home.chmod(0o700)
    notebook = home / "notebook"
    if not notebook.exists():
        notebook.mkdir()
        os.chown(notebook, account.uid, account.gid)


def archive_home(name: str) -> str:
    archives = state_dir() / "removed-homes"
    archives.mkdir(mode=0o700, exist_ok=True)
    target = archives / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(HOME_ROOT / name, arcname=name)
    shutil.rmtree(HOME_ROOT / name)
    return str(target)


def apply(changes: list[Change]) -> None:
    ensure_groups(set().union(*(c.groups for c in changes)) if changes else set())
    plain, hashed = [], []
    for c in changes:
        if c.action == "create":
            home_exists = (HOME_ROOT / c.name).is_dir()
            run("useradd", "--uid", str(c.uid), "--user-group", "--shell", c.shell, "--home-dir",
                f"{HOME_ROOT}/{c.name}", "--no-create-home" if home_exists else "--create-home",
                "--groups", ",".join(sorted(c.groups)), c.name)
            fix_home(c.name)
        elif c.action == "update":
            if {"admin", "not admin", "groups"} & set(c.what):
                run("usermod", "--groups", ",".join(sorted(c.groups)), c.name)
            if "shell" in c.what:
                run("usermod", "--shell", c.shell, c.name)
            if c.fix_home:
                fix_home(c.name)
        elif c.action == "remove":
            if "removed" in c.what:
                subprocess.run(["pkill", "-KILL", "-u", c.name], check=False)
                run("userdel", c.name)
            if c.archive_home:
                c.what[-1] = "home archived to " + archive_home(c.name)
        if c.password_hash:
            hashed.append(f"{c.name}:{c.password_hash}")
        elif c.password is not None:
            plain.append(f"{c.name}:{c.password}")
    if plain:
        run("chpasswd", stdin="\n".join(plain) + "\n")
    if hashed:
        run("chpasswd", "--encrypted", stdin="\n".join(hashed) + "\n")


HUB_LABELS = {"remove": "removed from the hub", "admin": "hub admin", "not admin": "hub not admin (server stopped)"}


def report(changes: list[Change], users: list[dict], hub_todo: dict[str, str] | None = None) -> dict:
    """Per user what changed, in the accounts and then in the hub; a user the hub alone changed counts as updated."""
    by_action = {"create": "created", "update": "updated", "remove": "removed"}
    out: dict = {"created": [], "updated": [], "removed": [], "unchanged": [], "users": {}}
    for c in changes:
        out[by_action[c.action]].append(c.name)
        out["users"][c.name] = c.what
    for name, action in (hub_todo or {}).items():
        if name not in out["users"]:
            out["updated"].append(name)
        out["users"].setdefault(name, []).append(HUB_LABELS[action])
    out["unchanged"] = [u["name"] for u in users if u["name"] not in out["users"]]
    out["changed"] = bool(out["users"])
    out["msg"] = "".join(f"{name}: {', '.join(what)}; " for name, what in out["users"].items()) + \
        f"unchanged: {len(out['unchanged'])}"
    return out


# --- The hub's own view: admin flags and removed users (JupyterHub does not revoke admin by itself) ----------------

def hub_api(method: str, path: str, body: dict | None = None) -> object:
    token = (state_dir() / "quickjh-sync.token").read_text().strip()
    request = urllib.request.Request(
        HUB_API + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json",
                 "Accept": "application/jupyterhub-pagination+json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        text = reply.read()
    return json.loads(text) if text else None


def hub_users() -> dict[str, bool]:
    """Every user the hub knows, with its admin flag."""
    found: dict[str, bool] = {}
    while True:
        page = hub_api("GET", f"/users?limit=200&offset={len(found)}")
        items = page["items"] if isinstance(page, dict) else page
        found.update({u["name"]: u["admin"] for u in items})
        if not items or not isinstance(page, dict) or not page["_pagination"].get("next"):
            return found


def plan_hub(users: list[dict], known: dict[str, bool]) -> dict[str, str]:
    """What the hub must be told: 'remove' for absent users it knows, 'admin'/'not admin' where its flag is off."""
    todo = {}
    for user in users:
        name = user["name"]
        if name not in known:
            continue
        if user.get("state", "present") == "absent":
            todo[name] = "remove"
        elif known[name] != bool(user.get("admin")):
            todo[name] = "admin" if user.get("admin") else "not admin"
    return todo


def remove_from_hub(names: list[str]) -> None:
    for name in names:
        for attempt in range(30):  # the hub stops the user's server first, and may ask to wait for it
            try:
                hub_api("DELETE", f"/users/{name}")
                break
            except urllib.error.HTTPError as err:
                if err.code != 400 or attempt == 29:
                    raise
                time.sleep(1)


def set_hub_admin(flags: dict[str, bool]) -> None:
    for name, admin in flags.items():
        hub_api("PATCH", f"/users/{name}", {"admin": admin})
        if not admin:  # its processes still hold the sudo group: stop them
            try:
                hub_api("DELETE", f"/users/{name}/server")
            except urllib.error.HTTPError as err:
                if err.code not in (400, 404):
                    raise


def sync(request: dict) -> dict:
    users = request.get("users", [])
    problems = user_problems(users, uid_range(), **request.get("policy", {}))
    if problems:
        raise PlanError("; ".join(problems))
    changes = plan(users, read_accounts(), read_homes(), uid_range())
    try:
        hub_todo = plan_hub(users, hub_users())
    except (OSError, urllib.error.URLError) as err:
        raise PlanError(f"the hub's API does not answer ({err}); is the hub running?") from err
    if not request.get("check"):
        remove_from_hub([name for name, action in hub_todo.items() if action == "remove"])
        apply(changes)
        set_hub_admin({name: action == "admin" for name, action in hub_todo.items() if action != "remove"})
        save()
    return report(changes, users, hub_todo)


# --- Accounts kept on the state volume ---------------------------------------------------------------------------

def snapshot(etc: Path = ETC) -> dict:
    """The human accounts (UID_MIN..UID_MAX), their own groups, and their memberships of the image's groups."""
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
        "members": {r[0]: sorted(set(r[3].split(",")) & names) for r in groups
                    if not low <= int(r[2]) <= high and set(r[3].split(",")) & names},
    }


def write_table(path: Path, rows: list[list[str]]) -> None:
    st = path.stat()
    tmp = path.with_name(path.name + ".quickjh")
    tmp.write_text("".join(":".join(r) + "\n" for r in rows))
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


def save() -> bool:
    """Write the snapshot to the state volume when it changed; True if written."""
    target = state_dir() / "accounts.json"
    data = json.dumps(snapshot(), indent=1, sort_keys=True)
    if target.exists() and target.read_text() == data:
        return False
    tmp = target.with_name("accounts.json.tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(data)
    tmp.replace(target)
    return True


def restore() -> int:
    source = state_dir() / "accounts.json"
    if not source.exists():
        return 0
    saved = json.loads(source.read_text())
    merge(ETC / "group", saved["group"], saved["members"], 3)
    merge(ETC / "gshadow", saved["gshadow"], saved["members"], 3)
    merge(ETC / "passwd", saved["passwd"])
    merge(ETC / "shadow", saved["shadow"])
    return len(saved["passwd"])


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    try:
        if command == "sync":
            print(json.dumps(sync(json.load(sys.stdin))))
        elif command == "add" and len(argv) == 3:
            changes = plan([{"name": argv[2]}], read_accounts(), read_homes(), uid_range())
            apply(changes)
            save()
            print(f"{argv[2]}: {', '.join(changes[0].what) if changes else 'already there'}")
        elif command == "save":
            save()
        elif command == "restore":
            print(f"quickjh-users: restored {restore()} saved accounts", file=sys.stderr)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except PlanError as err:
        print(json.dumps({"changed": False, "failed": True, "msg": f"quickjh_users: {err}"}))
        return 1
    except (subprocess.CalledProcessError, urllib.error.URLError) as err:
        print(json.dumps({"changed": True, "failed": True, "msg": f"quickjh_users: stopped half-way: {err}"}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
