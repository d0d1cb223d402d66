"""Nothing a user wrote is lost: an upgrade of JupyterHub, a backup restored after the volumes were deleted, the hub
taken down and brought back. The tests run in order on one deployment (converged with JupyterHub 5)."""

from __future__ import annotations

import json
import sqlite3
import tarfile
import time
from pathlib import Path

import docker
import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hubclient import HubUser
from hubfixtures import converge, project_playbook
from idservers import SSHTarget, build

ROLE_DEFAULTS = Path(__file__).resolve().parents[3] / "roles/quickjh/defaults/main.yml"
NEW_VERSION = yaml.safe_load(ROLE_DEFAULTS.read_text())["quickjh_jupyterhub_version"]
BASE_IMAGE = yaml.safe_load(ROLE_DEFAULTS.read_text())["quickjh_base_image"]
# The newest (role default) version from here on; converge() with no options would go back to the old one.
NEW = ("-e", f"quickjh_jupyterhub_version={NEW_VERSION}")
USER2_PASSWORD = "us3r2-own-pw"  # set in a terminal, not in the inventory: only the saved accounts know it
FILES = {"admin": "admin's notes\n", "user1": "user1's work\n", "user2": "user2's draft\n"}
READ = "print(open('mine.txt').read(), end='')"
TEAM = "data/team.csv"  # user1's file in the shared folder data (~/notebook/data)
MINE = "import sys; print(sys.executable)"
# Shared by the tests of this module, in order: user1's browser session, taken before the upgrade, and the
# archives of the hub before ("old") and after ("new") the upgrade.
kept: dict[str, HubUser] = {}
archives: dict[str, Path] = {}


@pytest.fixture(scope="module")
def client():
    return docker.from_env()


@pytest.fixture(scope="module")
def every_password(passwords):
    return dict(passwords, user2=USER2_PASSWORD)


def hub_version(hub_url: str) -> str:
    return requests.get(f"{hub_url}/hub/api", timeout=10, verify=False).json()["version"]


def state_db(hub, path: str) -> str:
    """The alembic (schema) version of a database file on the state volume."""
    query = "select version_num from alembic_version"
    code = f"import sqlite3; print(sqlite3.connect({path!r}).execute({query!r}).fetchone()[0])"
    out = hub().exec_run(["python3", "-c", code])
    assert out.exit_code == 0, out.output
    return out.output.decode().strip()


def log_in(hub_url: str, verify: str, name: str, password: str) -> HubUser:
    user = HubUser(hub_url, name, verify=verify)  # the hub's own certificate: a restore brings it back
    user.login(password)
    user.start_server()
    return user


def check_everyone(hub_url: str, every_password: dict[str, str], verify) -> None:
    """Each user logs in with their password, finds their file, and user1's own kernel runs."""
    for name, password in every_password.items():
        user = log_in(hub_url, verify, name, password)
        assert user.run(READ) == FILES[name]
        if name == "user1":
            assert user.run(MINE, kernel="mine").startswith("/opt/jupyterhub/bin/python")
            assert user.run(f"print(open({TEAM!r}).read(), end='')") == "1,2\n"


def shared_volume(settings) -> str:
    return f"{settings['quickjh_container_name']}_shared_data"


def backup(settings) -> Path:
    """Run backup.yml; return the archive it wrote."""
    before = set(Path(settings["quickjh_backup_dir"]).glob("*.tar.gz"))
    project_playbook("backup.yml")
    (archive,) = set(Path(settings["quickjh_backup_dir"]).glob("*.tar.gz")) - before
    return archive


def test_old_hub_runs_jupyterhub_5_and_users_leave_files_and_a_kernel(hub, settings, hub_url, passwords, verify):
    assert hub_version(hub_url).startswith("5.")
    container = hub()
    # user2 is added from a terminal, with a password only the container knows (as `sudo quickjh-adduser` does).
    added = container.exec_run(
        [
            "bash",
            "-c",
            f"quickjh-users add user2 >/dev/null && echo user2:{USER2_PASSWORD} | chpasswd && quickjh-users save",
        ]
    )
    assert added.exit_code == 0, added.output
    for name, text in FILES.items():
        user = log_in(hub_url, verify, name, USER2_PASSWORD if name == "user2" else passwords[name])
        user.run(f"open('mine.txt', 'w').write({text!r})")
        if name == "user1":
            user.terminal("python -m ipykernel install --user --name mine --display-name Mine")
            user.run(f"open({TEAM!r}, 'w').write('1,2\\n')")
            kept["user1"] = user
    assert kept["user1"].run(MINE, kernel="mine").startswith("/opt/jupyterhub/bin/python")
    archives["old"] = backup(settings)


