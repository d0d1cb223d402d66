"""quickjh-launch: a user's server starts through this, the same way in every mode.

  quickjh-launch --user NAME [--nice N] [--processes N] [--memory BYTES] [--no-new-privileges]
                 [--link NAME=TARGET ...] [--links-from DIR] -- COMMAND...          (local: the account exists)
  quickjh-launch --account-from-env ... -- COMMAND...   (docker: QUICKJH_USER, QUICKJH_UID, QUICKJH_GID and
                                                         QUICKJH_GROUPS "group:gid ..." make the account first)

The spawner executes it as root (root-owned, in Python's isolated mode: nothing of the user's environment or home
is imported). As root it only makes the private runtime folder /run/user/UID, sets the limits and the niceness,
and (docker, swarm) writes the container's own account files and gives the user a home volume Docker has just
made (empty, root's). Then it becomes the user for good: the user's groups, no inheritable capabilities, and with
--no-new-privileges an empty bounding set and no new privileges (setuid and setgid programs do nothing). As the
user it makes ~/notebook, the user's site-packages (a first `pip install` imports in a running kernel) and a link
~/notebook/NAME for each shared folder, and executes the server in the home. Nothing else in the home is touched
by root.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import pwd
import resource
import subprocess
import sys
from pathlib import Path

from quickjh.accounts import uid_range
from quickjh.nofollow import own_dir
from quickjh.rules import NAME, is_human_uid

PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
CAP_VERSION_3 = 0x20080522


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def clear_inheritable() -> None:
    """No capability can be passed on to a program, whatever it is."""
    header, data = CapHeader(CAP_VERSION_3, 0), (CapData * 2)()
    check(libc().capget(ctypes.byref(header), data), "capget")
    for part in data:
        part.inheritable = 0
    check(libc().capset(ctypes.byref(header), data), "capset")


def drop_bounding_set() -> None:
    """No program can get a capability back, not even a setuid-root one (needs CAP_SETPCAP: done as root)."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        check(libc().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")


def become(account: pwd.struct_passwd, no_new_privileges: bool) -> None:
    clear_inheritable()
    if no_new_privileges:
        drop_bounding_set()
    os.setgroups(os.getgrouplist(account.pw_name, account.pw_gid))
    os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
    os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)  # permitted, effective, ambient: all gone
    if no_new_privileges:
        check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no new privileges")


def account_from_env(env: os._Environ) -> pwd.struct_passwd:
    """Docker mode: the container's own account files get the account the hub passed (its groups too)."""
    name, uid, gid = env.get("QUICKJH_USER", ""), env.get("QUICKJH_UID", ""), env.get("QUICKJH_GID", "")
    if not (NAME.fullmatch(name) and uid.isdigit() and gid.isdigit()):
        raise SystemExit(f"quickjh-launch: not a hub user: {name!r} {uid!r} {gid!r}")
    others = []
    for pair in env.get("QUICKJH_GROUPS", "").split():
        group, _, group_id = pair.rpartition(":")
        if not (NAME.fullmatch(group) and group_id.isdigit()):
            raise SystemExit(f"quickjh-launch: not a group: {pair!r}")
        if subprocess.run(["getent", "group", group], capture_output=True, check=False).returncode:
            subprocess.run(["groupadd", "-g", group_id, group], check=True)
        if group_id != gid:
            others.append(group)
    if subprocess.run(["getent", "group", gid], capture_output=True, check=False).returncode:
        subprocess.run(["groupadd", "-g", gid, name], check=True)
    subprocess.run(
        ["useradd", "-M", "-N", "-u", uid, "-g", gid, "-d", f"/home/{name}", "-s", "/bin/bash", name]
        + (["-G", ",".join(others)] if others else []),
        check=True,
    )
    return pwd.getpwnam(name)


def own_new_home(account: pwd.struct_passwd) -> None:
    """Swarm mode: a user's home is a volume of its own, made empty and root's by the node's Docker at the first
    start. Such a home (empty, root's, not a link) becomes the user's, private; any other is left as it is."""
    try:
        fd = os.open(account.pw_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        if os.fstat(fd).st_uid == 0 and not os.listdir(fd):
            os.fchmod(fd, 0o700)  # first, while root owns it: root has no CAP_FOWNER here
            os.fchown(fd, account.pw_uid, account.pw_gid)
    finally:
        os.close(fd)


def as_user(home: Path, links: list[tuple[str, str]]) -> None:
    """What the user's own start makes, as the user: a link or a file already in a place is left as it is (the
    server then says so, in this user's session only); a link is never made inside what a name points to."""
    site = home / f".local/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    for folder in (home / "notebook", site):
        with contextlib.suppress(OSError):
            os.makedirs(folder, mode=0o755, exist_ok=True)
    for name, target in links:
        with contextlib.suppress(OSError):  # fails on any name already there, links included
            os.symlink(target, home / "notebook" / name)
    try:
        os.chdir(home)
    except OSError:
        os.chdir("/")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="quickjh-launch", description=__doc__.split("\n\n")[0])
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user")
    who.add_argument("--account-from-env", action="store_true")
    parser.add_argument("--nice", type=int, default=0)
    parser.add_argument("--processes", type=int, default=0)
    parser.add_argument("--memory", type=int, default=0)
    parser.add_argument("--no-new-privileges", action="store_true")
    parser.add_argument("--link", action="append", default=[], type=lambda v: tuple(v.split("=", 1)))
    parser.add_argument("--links-from")
    parser.add_argument("command", nargs="+")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    account = account_from_env(os.environ) if args.account_from_env else pwd.getpwnam(args.user)
    if args.account_from_env:
        own_new_home(account)
    if not is_human_uid(account.pw_uid, uid_range()):
        raise SystemExit(f"quickjh-launch: {account.pw_name} is not a hub user (uid {account.pw_uid})")
    runtime = f"/run/user/{account.pw_uid}"  # kernels' connection files and IPC sockets: the user's alone
    own_dir(runtime, account.pw_uid, account.pw_gid)
    if args.nice:
        os.nice(args.nice)  # the hub and the proxy come first: no user can starve the logins of the others
    for limit, value in ((resource.RLIMIT_NPROC, args.processes), (resource.RLIMIT_DATA, args.memory)):
        if value:
            resource.setrlimit(limit, (value, value))
    links = list(args.link)
    if args.links_from:  # docker mode: the shared folders mounted are those of the user's groups
        links += [(entry.name, str(entry)) for entry in sorted(Path(args.links_from).iterdir()) if entry.is_dir()]
    become(account, args.no_new_privileges)
    home = Path(account.pw_dir)
    os.environ.update(
        HOME=str(home),
        USER=account.pw_name,
        LOGNAME=account.pw_name,
        SHELL=account.pw_shell or "/bin/bash",
        XDG_RUNTIME_DIR=runtime,
        JUPYTER_RUNTIME_DIR=runtime,
    )
    as_user(home, links)
    os.execvp(args.command[0], args.command)  # noqa: S606 (the server's command, as the spawner gives it)
