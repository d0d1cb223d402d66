"""Fixtures shared by the scenarios' tests (a pytest plugin): the inventory's settings, logged-in users, the role
run again. Each scenario's tests/conftest.py loads it with `pytest_plugins`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from hubclient import HubUser, LoginFailed, wait_healthy  # noqa: F401 (the tests import wait_healthy from here)

sys.path.append(str(Path(__file__).resolve().parents[2] / "scripts"))  # the tests import browser_check from there


@pytest.fixture(scope="module")
def settings(host) -> dict:
    """The role's variables as the scenario's inventory sets them."""
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def base_users(settings) -> list[dict]:
    """The scenario's quickjh_users, for tests that run the role with a changed list."""
    return settings["quickjh_users"]


@pytest.fixture(scope="module")
def hub_url(settings) -> str:
    """The hub's address as users open it, under quickjh_base_url (no slash at the end): the host's address over
    SSH (the remote scenario publishes each server's port on it), else the address the port is published on."""
    scheme = "http" if settings.get("quickjh_tls", "self-signed") == "off" else "https"
    path = settings.get("quickjh_base_url", "/").strip("/")
    address = settings.get("ansible_host", settings["quickjh_bind_address"])
    return f"{scheme}://{address}:{settings['quickjh_port']}" + (f"/{path}" if path else "")


@pytest.fixture(scope="module")
def verify(settings, host, tmp_path_factory) -> bool | str:
    """What clients trust: the hub's own certificate when the role made a self-signed one (on this machine, the
    file itself, which a re-created hub may have renewed; over SSH, a copy)."""
    if settings.get("quickjh_tls", "self-signed") != "self-signed":
        return True
    cert = f"{settings['quickjh_config_dir']}/tls/hub.crt"
    if settings.get("ansible_connection") == "local":
        return cert
    copy = tmp_path_factory.mktemp("tls") / "hub.crt"
    copy.write_bytes(host.file(cert).content)
    return str(copy)


@pytest.fixture(scope="module")
def passwords(settings) -> dict[str, str]:
    return {u["name"]: u["password"] for u in settings["quickjh_users"]}


@pytest.fixture(scope="module")
def hub(settings):
    """hub() -> the scenario's hub container as it is now (the tests re-create it)."""
    client = docker.from_env()
    return lambda: client.containers.get(settings["quickjh_container_name"])


@pytest.fixture(scope="module")
def user(hub_url, verify):
    """user(name) -> a HubUser of this hub, not logged in yet, trusting what the hub's clients trust."""
    return lambda name: HubUser(hub_url, name, verify=verify)


@pytest.fixture(scope="module")
def login(hub_url, passwords, verify):
    """login(name) -> a HubUser logged in through the form, with a running server."""

    def _login(name: str, start: bool = True) -> HubUser:
        user = HubUser(hub_url, name, verify=verify)
        user.login(passwords[name])
        if start:
            user.start_server()
        return user

    return _login


def can_login(user, name: str, password: str) -> bool:
    """Whether name logs in with password (user: the fixture that makes a HubUser)."""
    try:
        user(name).login(password)
    except LoginFailed:
        return False
    return True


def own_venv_becomes_their_kernel(owner, other) -> None:
    """The README's recipe for a kernel of one's own: owner's venv becomes owner's kernel, and not other's."""
    printed = owner.terminal(
        "python3 -m venv ~/myenv && ~/myenv/bin/pip install -q ipykernel"
        " && ~/myenv/bin/python -m ipykernel install --user --name myenv --display-name 'My env'",
        timeout=600,
    )
    assert printed.endswith("[exit 0]"), printed[-2000:]
    assert "myenv" in owner.server_api("GET", "/kernelspecs").json()["kernelspecs"]
    assert "myenv" not in other.server_api("GET", "/kernelspecs").json()["kernelspecs"]
    assert (
        owner.run("import sys; print(sys.executable)", kernel="myenv").strip() == f"/home/{owner.name}/myenv/bin/python"
    )


def server_answers_without_login(attacker, server: str, owner: str) -> str:
    """What the owner's server at server:8888 answers the attacker's kernel, without the owner's login, for the
    contents, kernels and files APIs: a line per path, "PATH CODE LEAKED" (LEAKED: whether 'user1 only' came back)."""
    return attacker.run(
        "import urllib.request, urllib.error\n"
        "for path in ('api/contents/secret.txt?content=1', 'api/kernels', 'files/secret.txt'):\n"
        f"    req = urllib.request.Request('http://{server}:8888/user/{owner}/' + path)\n"
        "    try:\n"
        "        reply = urllib.request.urlopen(req, timeout=10); code, body = reply.status, reply.read()\n"
        "    except urllib.error.HTTPError as e:\n"
        "        code, body = e.code, e.read()\n"
        "    print(path, code, b'user1 only' in body)\n"
    )


def playbook(path: Path, *extra: str, ok: bool = True) -> subprocess.CompletedProcess:
    """Run a playbook against the scenario's instance (extra: ansible-playbook options); check it succeeded or not."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    result = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(path), *extra],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert (result.returncode == 0) is ok, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def project_playbook(
    name: str, *extra: str, ok: bool = True, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run one of the project's own playbooks (backup.yml, restore.yml), as the README shows. Next to them,
    group_vars/quickjh.yml (the example's users) would win over the scenario's inventory: the scenario's quickjh_
    settings go in as extra vars, before the test's own."""
    inventory = subprocess.run(
        ["ansible-inventory", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--host", "instance"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    scenario = {
        key: value for key, value in json.loads(inventory).items() if key.startswith("quickjh_") and key not in drop
    }
    path = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]).parents[1] / name
    return playbook(path, "-e", json.dumps(scenario), *extra, ok=ok)


def converge(*extra: str, ok: bool = True) -> subprocess.CompletedProcess:
    """Run the scenario's converge playbook again, as `molecule converge` does."""
    return playbook(Path(__file__).resolve().parent / "converge.yml", *extra, ok=ok)  # every scenario's converge


def converge_users(users: list[dict], *extra: str, ok: bool = True) -> subprocess.CompletedProcess:
    """Run the role with this quickjh_users list instead of the scenario's."""
    return converge("-e", json.dumps({"quickjh_users": users}), *extra, ok=ok)


# --- who uses what (quickjh-usage): what the tests make a user do, and the collector's next sample ----------------


def next_sample(hub, timeout: float = 75) -> dict:
    """The usage collector's next sample (every 30 s)."""
    before = json.loads(hub().exec_run(["quickjh-usage", "--json"]).output).get("at")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = json.loads(hub().exec_run(["quickjh-usage", "--json"]).output)
        if now.get("at") != before:
            return now
        time.sleep(2)
    raise TimeoutError("no new sample")


@contextlib.contextmanager
def busy(person: HubUser, hub):
    """The person holds 300 MB in a running kernel and has written 50 MB into their home; yields the collector's
    next sample, with the homes measured. The file goes after (by root: the person's session may be gone)."""
    with person.kernel() as execute:
        execute("held = bytearray(300 * 1024 * 1024)\nfor i in range(0, len(held), 4096): held[i] = 1")
        execute("open('fifty.bin', 'wb').write(b'x' * 50 * 1024 * 1024)")
        hub().exec_run(["quickjh-usage", "homes"])
        yield next_sample(hub)
    hub().exec_run(["rm", "-f", f"/home/{person.name}/notebook/fifty.bin"])
