"""quickjh.nofollow: root's steps in users' homes never follow a link the user put there (run as root, as CI is)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from quickjh import nofollow as nf

# A UID no account of this machine has, its own per run: two runs at once must not signal each other's processes.
UID = 54000 + os.getpid() % 1000
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changes owners and becomes another user: needs root")


@pytest.fixture
def tmp_path():
    """A folder the user may pass through, as /home is (pytest's own is root's alone)."""
    path = Path(tempfile.mkdtemp(dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def user_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.chown(home, UID, UID)
    return home


def test_fix_home_makes_the_notebook_folder_as_the_user(tmp_path):
    home = tmp_path / "home"
    nf.fix_home(home, UID, UID)
    assert (home.stat().st_uid, home.stat().st_mode & 0o777) == (UID, 0o700)
    assert (home / "notebook").stat().st_uid == UID


def test_a_notebook_link_to_a_root_folder_is_never_handed_to_the_user(tmp_path):
    home = user_home(tmp_path)
    root_only = tmp_path / "sbin"
    root_only.mkdir(mode=0o755)
    (home / "notebook").symlink_to(root_only)
    nf.fix_home(home, UID, UID)  # a link to a folder is the user's own choice: left as it is
    assert root_only.stat().st_uid == 0 and root_only.stat().st_mode & 0o777 == 0o755
    os.unlink(home / "notebook")
    (home / "notebook").symlink_to(tmp_path / "nope")
    with pytest.raises(nf.Refused, match="notebook is not a folder"):
        nf.fix_home(home, UID, UID)
    assert not (tmp_path / "nope").exists()


def test_a_home_that_is_a_link_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "etc"
    target.mkdir(mode=0o755)
    (tmp_path / "home").symlink_to(target)
    with pytest.raises(nf.Refused, match="is a link or not a folder"):
        nf.fix_home(tmp_path / "home", UID, UID)
    assert target.stat().st_uid == 0 and not (target / "notebook").exists()


def test_end_processes_ends_every_process_of_the_user_even_one_that_keeps_forking():
    forker = subprocess.Popen(["sh", "-c", "while :; do sleep 100 & sleep 0.01; done"], user=UID, group=UID)
    sleeper = subprocess.Popen(["sleep", "100"], user=UID, group=UID, start_new_session=True)
    time.sleep(0.3)
    assert len(nf.processes_of(UID)) > 3
    nf.end_processes(UID)
    assert forker.wait(5) == -9 and sleeper.wait(5) == -9
    assert nf.processes_of(UID) == []


def test_end_processes_ends_processes_that_stop_each_other_and_hide_behind_odd_names():
    odd = "import ctypes, time; ctypes.CDLL(None).prctl(15, b'\\xff\\xfe', 0, 0, 0); time.sleep(100)"
    hiding = subprocess.Popen(["python3", "-c", odd], user=UID, group=UID)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{hiding.pid}/comm").read_bytes() != b"\xff\xfe\n":  # named so before the stoppers start
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The stoppers wait for their stdin to close before they start: one already running would stop the next child
    # between its setuid and its exec, and Popen would wait for that exec for ever (CI once hung here 80 minutes).
    stopper = (
        "import os, signal, sys\nsys.stdin.read()\n"
        "while True:\n    try: os.kill(-1, signal.SIGSTOP)\n    except OSError: pass\n"
    )
    stoppers = [
        subprocess.Popen(["python3", "-c", stopper], user=UID, group=UID, stdin=subprocess.PIPE) for _ in range(2)
    ]
    for proc in stoppers:
        proc.stdin.close()
    procs = [*stoppers, hiding]
    time.sleep(0.5)
    started = time.monotonic()
    nf.end_processes(UID)
    assert time.monotonic() - started < 10
    assert [p.wait(5) for p in procs] == [-9, -9, -9]


def test_end_processes_ends_a_process_whose_first_thread_has_exited():
    code = (
        "import ctypes, threading, time\n"
        "threading.Thread(target=time.sleep, args=(100,)).start()\n"
        "ctypes.CDLL(None).syscall(60, 0)\n"
    )  # SYS_exit of the first thread only: it shows as a zombie
    survivor = subprocess.Popen(["python3", "-c", code], user=UID, group=UID)
    time.sleep(0.5)
    assert nf.processes_of(UID) == [survivor.pid]
    nf.end_processes(UID)
    assert survivor.wait(5) == -9


def test_a_child_the_user_stops_counts_as_failed_not_as_a_hang():
    started = time.monotonic()
    assert nf.as_user(UID, UID, lambda: os.kill(os.getpid(), 19), timeout=5) is False  # SIGSTOP
    assert time.monotonic() - started < 2


def archive_of(home: Path, **kwargs) -> tarfile.TarFile:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        nf.add_tree(tar, home, "home", **kwargs)
    data.seek(0)
    return tarfile.open(fileobj=data)


def test_an_archive_of_a_home_holds_links_as_links_and_no_fifo(tmp_path):
    home = user_home(tmp_path)
    secret = tmp_path / "secret"
    secret.write_text("the cookie secret")
    os.chmod(secret, 0o600)
    (home / "notebook").mkdir()
    (home / "notebook/mine.txt").write_text("mine")
    (home / "grab").symlink_to(secret)
    (home / "state").symlink_to(tmp_path)
    os.mkfifo(home / "pipe")
    tar = archive_of(home, skip=lambda name: name == "home/notebook/skipped")
    members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"home", "home/notebook", "home/notebook/mine.txt", "home/grab", "home/state"}
    assert members["home/grab"].issym() and members["home/grab"].linkname == str(secret)
    assert tar.extractfile("home/notebook/mine.txt").read() == b"mine"
    assert members["home"].uid == UID and members["home"].mode == 0o700


def test_a_home_too_deep_to_unpack_is_archived_up_to_the_limit_and_the_rest_named(tmp_path):
    home = user_home(tmp_path)
    deep = home
    for _ in range(nf.MAX_DEPTH + 5):
        deep = deep / "d"
        deep.mkdir()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        left_out = nf.add_tree(tar, home, "home")
    assert left_out == ["home" + "/d" * nf.MAX_DEPTH + "/ (what it holds)"]
    data.seek(0)
    with tarfile.open(fileobj=data) as tar:
        assert max(m.name.count("/") for m in tar.getmembers()) == nf.MAX_DEPTH


def test_a_file_that_shrinks_while_archived_is_padded_not_fatal(tmp_path):
    home = user_home(tmp_path)
    (home / "grows").write_bytes(b"x" * 10)
    fd = os.open(home / "grows", os.O_RDONLY)
    padded = nf.Padded(fd, 16)
    assert padded.read(100) == b"x" * 10 + b"\0" * 6 and padded.read(5) == b""
    os.close(fd)


def restore(tmp_path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest = tmp_path / "dest"
    dest.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(dest, numeric_owner=True, filter=nf.safe_member)
    return dest


def member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.uid, info.gid = kind, mode, link, UID, UID
    return info


def test_restore_keeps_owners_and_write_bits_but_drops_setuid_setgid_and_devices(tmp_path):
    dest = restore(
        tmp_path,
        (member("home", tarfile.DIRTYPE, 0o2775), b""),
        (member("home/suid", mode=0o6777), b"x"),
        (member("home/shared", mode=0o664), b"y"),
        (member("home/null", tarfile.CHRTYPE), b""),
    )
    assert (dest / "home/suid").stat().st_mode & 0o7777 == 0o777
    assert (dest / "home/shared").stat().st_mode & 0o777 == 0o664
    assert (dest / "home").stat().st_mode & 0o7777 == 0o2775  # a setgid folder is no privilege
    assert (dest / "home/suid").stat().st_uid == UID
    assert not (dest / "home/null").exists()


@pytest.mark.parametrize(
    "members",
    [
        [(member("home/out", tarfile.SYMTYPE, link="/tmp"), b""), (member("home/out/planted"), b"x")],
        [(member("home/up", tarfile.SYMTYPE, link="../.."), b""), (member("home/up/planted"), b"x")],
        [(member("home/hard", tarfile.LNKTYPE, link="../../etc/passwd"), b"")],
        [
            (member("home/out", tarfile.SYMTYPE, link="/etc"), b""),
            (member("home/h", tarfile.LNKTYPE, link="home/out/passwd"), b""),
        ],
    ],
    ids=["absolute link", "relative link", "hard link", "hard link through a link"],
)
def test_restore_never_writes_outside_through_a_link(tmp_path, members):
    with pytest.raises(tarfile.FilterError):
        restore(tmp_path, *members)
    assert not Path("/tmp/planted").exists() and not (tmp_path / "planted").exists()
