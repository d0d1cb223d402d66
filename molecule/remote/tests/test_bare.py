"""Where quickjh may not or cannot install Docker, the run stops before anything changes, saying what to install.
The spare server (not in the group quickjh, so converge left it alone) is a fresh Debian server without Docker."""

from __future__ import annotations

import docker
import pytest

from hubfixtures import converge

SERVER = "quickjh-test-bare"


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """run(*options) -> the output of a converge of the spare server that fails (ok=True: succeeds), its lines
    joined as Ansible folds long messages, then what changed on it."""
    inventory = tmp_path_factory.mktemp("bare") / "inventory.ini"
    inventory.write_text("[quickjh]\nbare\n")  # into the group, for this run only: it gets the group's settings
    server = docker.from_env().containers.get(SERVER)

    def run(*options: str, ok: bool = False) -> tuple[str, str]:
        result = converge("-i", str(inventory), "--limit", "bare", *options, ok=ok)
        output = " ".join((result.stdout + result.stderr).split())
        changed = server.exec_run(
            [
                "sh",
                "-c",
                "dpkg -l docker.io python3-docker 2>/dev/null | grep ^ii; "
                "ls -d /tmp/quickjh-test-remote 2>/dev/null; true",
            ]
        ).output.decode()
        return output, changed

    return server, run


def test_with_quickjh_install_docker_false_the_run_stops_saying_what_to_install(bare):
    _, run = bare
    output, changed = run("-e", "quickjh_install_docker=false")
    assert (
        "bare has no Docker Engine and no Docker SDK for Python and no cryptography for Python. "
        "quickjh_install_docker is false"
    ) in output
    assert "install them by hand (Docker Engine: https://docs.docker.com/engine/install/" in output
    assert "changed=0" in output and changed == ""


def test_check_mode_on_a_server_without_docker_says_what_it_would_install_and_changes_nothing(bare):
    _, run = bare
    output, changed = run("--check", ok=True)
    assert "bare: docker.io, python3-docker, python3-cryptography would be installed" in output
    assert changed == ""


def test_on_an_os_other_than_debian_or_ubuntu_the_run_stops_saying_what_to_install(bare):
    server, run = bare
    fedora = 'NAME="Fedora Linux"\\nID=fedora\\nVERSION_ID=41\\nPRETTY_NAME="Fedora Linux 41"\\n'
    server.exec_run(["sh", "-c", f"rm -f /etc/debian_version /etc/os-release; printf '{fedora}' >/etc/os-release"])
    output, changed = run()
    assert "quickjh installs them only on Debian and Ubuntu, and this is Fedora" in output
    assert "changed=0" in output and changed == ""
