"""What root does in places users control (their homes), without following a link they swap in.

Every path below a home is opened relative to its parent's open folder with O_NOFOLLOW and judged by fstat of what
was opened, never by a name looked up again (no check-then-act). What only the user may do is done in a child
process that has become the user. The accounts program, the backups and the per-user start import it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import stat
import struct
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# Archives: deeper or longer paths are left out (and named), so every archive can be unpacked again (PATH_MAX).
MAX_DEPTH, MAX_PATH = 64, 3000
# The default ACL of a shared folder and of every folder in it (Linux's binary form: version 2, then tag,
# permissions, id): owner rwx, group rwx, others nothing. What is made in it gets the group's rights from the mode it
# is made with, whatever the umask: new files stay group-writable.
DEFAULT_ACL = struct.pack("<I", 2) + b"".join(
    struct.pack("<HHI", tag, perms, 0xFFFFFFFF) for tag, perms in ((0x01, 7), (0x04, 7), (0x20, 0))
)
# Left out of an archive without a word: gone or swapped for a link since the listing.
GONE = (errno.ENOENT, errno.ELOOP, errno.EINVAL, errno.ENXIO)


class Refused(Exception):
    """A path is not what root may act on (a link, or a file where a folder belongs)."""


def open_dir(path: str | Path, dir_fd: int | None = None) -> int:
    try:
        return os.open(path, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(f"{path} is a link or not a folder") from err
        raise


def as_user(uid: int, gid: int, action: Callable[[], None], timeout: float = 10) -> bool:
    """Run action in a forked child that has become uid/gid (no other groups); True if it returned normally.
    No exec: a user at their process limit cannot make it fail. The user may signal the child: one that is stopped
    or late is killed and counts as failed."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: the user cannot read its memory
            action()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG | os.WUNTRACED)
        if done and not os.WIFSTOPPED(status):
            return os.waitstatus_to_exitcode(status) == 0
        if done or time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return False
        time.sleep(0.005)


def own_dir(path: str | Path, uid: int, gid: int, mode: int = 0o700) -> None:
    """path (made if missing, in a folder only root may write) owned by uid:gid with mode, set through the opened
    folder: a link planted in its place is refused, never followed."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    fd = open_dir(path)
    try:  # the mode first: a user's container gives root no CAP_FOWNER over what it no longer owns
        os.fchmod(fd, mode)
        os.fchown(fd, uid, gid)
    finally:
        os.close(fd)


def fix_home(home: Path, uid: int, gid: int) -> None:
    """home (made if missing, in root's own /home) owned by uid, mode 700, with ~/notebook made by the user."""
    own_dir(home, uid, gid)
    if not as_user(uid, gid, lambda: os.makedirs(home / "notebook", 0o755, exist_ok=True)):
        raise Refused(f"{home}/notebook is not a folder the user can use (a link, or a file)")


def status_of(pid: str, proc: Path = Path("/proc")) -> tuple[set[int], str]:
    """The UIDs (real, effective, saved, fs) and state letter of a process; ({}, "") when it is gone. The name line
    may hold any bytes the process chose: only these two lines are read."""
    try:
        lines = dict(line.split(b":", 1) for line in (proc / pid / "status").read_bytes().splitlines() if b":" in line)
        return {int(u) for u in lines[b"Uid"].split()}, lines[b"State"].strip()[:1].decode()
    except (OSError, KeyError, ValueError):
        return set(), ""


def processes_of(uid: int, proc: Path = Path("/proc")) -> list[int]:
    """Processes with a live thread that holds uid as any of its UIDs (a process whose first thread has exited
    shows as a zombie while its other threads run: each thread is looked at)."""
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            tasks = os.listdir(proc / entry / "task")
        except OSError:
            continue  # gone
        for task in tasks:
            uids, state = status_of(f"{entry}/task/{task}", proc)
            if uid in uids and state not in ("Z", "X", ""):
                found.append(int(entry))
                break
    return found


def signal_if_uid(pid: int, uid: int, signum: int) -> None:
    """Signal pid only while it is still uid's: the pidfd pins the process, so a reused PID is never hit."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone
    except OSError:  # no pidfds (a kernel before 5.3, an old seccomp profile): the PID, checked just before
        if uid in status_of(str(pid))[0]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        return
    try:
        if uid in status_of(str(pid))[0]:
            signal.pidfd_send_signal(fd, signum)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def end_processes(uid: int, tries: int = 200) -> None:
    """Kill every process of uid, from root (nothing the user can signal takes part). Stop them all first, so no
    fork escapes between a scan and the kill, then kill them; repeat until none is alive."""
    for _ in range(tries):
        pids = processes_of(uid)
        if not pids:
            return
        for _ in range(20):  # stopped processes fork no more: rescan until a pass finds no one new
            for pid in pids:
                signal_if_uid(pid, uid, signal.SIGSTOP)
            again = processes_of(uid)
            if set(again) <= set(pids):
                break
            pids = again
        for pid in processes_of(uid):
            signal_if_uid(pid, uid, signal.SIGKILL)
        time.sleep(0.02)
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
    info.type, info.mode, info.uid, info.gid, info.mtime = (
        kind,
        stat.S_IMODE(st.st_mode),
        st.st_uid,
        st.st_gid,
        int(st.st_mtime),
    )
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    return info


def add_tree(
    tar: tarfile.TarFile, path: str | Path, arcname: str, skip: Callable[[str], bool] = lambda name: False
) -> list[str]:
    """Add the folder path to tar as arcname: folders, regular files and links (as links, never followed); fifos,
    sockets and devices are left out. Returns what was left out that a user would miss (too deep or long a path,
    a file held by a lease), for the caller to name."""
    left_out: list[str] = []
    fd = open_dir(path)
    try:
        add_folder(tar, fd, arcname, skip, left_out, 0)
    finally:
        os.close(fd)
    return left_out


def add_folder(
    tar: tarfile.TarFile, fd: int, arcname: str, skip: Callable[[str], bool], left_out: list[str], depth: int
) -> None:
    tar.addfile(entry(arcname, os.fstat(fd), tarfile.DIRTYPE))
    for name in sorted(os.listdir(fd)):
        child = f"{arcname}/{name}"
        if depth >= MAX_DEPTH or len(os.fsencode(child)) > MAX_PATH:
            left_out.append(f"{arcname}/ (what it holds)" if depth >= MAX_DEPTH else child)
            if depth >= MAX_DEPTH:
                return
        elif not skip(child):
            add_child(tar, fd, name, child, skip, left_out, depth + 1)


def add_child(
    tar: tarfile.TarFile,
    parent: int,
    name: str,
    arcname: str,
    skip: Callable[[str], bool],
    left_out: list[str],
    depth: int,
) -> None:
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
        if err.errno in GONE:
            return  # gone or swapped for a link since the listing: left out, never followed
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EPERM):
            if len(left_out) < 1000:
                left_out.append(arcname)  # a lease (EAGAIN), or a mount that refuses root
            return
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            add_folder(tar, fd, arcname, skip, left_out, depth)
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
    if member.islnk():  # a hard link's target, also through links already written, stays inside dest
        real_dest = os.path.realpath(dest)
        if os.path.commonpath([real_dest, os.path.realpath(os.path.join(dest, member.linkname))]) != real_dest:
            raise tarfile.OutsideDestinationError(member, member.linkname)
    mode = member.mode & ~(0 if member.isdir() else stat.S_ISUID | stat.S_ISGID) & ~stat.S_ISUID
    return checked.replace(mode=mode, deep=False)
