#!/usr/bin/python3
"""quickjh-users: keep the container's Linux accounts in step with quickjh_users, and keep them across re-creation.

  quickjh-users sync       read {"users": [...], "shared": [...], "check": bool, "policy": {...}} on stdin, apply
                           it, print a JSON report whose "msg" is the line the role shows
  quickjh-users add NAME   add one hub user from a terminal (then set the password with `passwd NAME`)
  quickjh-users end NAME   end every process of a hub user at once (a runaway job, a fork bomb), as the sync does
                           when it demotes or removes that user
  quickjh-users save       copy the human accounts (UID_MIN..UID_MAX) to the state volume
  quickjh-users watch      save them within half a second of any change (the image's entry point runs it)
  quickjh-users restore    put the saved accounts back into /etc after the container was (re)created

The rules of the list (user_problems) run twice from this one file: on the controller, where the role's filter
plugin imports it before anything is touched, and here again before a sync. The hub's rule of who may log in
(login_problem) is here too: the hub's config imports this file. Only the standard library: it runs on the image's
system python3.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from quickjh_nofollow import DEFAULT_ACL, Refused, add_tree, end_processes, fix_home as make_home

ETC = Path(os.environ.get("QUICKJH_ETC", "/etc"))
HOME_ROOT = Path(os.environ.get("QUICKJH_HOME_ROOT", "/home"))
SHARED_ROOT = Path(os.environ.get("QUICKJH_SHARED_ROOT", "/srv/shared"))
# The hub's own API, inside the container, under quickjh_base_url (the container's QUICKJH_BASE_URL).
HUB_API = f"http://127.0.0.1:8081{os.environ.get('QUICKJH_BASE_URL', '/')}hub/api"
ADMIN_GROUP = "sudo"
UID_RANGE = (1000, 60000)  # login.defs' UID_MIN and UID_MAX when it sets none (Debian's values)
NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a newline in a password would be a second line for chpasswd
MAX_PASSWORD_BYTES = 512  # libxcrypt's CRYPT_MAX_PASSPHRASE_SIZE
NO_PASSWORD = frozenset({"", "!", "!!", "*", "!*"})  # shadow's password field of an account never given one
CRYPT_HASH = re.compile(r"\$(y|gy|7|2[abxy]|6|5)\$[./A-Za-z0-9$=,]{8,}")
# Names a listed user may not take: the accounts and groups of the image (Debian's base) and the hub's own groups.
RESERVED = frozenset("""
    _apt adm audio backup bin cdrom daemon dialout dip disk fax floppy games irc jupyterhub jupyterhub-users kmem list
    lp mail man messagebus news nobody nogroup operator plugdev proxy root sasl shadow src staff sudo sync sys
    systemd-network systemd-timesync tape tty users utmp uucp video voice www-data""".split())
# Groups that carry power (reading disks, logs or shadow, running Docker, sudo, ...): the list cannot hand them out;
# `admin: true` is the one way to sudo. A listed group must be the team's own (not the image's, not a user's).
PRIVILEGED_GROUPS = RESERVED | {"admin", "wheel", "docker", "lxd", "systemd-journal", "_ssh", "crontab", "input",
                                "kvm", "render", "netdev", "bluetooth", "sgx"}


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
        out += [f"{who} has a {key} with a control character (a newline, a tab, ...)"
                for key, value in (("password", password), ("password_hash", hash_))
                if value is not None and CONTROL.search(value)]
        if password is not None and len(password.encode()) > MAX_PASSWORD_BYTES:
            out.append(f"{who} has a password longer than {MAX_PASSWORD_BYTES} bytes (libcrypt hashes no longer one)")
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
        problems = (group_problem(group, names) for group in user.get("groups") or [])
        out += [f"{who} {problem}" for problem in problems if problem]
    return out


def group_problem(group: object, names: list[str] | set[str]) -> str | None:
    """What is wrong with handing out this group (to a listed user, or to a shared folder), if anything; names:
    the users whose own groups these are (the listed ones, or the container's human accounts)."""
    group = str(group)
    if not NAME.fullmatch(group):
        return f"has an invalid group name {group!r}"
    if group in PRIVILEGED_GROUPS:
        return (f"has group {group!r}, a group of the image that carries rights: list only the team's own groups "
                "(admin: true is the way to sudo)")
    if group in names:
        return f"has group {group!r}, the own group of a user: it would open that user's files"
    return None


def shared_problems(folders: list[dict], users: list[dict]) -> list[str]:
    """The rules of quickjh_shared_folders: a folder name (it becomes ~/notebook/NAME), once each; a team's group."""
    names = [str(f["name"]) for f in folders]
    out = []
    for folder in folders:
        name, who = str(folder["name"]), f"shared folder {str(folder['name'])!r}"
        if not NAME.fullmatch(name):
            out.append(f"{who} is not a valid folder name (lower case letters, digits, _ or -, starting with a letter "
                       "or _, at most 32 characters)")
        if names.count(name) > 1:
            out.append(f"{who} is listed more than once")
        problem = group_problem(folder["group"], [str(u["name"]) for u in users])
        if problem:
            out.append(f"{who} {problem}")
    return out


def own_groups(accounts: dict[str, Account], low: int) -> set[str]:
    """The own groups of the container's human accounts (each named after its user)."""
    return {a.name for a in accounts.values() if a.uid >= low}


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
    text = path.read_text(errors="surrogateescape")  # `chfn -r` lets a user put any bytes into /etc/passwd
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


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


def login_problem(name: str, etc: Path = ETC, home_root: Path = HOME_ROOT) -> str | None:
    """Why this account may not log in to the hub, or None when it may: every human account (UID_MIN..UID_MAX) with
    a usable password may, however it was made. The password itself is PAM's to check. An account that useradd
    gave the UID of a removed user's kept home would own that home: it may not, until it has a UID of its own."""
    account = read_accounts(etc).get(name)
    low, high = uid_range(etc)
    if account is None:
        return f"{name!r} has no account in the hub's container"
    if not low <= account.uid <= high:
        return f"{name!r} is a system account (uid {account.uid}, outside {low}-{high})"
    if account.hash in NO_PASSWORD or account.hash.startswith(("!", "*")):
        return f"{name!r} has no password or a locked one (sudo passwd {name} sets one)"
    others = sorted(home for home, found in read_homes(home_root).items() if found.uid == account.uid and home != name)
    if others:
        return (f"{name!r} has uid {account.uid}, which owns {home_root}/{others[0]}, another user's kept home: give "
                f"{name} a UID of its own (sudo usermod -u UID {name}; sudo quickjh-adduser picks one)")
    return None


def read_homes(root: Path = HOME_ROOT) -> dict[str, Home]:
    homes = {}
    for entry in root.iterdir() if root.exists() else ():
        if entry.is_dir() and not entry.is_symlink():
            st = entry.stat()
            homes[entry.name] = Home(st.st_uid, st.st_mode & 0o777, (entry / "notebook").is_dir())
    return homes


@functools.cache
def libcrypt() -> ctypes.CDLL:
    """libxcrypt, PAM's own hashing, through its thread-safe calls (loaded when first used: the controller, which
    imports this file for its rules, may have none)."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_rn.restype = ctypes.c_char_p
    lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.crypt_gensalt_rn.restype = ctypes.c_char_p
    lib.crypt_gensalt_rn.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_void_p, ctypes.c_int]
    return lib


def crypt(password: str, setting: str) -> str:
    """crypt(3): the hash PAM compares with at login ("" when the setting is not one libcrypt knows)."""
    data = ctypes.create_string_buffer(32768)  # struct crypt_data
    result = libcrypt().crypt_rn(password.encode(), setting.encode(), data, len(data))
    return result.decode() if result else ""


def new_hash(password: str) -> str:
    """A new hash of password with a random salt, by libcrypt's default method and cost (yescrypt here: what
    passwd and chpasswd make)."""
    setting = ctypes.create_string_buffer(128)
    if not libcrypt().crypt_gensalt_rn(None, 0, None, 0, setting, len(setting)):
        raise OSError("crypt_gensalt found no hashing method")
    hashed = crypt(password, setting.value.decode())
    if not hashed.startswith("$"):
        raise OSError(f"crypt failed with setting {setting.value.decode()!r}")
    return hashed


def hash_all(passwords: dict[str, str]) -> dict[str, str]:
    """New hashes of these passwords, by name, up to 4 at once on the cores there are (ctypes lets go of the GIL
    while libcrypt works): about 25 ms of CPU each. The passwords never leave this process."""
    if not passwords:
        return {}
    # Each yescrypt hash holds 16 MiB while it runs: a few at once, whatever the host's count of cores.
    with ThreadPoolExecutor(min(len(passwords), len(os.sched_getaffinity(0)), 4)) as pool:
        return dict(zip(passwords, pool.map(new_hash, passwords.values())))


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
        groups = set(user.get("groups") or []) | ({ADMIN_GROUP} if user.get("admin") else set())
        own = own_groups(accounts, uid_range_[0])
        for problem in filter(None, (group_problem(group, own) for group in user.get("groups") or [])):
            raise PlanError(f"user '{name}' {problem}")
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
        never_set = account.hash in NO_PASSWORD  # made, then the run was killed before its passwords were set
        if (user.get("update_password", "on_create") == "always" or never_set) \
                and password_differs(user, account, verify):
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
    subprocess.run(cmd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def share(folders: list[dict], check: bool = False, failed: dict[str, str] | None = None) -> list[str]:
    """Set up each shared folder (a volume at SHARED_ROOT/NAME) for its group: root and the group own it, mode 2770
    (what is made in it gets the group), DEFAULT_ACL. Only the folder itself is touched, never what users put in
    it. Returns the names of the folders that were not so (in check mode: that would change); a folder whose file
    system refuses goes into failed."""
    if not check:
        ensure_groups({str(f["group"]) for f in folders})
    gids = {row[0]: int(row[2]) for row in read_table(ETC / "group") if len(row) > 2 and row[2].isdigit()}
    changed = []
    for folder in folders:
        try:
            fd = os.open(SHARED_ROOT / str(folder["name"]), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if not check:
                raise
            changed.append(str(folder["name"]))  # its volume is mounted when the container is made again
            continue
        try:
            st = os.fstat(fd)
            try:
                acl = os.getxattr(fd, "system.posix_acl_default")
            except OSError:
                acl = b""
            gid = gids.get(str(folder["group"]))
            if (st.st_uid, st.st_gid, st.st_mode & 0o7777, acl) == (0, gid, 0o2770, DEFAULT_ACL):
                continue
            changed.append(str(folder["name"]))
            if not check:
                os.fchown(fd, 0, gid)
                os.fchmod(fd, 0o2770)
                os.setxattr(fd, "system.posix_acl_default", DEFAULT_ACL)
        except OSError as err:  # a volume on NFS with root squash, or without ACLs
            if failed is None:
                raise
            failed[f"shared folder {folder['name']}"] = f"{err.strerror}: its volume must let root chown and set ACLs"
        finally:
            os.close(fd)
    return changed


def ensure_groups(groups: set[str]) -> None:
    existing = {row[0] for row in read_table(ETC / "group")}
    for group in sorted(groups - existing):
        run("groupadd", group)


def fix_home(name: str) -> None:
    ids = next(((int(r[2]), int(r[3])) for r in read_table(ETC / "passwd") if r[0] == name and len(r) >= 7), None)
    if ids is None:
        raise OSError(f"{name} has no line in /etc/passwd")
    make_home(HOME_ROOT / name, *ids)


def archive_home(name: str) -> str:
    """The removed user's home as a tar.gz on the state volume (links kept as links), then the home goes."""
    archives = state_dir() / "removed-homes"
    archives.mkdir(mode=0o700, exist_ok=True)
    target = archives / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        left_out = add_tree(tar, HOME_ROOT / name, name)
    remove_tree(HOME_ROOT / name)
    return str(target) + (f" (left out: {', '.join(left_out[:5])})" if left_out else "")


