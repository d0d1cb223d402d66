"""Scheduled backups, on the server itself (quickjh_backup_schedule): a loop in the hub's container writes the same
archive as backup.yml, from the hub's own paths, into quickjh_backup_dir (mounted at /var/backups/quickjh), keeps
the newest quickjh_backup_keep scheduled ones (others, e.g. backup.yml's, are never touched), optionally copies each
to another host over SSH, and records the outcome in $QUICKJH_STATE/backup-status.json: the usage page, the
Prometheus gauge and the next playbook run read it (a failed or missing backup is a warning there).

A schedule is "HH:MM" (daily, UTC), several of them, or "every N m" / "every N h". A run missed while the hub was
down is made when it comes back; the first one comes at the first scheduled time after the hub first runs."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from quickjh import settings as deployment
from quickjh.backup import create
from quickjh.settings import state_dir

BACKUPS = Path("/var/backups/quickjh")
SSH = Path("/etc/quickjh/backup")  # id (the key) and known_hosts, copied by the role


def status_file() -> Path:
    return state_dir() / "backup-status.json"


def read_status() -> dict:
    try:
        return json.loads(status_file().read_text())
    except (OSError, ValueError):
        return {}


def write_status(status: dict) -> None:
    partial = status_file().with_suffix(".partial")
    partial.write_text(json.dumps(status, sort_keys=True))
    partial.replace(status_file())


def due(schedule: list[str], now: datetime.datetime) -> datetime.datetime | None:
    """The latest scheduled time at or before now (None: no schedule)."""
    latest = None
    for entry in schedule:
        every = re.fullmatch(r"every\s*(\d+)\s*([mh])", entry.strip())
        if every:
            seconds = int(every.group(1)) * (60 if every.group(2) == "m" else 3600)
            at = datetime.datetime.fromtimestamp(now.timestamp() // seconds * seconds, datetime.UTC)
        else:
            hour, minute = (int(part) for part in entry.split(":"))
            at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if at > now:
                at -= datetime.timedelta(days=1)
        latest = at if latest is None or at > latest else latest
    return latest


def prune(folder: Path, hub: str, keep: int) -> list[str]:
    """The scheduled archives beyond the newest keep go; returns their names."""
    archives = sorted(folder.glob(f"{hub}-auto-*.tar.gz"))
    gone = archives[: max(len(archives) - keep, 0)]
    for archive in gone:
        archive.unlink()
    return [archive.name for archive in gone]


def run_once() -> int:
    """One scheduled backup now: the accounts saved, the archive written, old ones pruned, copied if asked."""
    from quickjh.persistence import save

    settings = deployment.load()
    backup, hub = settings["backup"], settings["hub"]
    now = datetime.datetime.now(datetime.UTC)
    status = dict(read_status(), last_attempt=now.strftime("%Y-%m-%dT%H:%M:%SZ"), error="")
    archive = BACKUPS / f"{hub}-auto-{now:%Y%m%dT%H%M%SZ}.tar.gz"
    try:
        save()
        parts = {
            "state": state_dir(),
            "config": Path("/etc/quickjh"),
            "home": Path("/home"),
            "shared": Path("/srv/shared"),
        }
        create(archive, parts=parts)
        if backup["ssh_target"]:
            subprocess.run(
                [
                    "scp",
                    "-q",
                    "-i",
                    str(SSH / "id"),
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    f"UserKnownHostsFile={SSH / 'known_hosts'}",
                    str(archive),
                    backup["ssh_target"],
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=3600,
            )
        prune(BACKUPS, hub, backup["keep"])
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", "") or ""
        status["error"] = f"{err} {detail}".strip()
        print(f"quickjh-backup: the scheduled backup failed: {status['error']}", file=sys.stderr)
    else:
        status.update(
            last_success=status["last_attempt"],
            last_success_epoch=int(now.timestamp()),
            archive=archive.name,
            bytes=archive.stat().st_size,
        )
    write_status(status)
    return 1 if status["error"] else 0


def loop() -> int:
    """Every minute: a backup when a scheduled time has come since the last attempt."""
    schedule = deployment.load()["backup"]["schedule"]
    if not read_status().get("last_attempt"):  # the first one at the first scheduled time from now on
        write_status({"last_attempt": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    while True:
        now = datetime.datetime.now(datetime.UTC)
        at = due(schedule, now)
        last = read_status().get("last_attempt", "")
        if at is not None and last < at.strftime("%Y-%m-%dT%H:%M:%SZ"):
            subprocess.run(
                ["nice", "-n", "19", "ionice", "-c", "3", sys.executable, "-I", "-m", "quickjh.schedule"], check=False
            )
        time.sleep(60 - time.time() % 60 + 1)


if __name__ == "__main__":
    raise SystemExit(run_once())
