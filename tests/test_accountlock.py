"""The account files' lock kept from users (quickjh.accountlock): a person's process that holds it, stopped, is
ended by root; root's own holders and people's waiting processes are left alone (run as root, as CI is)."""

from __future__ import annotations

import fcntl
import os
import signal
import time

import pytest

from quickjh import accountlock

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="holding a lock as another user needs root")


@pytest.fixture
def lock(tmp_path_factory):
    """A lock file another user may open (pytest's own folders are root's alone)."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="quickjh-lock-")
    os.chmod(folder, 0o755)
    path = os.path.join(folder, ".pwd.lock")
    open(path, "w").close()
    os.chmod(path, 0o666)
    yield path
    os.unlink(path)
    os.rmdir(folder)


def holder(lock, uid: int) -> int:
    """A child that becomes uid, takes the lock as lckpwdf does (fcntl, write) and stops itself, as a user's own
    passwd stopped with SIGSTOP would."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            fd = os.open(lock, os.O_WRONLY)
            fcntl.lockf(fd, fcntl.LOCK_EX)
            os.kill(os.getpid(), signal.SIGSTOP)
            time.sleep(60)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 10
    while pid not in accountlock.holders(lock) and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


def test_a_persons_stopped_holder_is_ended_and_named(lock):
    pid = holder(lock, 1999)
    assert accountlock.holders(lock) == [pid]
    assert accountlock.end_user_holders(lock) == ["uid 1999"]
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert accountlock.holders(lock) == []


def test_a_system_accounts_holder_is_left_alone(lock):
    pid = holder(lock, 100)  # below UID_MIN: the image's own, never a person's
    try:
        assert accountlock.end_user_holders(lock) == []
        assert accountlock.holders(lock) == [pid]
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_while_kept_from_users_a_holder_that_comes_is_ended(lock, monkeypatch):
    from pathlib import Path

    monkeypatch.setattr(accountlock.accounts, "ETC", Path(lock).parent)
    with accountlock.kept_from_users(every=0.01) as ended:
        pid = holder(lock, 1999)
        deadline = time.monotonic() + 5
        while not ended and time.monotonic() < deadline:
            time.sleep(0.01)
    os.waitpid(pid, 0)
    assert ended == {"uid 1999"}
