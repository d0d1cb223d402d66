"""quickjh_spawner docker over a deployment's life: users' servers keep running while the hub restarts or is
re-created; a setting of users' containers takes effect at each user's next start; switching to local mode and
back keeps homes, accounts and passwords; backup, restore and an upgrade keep the homes."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from hubfixtures import converge, project_playbook, wait_healthy


@pytest.fixture(scope="module")
def user_container(settings):
    client = docker.from_env()
    return lambda name: client.containers.get(f"{settings['quickjh_container_name']}-{name}")


def running_since(container) -> tuple[str, str]:
    container.reload()
    return container.id, container.attrs["State"]["StartedAt"]


def test_servers_keep_running_while_the_hub_restarts_and_is_re_created(login, hub, hub_url, user_container):
    user1 = login("user1")
    user1.run("open('before.txt', 'w').write('kept')")
    since = running_since(user_container("user1"))
    hub().restart()
    wait_healthy(hub_url)
    assert running_since(user_container("user1")) == since
    assert user1.run("print(open('before.txt').read())").strip() == "kept"  # the same session, no new start
    hub().remove(force=True)  # the hub's container gone: the next run makes a new one
    converge()
    wait_healthy(hub_url)
    assert running_since(user_container("user1")) == since
    assert user1.model()["servers"][""]["ready"] is True
    assert user1.run("print(6 * 7)").strip() == "42"


def test_a_setting_of_users_containers_takes_effect_at_each_users_next_start(login, user_container):
    user1 = login("user1")
    converge("-e", json.dumps({"quickjh_user_mem_limit": "700m"}))
    assert user_container("user1").attrs["HostConfig"]["Memory"] == 600 * 1024**2  # still running as it was
    user1.stop_server()
    user1.start_server()
    assert user_container("user1").attrs["HostConfig"]["Memory"] == 700 * 1024**2
    converge()


def test_switching_to_local_and_back_keeps_homes_accounts_and_passwords(login, settings, user_container):
    login("user1").run("open('across.txt', 'w').write('both modes')")
    converge("-e", "quickjh_spawner=local")
    with pytest.raises(docker.errors.NotFound):
        user_container("user1")  # its container went with the mode
    user1 = login("user1")
    assert user1.run("print(open('across.txt').read())").strip() == "both modes"
    assert user1.whoami()[0] == "user1"
    converge()
    user1 = login("user1")
    assert user_container("user1").status == "running"
    assert user1.run("print(open('across.txt').read())").strip() == "both modes"


def test_backup_and_restore_keep_the_homes(login, settings, hub_url):
    login("user1").run("open('backed-up.txt', 'w').write('in the archive')")  # while user1's container runs
    project_playbook("backup.yml")
    (archive,) = Path(settings["quickjh_backup_dir"]).glob("*.tar.gz")
    converge("-e", "quickjh_state=absent", "-e", "quickjh_purge_volumes=true")
    hub_label = f"quickjh.hub={settings['quickjh_container_name']}"  # this hub's: other scenarios may run beside
    assert not docker.from_env().containers.list(all=True, filters={"label": hub_label})
    project_playbook("restore.yml", "-e", f"quickjh_restore_archive={archive}")
    wait_healthy(hub_url)
    assert login("user1").run("print(open('backed-up.txt').read())").strip() == "in the archive"


def test_an_upgrade_keeps_homes_and_reaches_each_server_at_its_next_start(login, hub, user_container):
    user1 = login("user1")
    old = hub().image.id
    # The build can outlast the scenario's idle timeout (2 minutes) on a busy machine, and the new hub's culler, first
    # to run, would stop user1's idle server before it reports its activity: not what this test is about.
    converge("-e", json.dumps({"quickjh_pip_packages": ["cowsay==6.0"], "quickjh_cull_idle_timeout": 3600}))
    assert hub().image.id != old
    assert user_container("user1").image.id == old  # running on, until its next start
    user1.stop_server()
    user1.start_server()
    assert user_container("user1").image.id == hub().image.id
    assert (
        user1.run("import cowsay; print(cowsay.__version__, open('backed-up.txt').read())").strip()
        == "6.0 in the archive"
    )
    converge()
