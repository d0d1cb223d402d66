"""quickjh_nofollow: what root does in places users control (their homes), without following a link they swap in.

Every path below a home is opened relative to its parent's open folder with O_NOFOLLOW and judged by fstat of what
was opened, never by a name looked up again (no check-then-act). What only the user may do is done in a child
process that has become the user. quickjh-users and quickjh-backup import it (it sits next to them in the image).
"""
from __future__ import annotations

import errno
import os
import signal
import stat
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Refused(Exception):
    """A path is not what root may act on (a link, or a file where a folder belongs)."""


def open_dir(path: str | Path, dir_fd: int | None = None) -> int:
    try:
        return os.open(path, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(f"{path} is a link or not a folder") from err
        raise


def as_user(uid: int, gid: int, action: Callable[[], None]) -> bool:
    """Run action in a forked child that has become uid/gid (no other groups); True if it returned normally.
    No exec: a user at their process limit cannot make it fail."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            action()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def fix_home(home: Path, uid: int, gid: int) -> None:
    """home (made if missing, in root's own /home) owned by uid, mode 700, with ~/notebook made by the user."""
    try:
        os.mkdir(home, 0o700)
    except FileExistsError:
        pass
    fd = open_dir(home)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    if not as_user(uid, gid, lambda: os.makedirs(home / "notebook", 0o755, exist_ok=True)):
        raise Refused(f"{home}/notebook is not a folder the user can use (a link, or a file)")


def processes_of(uid: int, proc: Path = Path("/proc")) -> list[int]:
    """Live (not zombie) processes whose real or saved UID is uid: the ones kill(-1) as uid reaches."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue  # gone meanwhile
        uids = fields.get("Uid", "").split()
        if len(uids) == 4 and uid in (int(uids[0]), int(uids[2])) and not fields.get("State", "").strip()[:1] in "ZX":
            found.append(int(entry.name))
    return found


def end_processes(uid: int, gid: int, tries: int = 100) -> None:
    """Kill every process of uid. As uid, kill(-1) reaches all of them in one pass a fork cannot escape; repeat
    until none is alive (exiting ones linger a moment)."""
    def kill_all() -> None:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass

    for _ in range(tries):
        if not processes_of(uid):
            return
        as_user(uid, gid, kill_all)
        time.sleep(0.05)
    raise Refused(f"processes of UID {uid} are still alive after {tries} rounds of kill")


# --- archives of homes: only what is really inside, links kept as links ---------------------------------------------

class Padded:
    """A file read to exactly `size` bytes: what it holds, then zeros if it shrank while being archived."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.left = fd, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = os.read(self.fd, n) if n else b""
        data += b"\0" * (n - len(data))
        self.left -= n
        return data


def entry(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, \
        int(st.st_mtime)
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    return info


def add_tree(tar: tarfile.TarFile, path: str | Path, arcname: str,
             skip: Callable[[str], bool] = lambda name: False) -> None:
    """Add the folder path to tar as arcname: folders, regular files and links (as links, never followed); fifos,
    sockets and devices are left out."""
    fd = open_dir(path)
    try:
        add_folder(tar, fd, arcname, skip)
    finally:
        os.close(fd)


def add_folder(tar: tarfile.TarFile, fd: int, arcname: str, skip: Callable[[str], bool]) -> None:
    tar.addfile(entry(arcname, os.fstat(fd), tarfile.DIRTYPE))
    for name in sorted(os.listdir(fd)):
        child = f"{arcname}/{name}"
        if not skip(child):
            add_child(tar, fd, name, child, skip)


def add_child(tar: tarfile.TarFile, parent: int, name: str, arcname: str, skip: Callable[[str], bool]) -> None:
    try:
        before = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISLNK(before.st_mode):
            link = entry(arcname, before, tarfile.SYMTYPE)
            link.linkname = os.readlink(name, dir_fd=parent)
            tar.addfile(link)
            return
        if not (stat.S_ISDIR(before.st_mode) or stat.S_ISREG(before.st_mode)):
            return  # never open a device, fifo or socket
        fd = os.open(name, FILE_FLAGS, dir_fd=parent)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ELOOP, errno.EINVAL, errno.ENXIO):
            return  # gone or swapped for a link since the listing: left out, never followed
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            add_folder(tar, fd, arcname, skip)
        elif stat.S_ISREG(st.st_mode):
            tar.addfile(entry(arcname, st, tarfile.REGTYPE), Padded(fd, st.st_size))
    finally:
        os.close(fd)


def safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Extraction filter: tarfile's checks that nothing lands outside dest (also through links already written),
    owners and the modes' write bits kept; no device nodes, no setuid or setgid files."""
    if member.isdev() or member.isfifo():
        return None
    checked = tarfile.tar_filter(member, dest)  # refuses absolute names and paths leaving dest
    if member.islnk() and (member.linkname.startswith("/") or ".." in member.linkname.split("/")):
        raise tarfile.OutsideDestinationError(member, member.linkname)
    mode = member.mode & ~(0 if member.isdir() else stat.S_ISUID | stat.S_ISGID) & ~stat.S_ISUID
    return checked.replace(mode=mode, deep=False)