def test_upgrade_copies_the_database_then_upgrades_it_and_keeps_sessions_users_files_kernels(
    hub, hub_url, every_password, verify
):
    old_schema = state_db(hub, "/srv/jupyterhub/jupyterhub.sqlite")
    old_image = hub().image.id
    started = time.monotonic()
    converge(*NEW)
    print(f"upgrade to {NEW_VERSION}: {time.monotonic() - started:.0f} s")
    container = hub()
    assert container.image.id != old_image
    assert hub_version(hub_url) == NEW_VERSION
    log = container.logs().decode()
    assert "database copied to /srv/jupyterhub/db-backups/" in log
    copies = container.exec_run(["ls", "/srv/jupyterhub/db-backups"]).output.decode().split()
    assert len(copies) == 1
    assert state_db(hub, f"/srv/jupyterhub/db-backups/{copies[0]}") == old_schema
    assert state_db(hub, "/srv/jupyterhub/jupyterhub.sqlite") != old_schema  # upgraded

    # user1's browser session from before the upgrade is still logged in, and the server starts again.
    user1 = kept["user1"]
    assert user1.model()["name"] == "user1"
    user1.start_server()
    assert user1.run(READ) == FILES["user1"]
    check_everyone(hub_url, every_password, verify)

    again = converge(*NEW)
    assert "changed=0" in again.stdout, again.stdout[-2000:]


def test_backup_while_the_hub_runs_holds_homes_state_and_config(client, settings, hub_url, every_password, verify):
    busy = log_in(hub_url, verify, "user1", every_password["user1"])  # a running server: the hub writes its database
    started = time.monotonic()
    archive = archives["new"] = backup(settings)
    elapsed = time.monotonic() - started
    print(f"backup: {archive.name} {archive.stat().st_size / 1e3:.0f} kB in {elapsed:.0f} s")
    assert archive.stat().st_mode & 0o777 == 0o600
    fetched = Path(settings["quickjh_backup_fetch_dir"]) / archive.name
    assert fetched.read_bytes() == archive.read_bytes()
    assert (fetched.stat().st_mode & 0o777, fetched.parent.stat().st_mode & 0o777) == (0o600, 0o700)

    uid = int(busy.run("import os; print(os.getuid())"))
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert {
            "home/user2/notebook/mine.txt",
            "state/accounts.json",
            "state/jupyterhub_cookie_secret",
            "shared/data/team.csv",
            "config/settings.json",
            "home/user1/.local/share/jupyter/kernels/mine/kernel.json",
        } <= names
        assert tar.getmember("home/user1/notebook/mine.txt").uid == uid
        assert tar.getmember("home/user1").mode == 0o700
        saved = json.load(tar.extractfile("state/accounts.json"))
        assert "user2" in json.dumps(saved)
        db = Path(settings["quickjh_backup_dir"]) / "check.sqlite"
        db.write_bytes(tar.extractfile("state/jupyterhub.sqlite").read())
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
        assert {"admin", "user1", "user2"} <= {n for (n,) in conn.execute("select name from users")}
    db.unlink()


@pytest.fixture()
def ssh_target(settings):
    """A real SSH server (the test servers' image) that takes the scheduled archives, a key for it and its
    known_hosts line, as the inventory would give them."""
    folder = Path(settings["test_dir"]) / "ssh-target"
    folder.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    (folder / "id").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    print(f"\ntest servers' image: {build(BASE_IMAGE):.1f} s")
    target = SSHTarget(folder / "server", public.decode() + "\n")
    (folder / "known_hosts").write_text(target.known_hosts())
    copy = {
        "quickjh_backup_ssh_target": f"keeper@{target.address}:archives/",
        "quickjh_backup_ssh_key": str(folder / "id"),
        "quickjh_backup_ssh_known_hosts": str(folder / "known_hosts"),
    }
    try:
        yield target, copy
    finally:
        target.remove()


