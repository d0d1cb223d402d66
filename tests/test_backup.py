"""quickjh-backup: an archive restores homes, state and config as they were, and a live database is copied whole."""

from __future__ import annotations

import os
import sqlite3
import tarfile
from contextlib import closing
from pathlib import Path

import pytest

from quickjh import backup as qb


def make_hub(root: Path) -> None:
    """A small hub as the volumes hold it: a user's home, the hub's state and its config."""
    notebook = root / "home/ann/notebook"
    notebook.mkdir(parents=True)
    os.chmod(root / "home/ann", 0o700)
    (notebook / "work.py").write_text("print('mine')\n")
    (root / "home/ann/python").symlink_to("/usr/bin/python3")
    (root / "state").mkdir()
    (root / "state/accounts.json").write_text("{}")
    os.chmod(root / "state/accounts.json", 0o600)
    (root / "state/jupyterhub-proxy.pid").write_text("42")
    with closing(sqlite3.connect(root / qb.DB)) as db, db:
        db.execute("create table users (name text)")
        db.execute("insert into users values ('ann')")
    (root / "config").mkdir()
    (root / "config/jupyterhub_config.py").write_text("c = get_config()\n")
    if os.geteuid() == 0:
        os.chown(root / "home/ann", 1234, 1234, follow_symlinks=False)
        os.chown(notebook / "work.py", 1234, 1234)


def empty_root(root: Path) -> Path:
    for part in qb.PARTS:
        (root / part).mkdir(parents=True)
    return root


def users(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [name for (name,) in conn.execute("select name from users")]


def test_restore_gives_back_files_modes_owners_links_and_database(tmp_path):
    make_hub(tmp_path / "old")
    archive = tmp_path / "hub.tar.gz"
    qb.create(archive, tmp_path / "old")
    assert archive.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("*.partial"))

    new = empty_root(tmp_path / "new")
    qb.restore(archive, new)

    assert (new / "home/ann/notebook/work.py").read_text() == "print('mine')\n"
    assert (new / "home/ann").stat().st_mode & 0o777 == 0o700
    assert (new / "state/accounts.json").stat().st_mode & 0o777 == 0o600
    assert os.readlink(new / "home/ann/python") == "/usr/bin/python3"
    assert (new / "config/jupyterhub_config.py").exists()
    assert users(new / qb.DB) == ["ann"]
    assert not (new / "state/jupyterhub-proxy.pid").exists()  # meant only for the hub that wrote it
    if os.geteuid() == 0:
        assert (new / "home/ann/notebook/work.py").stat().st_uid == 1234
        assert (new / "home/ann").stat().st_gid == 1234


def test_database_copied_while_a_write_is_under_way_holds_what_was_committed(tmp_path):
    make_hub(tmp_path)
    with closing(sqlite3.connect(tmp_path / qb.DB, isolation_level=None)) as writer:
        writer.execute("begin immediate")
        writer.execute("insert into users values ('not yet committed')")
        qb.copy_db(tmp_path / qb.DB, tmp_path / "copy.sqlite")
        writer.execute("commit")
    assert users(tmp_path / "copy.sqlite") == ["ann"]
    with closing(sqlite3.connect(tmp_path / "copy.sqlite")) as copy:
        assert copy.execute("pragma integrity_check").fetchone() == ("ok",)


def test_restore_refuses_volumes_that_hold_anything_and_writes_nothing(tmp_path):
    make_hub(tmp_path / "old")
    qb.create(tmp_path / "hub.tar.gz", tmp_path / "old")
    new = empty_root(tmp_path / "new")
    (new / "home/someone").mkdir()
    with pytest.raises(SystemExit, match=f"not empty: {new / 'home'}.*quickjh_purge_volumes"):
        qb.restore(tmp_path / "hub.tar.gz", new)
    assert not any((new / "state").iterdir())


def test_restore_refuses_an_archive_that_is_not_a_quickjh_backup(tmp_path):
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/bash\n")
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "passwd", "etc/passwd")
    with pytest.raises(SystemExit, match="not a quickjh backup: it holds etc/passwd"):
        qb.restore(tmp_path / "other.tar.gz", empty_root(tmp_path / "new"))


def add_shared(root: Path) -> None:
    """The shared folder data (its volume at shared/data) with a member's file."""
    (root / "shared/data").mkdir(parents=True)
    os.chmod(root / "shared/data", 0o2770)
    (root / "shared/data/team.csv").write_text("1,2\n")
    (root / "shared/data/sub").mkdir()


def test_shared_folders_are_backed_up_and_restored_into_their_empty_volumes(tmp_path):
    make_hub(tmp_path / "old")
    add_shared(tmp_path / "old")
    qb.create(tmp_path / "hub.tar.gz", tmp_path / "old")
    new = empty_root(tmp_path / "new")
    (new / "shared/data").mkdir()  # the volume, mounted empty
    qb.restore(tmp_path / "hub.tar.gz", new)
    assert (new / "shared/data/team.csv").read_text() == "1,2\n"
    assert (new / "shared/data").stat().st_mode & 0o7777 == 0o2770
    for folder in ("shared/data", "shared/data/sub"):  # tar holds no ACLs: the restore sets them again
        assert os.getxattr(new / folder, "system.posix_acl_default") == qb.DEFAULT_ACL
    old = os.umask(0o022)
    try:
        (new / "shared/data/sub/new.txt").write_text("x")
    finally:
        os.umask(old)
    assert (new / "shared/data/sub/new.txt").stat().st_mode & 0o777 == 0o660


def test_restore_refuses_a_full_shared_folder_and_one_this_hub_has_not(tmp_path):
    make_hub(tmp_path / "old")
    add_shared(tmp_path / "old")
    qb.create(tmp_path / "hub.tar.gz", tmp_path / "old")
    new = empty_root(tmp_path / "new")
    with pytest.raises(SystemExit, match="holds the shared folders data, which this hub has not"):
        qb.restore(tmp_path / "hub.tar.gz", new)
    (new / "shared/data").mkdir()
    (new / "shared/data/other.txt").write_text("here")
    with pytest.raises(SystemExit, match=f"not empty: {new / 'shared/data'}"):
        qb.restore(tmp_path / "hub.tar.gz", new)
    assert not any((new / "home").iterdir())
