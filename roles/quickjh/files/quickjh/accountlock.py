"""The account files' lock (/etc/.pwd.lock, lckpwdf) kept from users: useradd, usermod, chpasswd and passwd wait
for it up to 15 s, then give up. A user's own `passwd` (set-uid root, but still the user's process, which the user
may stop with SIGSTOP) could hold it for as long as the user likes and make every account change fail. Root ends
such a holder: only a process whose real UID is a person's (UID_MIN..UID_MAX) is ever ended, and it loses only its
own password change."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import threading
from pathlib import Path

from quickjh import accounts
from quickjh.accounts import uid_range
from quickjh.nofollow import signal_if_uid
from quickjh.rules import is_human_uid

PROC = Path("/proc")


def holders(lock: Path | None = None, proc: Path = PROC) -> list[int]:
    """The processes holding a lock on the account files' lock file (its inode in /proc/locks)."""
    lock = lock or accounts.ETC / ".pwd.lock"
    try:
        inode = os.stat(lock).st_ino
        table = (proc / "locks").read_text()
    except OSError:
        return []
    found = []
    for line in table.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] != "->" and fields[4].lstrip("-").isdigit():
            pid, where = int(fields[4]), fields[5]
            if pid > 0 and where.rsplit(":", 1)[-1] == str(inode):
                found.append(pid)
    return found


def real_uid(pid: int, proc: Path = PROC) -> int | None:
    try:
        for line in (proc / str(pid) / "status").read_bytes().splitlines():
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def end_user_holders(lock: Path | None = None) -> list[str]:
    """End every process of a person's that holds the account files' lock; return whose they were."""
    ended = []
    low_high = uid_range()
    for pid in holders(lock):
        uid = real_uid(pid)
        if uid is not None and is_human_uid(uid, low_high):
            signal_if_uid(pid, uid, signal.SIGKILL)
            try:
                ended.append(pwd.getpwuid(uid).pw_name)
            except KeyError:
                ended.append(f"uid {uid}")
    return ended


@contextlib.contextmanager
def kept_from_users(every: float = 0.05):
    """While the block runs (a sync's account changes), end any person's process that takes the lock, every
    `every` seconds; yields the set of users whose process was ended."""
    ended: set[str] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            ended.update(end_user_holders())
            done.wait(every)

    ended.update(end_user_holders())
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield ended
    finally:
        done.set()
        watcher.join()