def test_the_hub_backs_itself_up_on_its_schedule_keeps_the_newest_and_the_drill_restores_one(
    client, hub, settings, ssh_target
):
    folder = Path(settings["quickjh_backup_dir"])
    target, copy = ssh_target
    schedule = ("-e", json.dumps({"quickjh_backup_schedule": "every 1m", "quickjh_backup_keep": 2, **copy}))
    converge(*NEW, *schedule)
    deadline = time.monotonic() + 150  # the first at the next whole minute after the hub started
    while not list(folder.glob("*-auto-*.tar.gz")):
        assert time.monotonic() < deadline, "no scheduled backup"
        time.sleep(3)
    first = next(folder.glob("*-auto-*.tar.gz"))
    while target.files().get(first.name) != first.stat().st_size:  # copied whole over SSH, with the key alone
        assert time.monotonic() < deadline + 60, f"{first.name} not copied: {target.files()}"
        time.sleep(1)
    for _ in range(2):  # two more, as the schedule would make them
        time.sleep(1.1)
        assert hub().exec_run(["quickjh-backup", "scheduled"]).exit_code == 0
    assert len(list(folder.glob("*-auto-*.tar.gz"))) == 2  # the newest two kept
    status = json.loads(hub().exec_run(["cat", "/srv/jupyterhub/backup-status.json"]).output)
    assert status["error"] == "" and status["archive"] in {p.name for p in folder.iterdir()}
    said = " ".join(converge(*NEW, *schedule).stdout.split())
    assert "Last scheduled backup:" in said and "WARNING" not in said.split("Last scheduled backup:")[1][:80]
    started = time.monotonic()
    names = ("quickjh_container_name", "quickjh_home_volume", "quickjh_state_volume", "quickjh_config_dir")
    refused = project_playbook("restore-drill.yml", "-e", "quickjh_container_name=quickjh-test-data", ok=False)
    assert refused.returncode != 0 and "names its scratch hub itself" in refused.stdout + refused.stderr
    drilled = " ".join(
        project_playbook("restore-drill.yml", *NEW, drop=(*names, "quickjh_port", "quickjh_build_dir")).stdout.split()
    )
    print(f"\nthe restore drill: {time.monotonic() - started:.0f} s")
    assert "The drill of" in drilled and "passed" in drilled, drilled[-2000:]
    assert not client.containers.list(all=True, filters={"name": "quickjh-drill"})
    assert not [v for v in client.volumes.list() if v.name.startswith("quickjh-drill")]
    converge(*NEW)


def test_taken_down_the_data_stays_a_restore_refuses_it_and_the_hub_comes_back(
    client, hub, settings, hub_url, every_password, verify
):
    converge(*NEW, "-e", "quickjh_state=absent")
    with pytest.raises(docker.errors.NotFound):
        hub()
    for volume in (settings["quickjh_home_volume"], settings["quickjh_state_volume"], shared_volume(settings)):
        client.volumes.get(volume)
    assert client.images.list(name=settings["quickjh_image_name"])  # kept: no rebuild to come back

    archive = archives["new"]
    refused = project_playbook("restore.yml", *NEW, "-e", f"quickjh_restore_archive={archive}", ok=False)
    said = refused.stdout + refused.stderr
    assert "not empty" in said and "quickjh_purge_volumes" in said

    converge(*NEW)
    check_everyone(hub_url, every_password, verify)


def test_restore_after_the_volumes_were_deleted_gives_everyone_back_their_login_files_and_kernels(
    client, settings, hub_url, every_password, verify
):
    archive = archives["new"]
    refused = project_playbook("restore.yml", *NEW, "-e", f"quickjh_restore_archive={archive}", ok=False)
    assert f"A container named {settings['quickjh_container_name']} exists" in refused.stdout + refused.stderr

    converge(*NEW, "-e", "quickjh_state=absent", "-e", "quickjh_purge_volumes=true")
    names = {v.name for v in client.volumes.list()}
    assert not {settings["quickjh_home_volume"], settings["quickjh_state_volume"], shared_volume(settings)} & names
    assert not Path(settings["quickjh_config_dir"]).exists()
    assert archive.exists()  # backups are never removed

    started = time.monotonic()
    project_playbook("restore.yml", *NEW, "-e", f"quickjh_restore_archive={archive}")
    print(f"restore and start: {time.monotonic() - started:.0f} s")
    assert kept["user1"].model()["name"] == "user1"  # a browser logged in before the backup still is
    check_everyone(hub_url, every_password, verify)


def test_a_backup_of_the_older_jupyterhub_restores_into_the_new_one(hub, hub_url, every_password, verify):
    converge(*NEW, "-e", "quickjh_state=absent", "-e", "quickjh_purge_volumes=true")
    project_playbook("restore.yml", *NEW, "-e", f"quickjh_restore_archive={archives['old']}")
    assert hub_version(hub_url) == NEW_VERSION
    log = hub().logs().decode()
    assert "database copied to /srv/jupyterhub/db-backups/" in log and "Upgrading sqlite" in log
    assert kept["user1"].model()["name"] == "user1"
    check_everyone(hub_url, every_password, verify)


def test_uninstall_with_image_and_volumes_leaves_only_the_backups(client, hub, settings):
    converge(*NEW, "-e", "quickjh_state=absent", "-e", "quickjh_remove_image=true", "-e", "quickjh_purge_volumes=true")
    with pytest.raises(docker.errors.NotFound):
        hub()
    assert not client.images.list(name=settings["quickjh_image_name"])
    names = {v.name for v in client.volumes.list()}
    assert not {settings["quickjh_home_volume"], settings["quickjh_state_volume"], shared_volume(settings)} & names
    assert not Path(settings["quickjh_config_dir"]).exists()
    assert list(Path(settings["quickjh_backup_dir"]).glob("*.tar.gz"))
