"""Fresh Debian servers reached over SSH as a sudoer: the role installed Docker from Debian's packages, loaded the
base image from an archive (no registry there), built the hub and runs it; users log in through the server's
published port. Each test runs once per server."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import docker
import pytest

from hubfixtures import can_login, wait_healthy

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
testinfra_hosts = ["ansible://quickjh"]  # the servers the role deployed to (not the spare one of test_bare.py)


def test_the_server_image_has_no_docker_so_the_role_installed_it(host):
    fresh = docker.from_env().containers.run(
        "quickjh-test:remote-server", ["sh", "-c", "command -v dockerd; true"], remove=True
    )
    assert fresh == b"", "the scenario's servers must start without Docker"
    for package in ("docker.io", "python3-docker"):
        assert host.package(package).is_installed, package
    assert host.service("docker").is_running and host.service("docker").is_enabled


def test_the_base_image_came_from_the_archive_and_its_copy_is_gone(host, settings):
    archive = json.loads(host.check_output("docker image inspect %s", "debian:trixie-slim"))
    assert archive[0]["RepoTags"] == ["debian:trixie-slim"]
    assert host.check_output("ls -A %s/archives", settings["quickjh_build_dir"]) == ""


@pytest.mark.parametrize("name", ["admin", "user1"])
def test_users_log_in_through_the_published_port_and_run_code(login, name):
    printed = login(name).whoami()
    assert printed[0] == name and printed[2] == f"/home/{name}/notebook"


def test_each_server_has_its_own_generated_passwords(user, settings, passwords):
    here = settings["inventory_hostname"]
    other = next(name for name in ("remote-a", "remote-b") if name != here)
    theirs = (EPHEMERAL / "credentials" / other / "user1").read_text().split()[0]
    assert theirs != passwords["user1"]
    assert not can_login(user, "user1", theirs)
    assert can_login(user, "user1", passwords["user1"])


def test_the_hub_is_back_by_itself_with_the_users_files_after_the_servers_docker_daemon_restarts(
    host, login, settings, hub_url
):
    login("user1").run("open('before-daemon-restart.txt', 'w').write('kept')")

    def hub() -> dict:
        return json.loads(host.check_output("docker container inspect %s", settings["quickjh_container_name"]))[0]

    before = hub()
    started = time.monotonic()
    host.run_expect([0], "systemctl restart docker")  # as a host's reboot does: the daemon stops every container
    wait_healthy(hub_url)
    took = time.monotonic() - started
    print(f"\n{settings['inventory_hostname']}: Docker restarted, the hub answering after {took:.1f} s")
    after = hub()
    assert after["Id"] == before["Id"]  # the same container, started again by its restart policy, without a run
    assert after["State"]["StartedAt"] != before["State"]["StartedAt"]
    assert login("user1").run("print(open('before-daemon-restart.txt').read())").strip() == "kept"
