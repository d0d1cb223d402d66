"""Applying a plan: the account files (through useradd, usermod, userdel, chpasswd), homes and shared folders,
and ending what a user's processes hold when rights are taken away. Every step in a user's home goes through
quickjh.nofollow: root never follows a link a user swapped in."""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from pathlib import Path

from quickjh import accounts
from quickjh.accounts import Account, group_ids, read_accounts
from quickjh.nofollow import DEFAULT_ACL, Refused, add_tree
from quickjh.nofollow import fix_home as make_home
from quickjh.passwords import hash_all
from quickjh.plan import Change
from quickjh.settings import state_dir

SHARED_ROOT = Path(os.environ.get("QUICKJH_SHARED_ROOT", "/srv/shared"))


def run(*cmd: str, stdin: str | None = None) -> None:
    subprocess.run(cmd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def share(folders: list[dict], check: bool = False, failed: dict[str, str] | None = None) -> list[str]:
    """Set up each shared folder (a volume at SHARED_ROOT/NAME) for its group: root and the group own it, mode 2770
    (what is made in it gets the group), DEFAULT_ACL. Only the folder itself is touched, never what users put in
    it. Returns the names of the folders that were not so (in check mode: that would change); a folder whose file
    system refuses goes into failed."""
    if not check:
        ensure_groups({str(f["group"]) for f in folders})
    gids = group_ids()
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
    existing = set(group_ids())
    for group in sorted(groups - existing):
        run("groupadd", group)


def fix_home(name: str) -> None:
    account = read_accounts().get(name)
    if account is None:
        raise OSError(f"{name} has no line in /etc/passwd")
    make_home(accounts.HOME_ROOT / name, account.uid, account.gid)


def archive_home(name: str) -> str:
    """The removed user's home as a tar.gz on the state volume (links kept as links), then the home goes."""
    archives = state_dir() / "removed-homes"
    archives.mkdir(mode=0o700, exist_ok=True)
    target = archives / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        left_out = add_tree(tar, accounts.HOME_ROOT / name, name)
    remove_tree(accounts.HOME_ROOT / name)
    return str(target) + (f" (left out: {', '.join(left_out[:5])})" if left_out else "")


def remove_tree(path: Path | str) -> None:
    """rm -rf: never follows a link out of the tree, nor leaves its file system, however deep the tree is."""
    run("rm", "-rf", "--one-file-system", "--", str(path))


def forget_uid(uid: int) -> None:
    """What a removed UID leaves outside its home (kernels' keys, temp files): a new user may get that UID."""
    remove_tree(f"/run/user/{uid}")
    subprocess.run(
        ["find", "/tmp", "/var/tmp", "/dev/shm", "-xdev", "-depth", "-uid", str(uid), "-delete"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def lock(names: list[str]) -> dict[str, str]:
    """No new login for users about to be removed (locked and expired) before their processes are ended."""
    failed = {}
    for name in names:
        try:
            run("usermod", "--lock", "--expiredate", "1", name)
        except subprocess.CalledProcessError as err:
            failed[name] = f"usermod --lock failed: {(err.stderr or '').strip()}"
    return failed


def apply_one(c: Change, known: dict[str, Account], end) -> None:
    """end(name, uid): ends every process of the user's (in each mode, its servers too)."""
    if c.action == "create":
        home_exists = (accounts.HOME_ROOT / c.name).is_dir()
        run(
            "useradd",
            "--uid",
            str(c.uid),
            "--user-group",
            "--shell",
            c.shell,
            "--home-dir",
            f"{accounts.HOME_ROOT}/{c.name}",
            "--no-create-home" if home_exists else "--create-home",
            "--groups",
            ",".join(sorted(c.groups)),
            c.name,
        )
        fix_home(c.name)
        if "locked" in c.what:
            run("usermod", "--expiredate", "1", c.name)
    elif c.action == "update":
        if {"admin", "not admin", "groups"} & set(c.what):
            run("usermod", "--groups", ",".join(sorted(c.groups)), c.name)
            if known[c.name].groups - c.groups:  # its processes hold the groups it lost: end them
                end(c.name, known[c.name].uid)
        if "shell" in c.what:
            run("usermod", "--shell", c.shell, c.name)
        if "locked" in c.what:  # expired: no login of any kind, no sudo; what they run ends now
            run("usermod", "--expiredate", "1", c.name)
            end(c.name, known[c.name].uid)
        if "unlocked" in c.what:
            run("usermod", "--expiredate", "", c.name)
        if c.fix_home:
            fix_home(c.name)
    elif c.action == "remove":
        if "removed" in c.what:
            end(c.name, known[c.name].uid)  # locked before the hub was told
            run("userdel", c.name)
            forget_uid(known[c.name].uid)
        if c.archive_home:
            c.what[-1] = "home archived to " + archive_home(c.name)


def apply(changes: list[Change], failed: dict[str, str] | None = None, end=lambda name, uid: None) -> dict[str, str]:
    """Apply each change; one user's failure (e.g. a link where their home's folder belongs) does not stop the
    others. Returns what failed, by user (with the failures given, whose changes are skipped)."""
    ensure_groups(set().union(*(c.groups for c in changes)) if changes else set())
    known = read_accounts()
    failed = dict(failed or {})
    plain: dict[str, str] = {}
    hashed: dict[str, str] = {}
    for c in changes:
        if c.name in failed:
            continue
        try:
            apply_one(c, known, end)
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