def remove_tree(path: Path | str) -> None:
    """rm -rf: never follows a link out of the tree, nor leaves its file system, however deep the tree is."""
    run("rm", "-rf", "--one-file-system", "--", str(path))


def forget_uid(uid: int) -> None:
    """What a removed UID leaves outside its home (kernels' keys, temp files): a new user may get that UID."""
    remove_tree(f"/run/user/{uid}")
    subprocess.run(["find", "/tmp", "/var/tmp", "/dev/shm", "-xdev", "-depth", "-uid", str(uid), "-delete"],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def lock(names: list[str]) -> dict[str, str]:
    """No new login for users about to be removed (locked and expired) before their processes are ended."""
    failed = {}
    for name in names:
        try:
            run("usermod", "--lock", "--expiredate", "1", name)
        except subprocess.CalledProcessError as err:
            failed[name] = f"usermod --lock failed: {(err.stderr or '').strip()}"
    return failed


def apply_one(c: Change, accounts: dict[str, Account]) -> None:
    if c.action == "create":
        home_exists = (HOME_ROOT / c.name).is_dir()
        run("useradd", "--uid", str(c.uid), "--user-group", "--shell", c.shell, "--home-dir",
            f"{HOME_ROOT}/{c.name}", "--no-create-home" if home_exists else "--create-home",
            "--groups", ",".join(sorted(c.groups)), c.name)
        fix_home(c.name)
    elif c.action == "update":
        if {"admin", "not admin", "groups"} & set(c.what):
            run("usermod", "--groups", ",".join(sorted(c.groups)), c.name)
            if accounts[c.name].groups - c.groups:  # its processes hold the groups it lost: end them
                end_processes(accounts[c.name].uid)
        if "shell" in c.what:
            run("usermod", "--shell", c.shell, c.name)
        if c.fix_home:
            fix_home(c.name)
    elif c.action == "remove":
        if "removed" in c.what:
            end_processes(accounts[c.name].uid)  # locked before the hub was told
            run("userdel", c.name)
            forget_uid(accounts[c.name].uid)
        if c.archive_home:
            c.what[-1] = "home archived to " + archive_home(c.name)


def apply(changes: list[Change], failed: dict[str, str] | None = None) -> dict[str, str]:
    """Apply each change; one user's failure (e.g. a link where their home's folder belongs) does not stop the
    others. Returns what failed, by user (with the failures given, whose changes are skipped)."""
    ensure_groups(set().union(*(c.groups for c in changes)) if changes else set())
    accounts = read_accounts()
    failed = dict(failed or {})
    plain: dict[str, str] = {}
    hashed: dict[str, str] = {}
    for c in changes:
        if c.name in failed:
            continue
        try:
            apply_one(c, accounts)
        except subprocess.CalledProcessError as err:
            failed[c.name] = f"{' '.join(err.cmd[:2])} failed: {(err.stderr or '').strip() or err}"
        except (OSError, Refused) as err:
            failed[c.name] = str(err)
        if c.action == "create" and c.name in failed and c.name not in read_accounts():
            continue  # no account: no password to set
        if c.password_hash:
            hashed[c.name] = c.password_hash
        elif c.password is not None:
            plain[c.name] = c.password
    hashed.update(hash_all(plain))  # one chpasswd for all: it rewrites /etc/shadow once, not once per user
    if hashed:
        run("chpasswd", "--encrypted", stdin="".join(f"{name}:{value}\n" for name, value in hashed.items()))
    return failed


HUB_LABELS = {"remove": "removed from the hub", "admin": "hub admin", "not admin": "hub not admin (server stopped)"}


def report(changes: list[Change], users: list[dict], hub_todo: dict[str, str] | None = None,
           failed: dict[str, str] | None = None, shared: list[str] | None = None) -> dict:
    """Per user what changed, in the accounts and then in the hub; a user the hub alone changed counts as updated;
    then the shared folders set up. Users whose change failed are named last, with what an admin must fix."""
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
    out["changed"] = bool(out["users"] or shared)
    out["msg"] = "".join(f"{name}: {', '.join(what)}; " for name, what in out["users"].items()) + \
        "".join(f"shared folder {name}: set up; " for name in shared or []) + f"unchanged: {len(out['unchanged'])}"
    if failed:
        out["failed"] = True
        out["msg"] += ". NOT DONE, an admin must fix: " + "; ".join(f"{name}: {why}" for name, why in failed.items())
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
    users, folders = request.get("users", []), request.get("shared", [])
    problems = user_problems(users, uid_range(), **request.get("policy", {})) + shared_problems(folders, users)
    low = uid_range()[0]
    system_groups = {row[0] for row in read_table(ETC / "group") if len(row) > 2 and row[2].isdigit()
                     and int(row[2]) < low}
    handed_out = [(f"user {u['name']!r}", group) for u in users for group in u.get("groups") or []] + \
        [(f"shared folder {f['name']!r}", f["group"]) for f in folders]
    problems += [f"{who} has group {group!r}, a group of the image (packages add some): list only the team's own "
                 "groups" for who, group in handed_out if group in system_groups and group not in PRIVILEGED_GROUPS]
    accounts = read_accounts()
    problems += [f"shared folder {f['name']!r} {problem}" for f in folders
                 if (problem := group_problem(f["group"], own_groups(accounts, low)))]
    if problems:
        raise PlanError("; ".join(problems))
    changes = plan(users, accounts, read_homes(), uid_range())
    try:
        hub_todo = plan_hub(users, hub_users())
    except (OSError, urllib.error.URLError) as err:
        raise PlanError(f"the hub's API does not answer ({err}); is the hub running?") from err
    failed: dict[str, str] = {}
    if request.get("check"):
        return report(changes, users, hub_todo, failed, share(folders, check=True))
    failed = lock([c.name for c in changes if c.action == "remove" and "removed" in c.what])
    remove_from_hub([name for name, action in hub_todo.items() if action == "remove" and name not in failed])
    try:
        failed = apply(changes, failed)
        set_hub_admin({name: action == "admin" for name, action in hub_todo.items() if action != "remove"})
        shared = share(folders, failed=failed)
    finally:
        save()
    return report(changes, users, hub_todo, failed, shared)


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
    with accounts_lock():
        data = json.dumps(snapshot(), indent=1, sort_keys=True)
    if target.exists() and target.read_text() == data:
        return False
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="accounts.json.")  # mode 600, its own name per writer
    try:
        with open(fd, "w") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def watch(every: float = 0.5) -> None:
    """Save within `every` seconds of any change to the account files, whoever made it (passwd or useradd in a
    terminal, the sync): a container killed 2 s later keeps it. Stat calls only, while nothing changes."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped: let save() remove its temporary file
    files = [ETC / name for name in ("passwd", "shadow", "group", "gshadow")]
    seen = None
    while True:
        try:
            now = [(st.st_ino, st.st_mtime_ns, st.st_size) for st in map(os.stat, files)]
            if now != seen:
                save()
                seen = now
        except Exception as err:  # noqa: BLE001 (the watcher must outlive any one bad moment: it says so, goes on)
            print(f"quickjh-users watch: not saved, trying again: {err!r}", file=sys.stderr)
        time.sleep(every)


def human_rows(saved: list[str], table: Path, low: int, high: int) -> list[str]:
    """Saved rows of a human account or group: a valid name, id in UID_MIN..UID_MAX, not a name the image has."""
    image = {row[0] for row in read_table(table)
             if len(row) > 2 and not (row[2].isdigit() and low <= int(row[2]) <= high)}

    def human(fields: list[str]) -> bool:
        return len(fields) > 3 and bool(NAME.fullmatch(fields[0])) and fields[0] not in image and all(
            f.isdigit() and low <= int(f) <= high for f in fields[2:4 if table.name == "passwd" else 3])
    return [line for line in saved if human(line.split(":"))]


def restore() -> int:
    """Put the saved accounts back; a saved row that is not a human account (UID_MIN..UID_MAX) never comes back."""
    source = state_dir() / "accounts.json"
    if not source.exists():
        return 0
    saved = json.loads(source.read_text())
    low, high = uid_range()
    passwd = human_rows(saved["passwd"], ETC / "passwd", low, high)
    group = human_rows(saved["group"], ETC / "group", low, high)
    names, groups = ({line.split(":")[0] for line in rows} for rows in (passwd, group))
    members = {g: [m for m in ms if m in names] for g, ms in saved["members"].items()
               if g == ADMIN_GROUP or g not in PRIVILEGED_GROUPS}
    merge(ETC / "group", group, members, 3)
    merge(ETC / "gshadow", [line for line in saved["gshadow"] if line.split(":")[0] in groups], members, 3)
    merge(ETC / "passwd", passwd)
    merge(ETC / "shadow", [line for line in saved["shadow"] if line.split(":")[0] in names])
    return len(passwd)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    try:
        if command == "sync":
            result = sync(json.load(sys.stdin))
            print(json.dumps(result))
            return 1 if result.get("failed") else 0
        elif command == "add" and len(argv) == 3:
            problems = user_problems([{"name": argv[2], "password_hash": "$6$" + "x" * 8}], uid_range())
            if problems:
                raise PlanError("; ".join(problems))
            changes = plan([{"name": argv[2]}], read_accounts(), read_homes(), uid_range())
            failed = apply(changes)
            save()
            print(f"{argv[2]}: {', '.join(changes[0].what) if changes else 'already there'}"
                  + "".join(f"; NOT DONE: {why}" for why in failed.values()))
            return 1 if failed else 0
        elif command == "end" and len(argv) == 3:
            account = read_accounts().get(argv[2])
            if account is None or not uid_range()[0] <= account.uid <= uid_range()[1]:
                raise PlanError(f"{argv[2]!r} is not a hub user")
            end_processes(account.uid)
            print(f"{argv[2]}: every process ended")
        elif command == "save":
            save()
        elif command == "watch":
            watch()
        elif command == "restore":
            print(f"quickjh-users: restored {restore()} saved accounts", file=sys.stderr)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except PlanError as err:
        print(json.dumps({"changed": False, "failed": True, "msg": f"quickjh_users: {err}"}))
        return 1
    except (subprocess.CalledProcessError, urllib.error.URLError, Refused, OSError) as err:
        print(json.dumps({"changed": True, "failed": True, "msg": f"quickjh_users: stopped half-way: {err}"}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
