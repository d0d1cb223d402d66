"""quickjh-backup: one archive of a hub's homes, state and config, and its way back.

  quickjh-backup create ARCHIVE    /quickjh/{state,config,home,shared/*} -> ARCHIVE (tar.gz, mode 600)
  quickjh-backup restore ARCHIVE   ARCHIVE -> /quickjh/{state,config,home,shared/*}, which must be empty
  quickjh-backup copy-db DEST      $QUICKJH_STATE/jupyterhub.sqlite -> DEST (the hub's live database)
  quickjh-backup scheduled         one scheduled backup now, in the hub (quickjh.schedule)
  quickjh-backup schedule          the hub's backup schedule (quickjh-start runs it with quickjh_backup_schedule)

The role runs create and restore in a one-off container of the hub image with the volumes mounted under /quickjh,
and the entry point runs copy-db before it upgrades the database. Owners (numeric UIDs), modes and times are kept.
The database is copied with SQLite's backup API, so a copy made while the hub writes is whole, never torn.
Users' homes are hostile ground: the archive holds only what is really in them (links as links, never followed),
and a restore writes nothing outside /quickjh, no device node and no setuid or setgid file.
Only the standard library and quickjh.nofollow.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
from contextlib import closing
from pathlib import Path

from quickjh.hubdb import database
from quickjh.nofollow import DEFAULT_ACL, add_tree, safe_member

ROOT = Path("/quickjh")
# The hub's own parts first: a bad path in a home cannot cost them. shared/NAME: each shared folder's volume.
PARTS = ("state", "config", "home", "shared")
DB = "state/jupyterhub.sqlite"
# The live database (copied consistently instead) and files that only mean something to the running hub.
SKIP = {DB, DB + "-journal", DB + "-wal", DB + "-shm", "state/jupyterhub-proxy.pid"}


def copy_db(src: Path, dest: Path) -> None:
    """A whole copy of the SQLite database src at dest, with src's mode and owner, even while the hub writes."""
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with closing(sqlite3.connect(src, timeout=60)) as source, closing(sqlite3.connect(dest)) as copy:
        source.backup(copy)
    shutil.copystat(src, dest)
    stat = src.stat()
    os.chown(dest, stat.st_uid, stat.st_gid)


def create(archive: Path, root: Path = ROOT, parts: dict[str, Path] | None = None) -> None:
    """Write the archive next to its final name, then rename it: a cut-off run leaves no half archive. parts: where
    each part is (default: under root, as the one-off container mounts them; the hub's own paths for a scheduled
    backup)."""
    parts = parts or {part: root / part for part in PARTS}
    partial = archive.with_name(archive.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds password hashes
    with (
        tempfile.TemporaryDirectory() as tmp,
        open(fd, "wb") as out,
        tarfile.open(fileobj=out, mode="w:gz", compresslevel=6) as tar,
    ):
        for part in (part for part in PARTS if part != "shared" or parts[part].is_dir()):
            for name in add_tree(tar, parts[part], part, skip=SKIP.__contains__):
                print(
                    f"quickjh-backup: left out (too deep or long a path, or held by a lease): {name}", file=sys.stderr
                )
        db = parts["state"] / Path(DB).name
        if db.exists():
            snapshot = Path(tmp) / "jupyterhub.sqlite"
            copy_db(db, snapshot)
            tar.add(snapshot, DB)
    partial.rename(archive)


def targets(root: Path) -> list[Path]:
    """The folders a restore fills: the hub's volumes, its config folder and each shared folder's volume."""
    shared = root / "shared"
    return [root / part for part in PARTS[:3]] + (sorted(shared.iterdir()) if shared.is_dir() else [])


def restore(archive: Path, root: Path = ROOT) -> None:
    """Unpack the archive into empty folders; refuse anything else, before writing a byte."""
    full = [str(folder) for folder in targets(root) if any(folder.iterdir())]
    if full:
        sys.exit(
            f"quickjh-backup: not empty: {', '.join(full)}. A restore only fills empty volumes and an empty "
            "config folder: take the hub down first with quickjh_state=absent and quickjh_purge_volumes=true."
        )
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        strange = [m.name for m in members if m.name.split("/")[0] not in PARTS or ".." in m.name.split("/")]
        if strange:
            sys.exit(f"quickjh-backup: {archive} is not a quickjh backup: it holds {', '.join(strange[:5])}")
        shared = {m.name.split("/")[1] for m in members if m.name.startswith("shared/")}
        missing = sorted(shared - {folder.name for folder in targets(root)[3:]})
        if missing:  # it would land in the one-off container and be lost
            sys.exit(
                f"quickjh-backup: {archive} holds the shared folders {', '.join(missing)}, which this hub has "
                "not: list them in quickjh_shared_folders, then restore"
            )
        # Owners, modes and links as they were (users' venvs link to /usr/bin/python3), within safe_member's rules.
        tar.extractall(root, members, numeric_owner=True, filter=safe_member)  # noqa: S202 (safe_member judges each)
    for folder in targets(root)[3:]:  # tar keeps no ACLs: each shared folder's folders get theirs back
        for _, _, _, fd in os.fwalk(folder, follow_symlinks=False):
            os.setxattr(fd, "system.posix_acl_default", DEFAULT_ACL)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["scheduled"], ["schedule"]):  # quickjh.schedule: one scheduled backup now, or the loop
        from quickjh import schedule

        sys.exit(schedule.run_once() if argv == ["scheduled"] else schedule.loop())
    commands = {
        "create": create,
        "restore": restore,
        "copy-db": lambda dest: copy_db(database(), dest),
    }
    if len(argv) != 2 or argv[0] not in commands:
        sys.exit(__doc__)
    commands[argv[0]](Path(argv[1]))
