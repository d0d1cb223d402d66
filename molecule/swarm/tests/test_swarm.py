"""quickjh_spawner swarm: the hub on this machine's Docker (the manager), users' servers as services on the node of
their home, two workers over SSH. Users log in over HTTPS and run code over the kernel's websocket on each node;
what docker mode guarantees a user holds in their service; a user cannot reach another's server across nodes; a
node that is down is named at once to its users while the others work, and its users find their files when it is
back; a profile's image runs on a worker; a backup holds every node's homes and a restore puts each back on its
node; a home moves to another node by an edit and a run; a removed user's service goes, and so does an idle one; a
worker leaves with its line, is refused while in another swarm, and joins again. The tests run in order."""

from __future__ import annotations

import json
import subprocess
import tarfile
import time

import docker
import pytest

from hubfixtures import (
    HubUser,
    converge,
    converge_users,
    own_venv_becomes_their_kernel,
    project_playbook,
    server_answers_without_login,
)

testinfra_hosts = ["ansible://quickjh"]  # the hub's host; the workers are reached through it and Docker
HOMES = {"admin": "instance", "user1": "swarm-b", "user2": "swarm-c"}  # user2: the node with the fewest homes


@pytest.fixture(scope="module")
def client():
    return docker.from_env()


@pytest.fixture(scope="module")
def service(client, settings):
    """service(name) -> the Swarm service of that user's server, or None."""

    def get(name: str):
        found = client.services.list(filters={"name": f"{settings['quickjh_container_name']}-{name}"})
        return found[0] if found else None

    return get


def node_of(client, service) -> str:
    """The inventory name (label quickjh.node) of the node the service's running task is on."""
    tasks = [t for t in service.tasks() if t["Status"]["State"] == "running"]
    assert len(tasks) == 1, service.tasks()
    return client.nodes.get(tasks[0]["NodeID"]).attrs["Spec"]["Labels"]["quickjh.node"]


def on_worker(worker: str, *command: str) -> str:
    """A command on a worker server (its own Docker runs there), as its admin would type it."""
    return subprocess.run(
        ["docker", "exec", f"quickjh-test-{worker}", *command], capture_output=True, text=True, check=True
    ).stdout.strip()


def wait_node(client, name: str, state: str, timeout: float = 120) -> float:
    """Seconds until the manager sees the node in that state."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        nodes = [n for n in client.nodes.list() if n.attrs["Spec"].get("Labels", {}).get("quickjh.node") == name]
        if nodes and nodes[0].attrs["Status"]["State"] == state:
            return time.monotonic() - started
        time.sleep(1)
    raise TimeoutError(f"node {name} not {state} after {timeout} s")


def test_the_workers_joined_the_hubs_swarm_with_their_inventory_names_and_the_hubs_very_image(client, settings, hub):
    nodes = {n.attrs["Spec"]["Labels"].get("quickjh.node"): n.attrs for n in client.nodes.list()}
    assert set(nodes) == {"instance", "swarm-b", "swarm-c"}, nodes.keys()
    assert all(n["Status"]["State"] == "ready" for n in nodes.values())
    assert nodes["instance"]["Spec"]["Role"] == "manager" and nodes["swarm-b"]["Spec"]["Role"] == "worker"
    tag, image = hub().attrs["Config"]["Image"], hub().image  # the tag the hub runs (one ID may carry several)
    for worker in ("swarm-b", "swarm-c"):
        assert on_worker(worker, "docker", "image", "inspect", "-f", "{{.Id}}", tag) == image.id
        assert "quickjh" not in on_worker(worker, "ls", "/tmp", "/var/tmp")  # the archive that brought it is gone


@pytest.mark.parametrize("name", ["admin", "user1", "user2"])  # in this order: user2 goes where fewest homes are
def test_users_run_code_as_themselves_on_the_node_of_their_home(login, client, service, hub, name):
    user = login(name)
    printed = user.whoami()
    assert printed[0] == name and printed[1] >= 1000 and printed[2] == f"/home/{name}/notebook"
    assert node_of(client, service(name)) == HOMES[name]
    assert f'"{name}": "{HOMES[name]}"' in hub().exec_run("cat /srv/jupyterhub/swarm-homes.json").output.decode()


def test_a_users_service_holds_docker_modes_limits_and_gives_up_every_privilege_inside(login, service):
    spec = service("user1").attrs["Spec"]
    limits = spec["TaskTemplate"]["Resources"]["Limits"]
    assert limits == {"MemoryBytes": 600 * 1024**2, "NanoCPUs": 500_000_000, "Pids": 256}, limits
    assert spec["TaskTemplate"]["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    assert spec["EndpointSpec"]["Mode"] == "dnsrr" and not spec["EndpointSpec"].get("Ports")  # nothing published
    mounts = spec["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert [(m["Type"], m["Source"], m["Target"]) for m in mounts] == [
        ("volume", "quickjh-test-swarm_home_user1", "/home/user1")
    ]
    # Swarm drops no-new-privileges from services: the launcher's own holds, seen from inside
    printed = login("user1").terminal(
        "grep -h -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; ls /home; ls /var/run/docker.sock; "
        "python3 -c 'import os; print(oct(os.stat(os.path.expanduser(\"~\")).st_mode & 0o777))'"
    )
    assert "CapEff:\t0000000000000000" in printed and "CapBnd:\t0000000000000000" in printed, printed
    assert "NoNewPrivs:\t1" in printed and "No such file" in printed and "0o700" in printed, printed


def test_pip_into_the_home_and_a_users_own_venv_work_on_a_worker(login):
    user1 = login("user1")
    with user1.kernel(timeout=300) as execute:
        printed = execute("%pip install -q text-unidecode\nimport text_unidecode; print(text_unidecode.__file__)")
    assert "/home/user1/.local/lib/" in printed, printed
    own_venv_becomes_their_kernel(user1, login("user2"))


def test_a_profiles_image_runs_on_a_worker_the_very_image_built_on_the_hubs_host(login, client, service):
    user1 = login("user1", start=False)
    user1.stop_server()
    user1.start_server(options={"image": "Tools <b>(figlet)</b>"})
    assert node_of(client, service("user1")) == "swarm-b"
    # the tag this service runs (other scenarios' builds of the same profile may sit beside it under other tags)
    tag = service("user1").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
    assert tag.startswith("quickjh-test-profile-tools:"), tag
    assert on_worker("swarm-b", "docker", "image", "inspect", "-f", "{{.Id}}", tag) == client.images.get(tag).id
    assert user1.run("import pyfiglet, shutil; print(bool(shutil.which('figlet')), pyfiglet.__version__)").strip() == (
        "True 1.0.4"
    )
    user1.stop_server()
    user1.start_server(options={"image": "Default"})


def test_a_user_cannot_reach_another_users_server_or_files_on_another_node(login, settings):
    user1 = login("user1")
    user1.run("open('secret.txt', 'w').write('user1 only')")
    name = f"{settings['quickjh_container_name']}-user1"
    user2 = login("user2")
    seen = user2.run("import glob, os; print(os.listdir('/home'), glob.glob('/home/*/notebook/secret.txt'))")
    assert seen.strip() == "['user2'] []", seen
    printed = server_answers_without_login(user2, name, "user1")
    answers = [line.split() for line in printed.splitlines()]
    assert len(answers) == 3 and all(code in ("302", "403", "404") and leaked == "False" for _, code, leaked in answers)


def wait_for_hub(user) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            user.model()
            return
        except Exception:  # the hub is starting
            time.sleep(1)
    raise TimeoutError("the hub did not answer again within 90 s")


def test_servers_keep_running_while_the_hub_restarts_and_is_re_created(login, service, hub):
    user1 = login("user1")
    before = service("user1").id
    hub().restart()
    wait_for_hub(user1)
    assert service("user1").id == before
    assert user1.run("print(open('secret.txt').read())").strip() == "user1 only"
    hub().remove(force=True)
    converge()
    wait_for_hub(user1)
    assert service("user1").id == before
    assert login("user1").run("print(open('secret.txt').read())").strip() == "user1 only"


def test_a_node_that_is_down_is_named_to_its_users_at_once_and_they_find_their_files_when_it_is_back(
    login, client, service
):
    user2 = login("user2")
    user2.run("open('kept.txt', 'w').write('still here')")
    user2.stop_server()
    subprocess.run(["docker", "stop", "quickjh-test-swarm-c"], check=True, capture_output=True)
    try:
        print(f"swarm-c seen down after {wait_node(client, 'swarm-c', 'down'):.1f} s")
        started = time.monotonic()
        reply = user2.hub_api("POST", "/users/user2/server")
        took = time.monotonic() - started
        assert reply.status_code >= 400 and "Your home is on node swarm-c, which is down" in reply.text, reply.text
        assert took < 10, took
        assert login("user1").run("print(1 + 1)").strip() == "2"  # everyone else keeps working
    finally:
        subprocess.run(["docker", "start", "quickjh-test-swarm-c"], check=True, capture_output=True)
    print(f"swarm-c ready again after {wait_node(client, 'swarm-c', 'ready'):.1f} s")
    user2.start_server(timeout=120)
    assert node_of(client, service("user2")) == "swarm-c"
    assert user2.run("print(open('kept.txt').read())").strip() == "still here"


BACKED = "cd ~/notebook && stat -c '%n %u %a' backed.txt && readlink backed-link && cat backed.txt"


def test_a_backup_gathers_every_nodes_homes_and_a_restore_puts_each_back_on_its_node(
    login, client, service, settings, tmp_path
):
    before = {}
    for name in HOMES:  # one home on each node: the manager's and both workers'
        before[name] = shell(
            login(name),
            f"cd ~/notebook && echo '{name} backed up' > backed.txt && chmod 640 backed.txt && "
            f"ln -sfn backed.txt backed-link && {BACKED}",
        )
        assert before[name].rstrip().endswith(f"{name} backed up"), before[name]
    backups = tmp_path / "backups"
    started = time.monotonic()
    project_playbook("backup.yml", "-e", f"quickjh_backup_dir={backups}")
    print(f"backup.yml, three nodes' homes: {time.monotonic() - started:.1f} s")
    (archive,) = backups.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {f"home/{name}/notebook/backed.txt" for name in HOMES} <= names, sorted(names)[:20]
    # no copy left here (the hub's host and the controller), in folders of the role's own names
    assert not [
        line
        for line in subprocess.run(["ls", "/tmp", "/var/tmp"], capture_output=True, text=True).stdout.split()
        if line.startswith(("quickjh-copy-", "quickjh-pass-", f"{settings['quickjh_container_name']}-homes"))
    ]
    for worker in ("swarm-b", "swarm-c"):
        assert "quickjh" not in on_worker(worker, "ls", "/tmp", "/var/tmp")

    # As if the swarm were the site's own, which the role never leaves (the scenario's cleanup leaves the one it
    # made). It also keeps this machine's Docker 20.10 from making a swarm again after leaving one: its old gossip
    # lingers, and the new swarm's overlay carries nothing to the workers until dockerd restarts (docs/swarm.md).
    manager = client.nodes.get(client.info()["Swarm"]["NodeID"])
    spec = manager.attrs["Spec"]
    made = spec["Labels"].pop("quickjh.made-swarm")
    manager.update(spec)
    try:
        converge("-e", "quickjh_state=absent", "-e", "quickjh_purge_volumes=true")
        assert client.info()["Swarm"]["LocalNodeState"] == "active" and len(client.nodes.list()) == 3
        assert not client.services.list(filters={"label": "quickjh.hub"})
        assert not [v for v in client.volumes.list() if "_home_" in v.name]
        for worker in ("swarm-b", "swarm-c"):
            assert "_home_" not in on_worker(worker, "docker", "volume", "ls", "-q")
        started = time.monotonic()
        project_playbook("restore.yml", "-e", f"quickjh_restore_archive={archive}")
        print(f"restore.yml, each home back on its node: {time.monotonic() - started:.1f} s")
    finally:
        manager.reload()
        spec = manager.attrs["Spec"]
        manager.update(dict(spec, Labels=dict(spec["Labels"], **{"quickjh.made-swarm": made})))
    for name, node in HOMES.items():
        user = login(name)
        assert node_of(client, service(name)) == node
        assert shell(user, BACKED) == before[name]


def moved(users: list[dict]) -> list[dict]:
    """The scenario's users with user1's home on swarm-c instead of swarm-b."""
    return [dict(u, node="swarm-c") if u["name"] == "user1" else u for u in users]


def shell(user, command: str) -> str:
    """What a shell command prints, run from the user's kernel."""
    return user.run(
        f"import subprocess; r = subprocess.run({command!r}, shell=True, capture_output=True, text=True)\n"
        "print(r.stdout + r.stderr)"
    )


LOOK = (
    "cd ~/notebook/keep && stat -c '%n %u %g %a' a.txt deep deep/b.txt && getfacl -cp a.txt && readlink link && "
    "cat a.txt deep/b.txt"
)


def test_a_user_moved_to_another_node_finds_every_file_with_its_owner_mode_and_acl(login, base_users, client, service):
    user1 = login("user1")
    before = shell(
        user1,
        "mkdir -p ~/notebook/keep/deep && cd ~/notebook/keep && echo one > a.txt && chmod 640 a.txt && "
        "echo two > deep/b.txt && chmod 750 deep && setfacl -m u:4321:r a.txt && ln -s a.txt link && " + LOOK,
    )
    assert "user:4321:r--" in before and before.rstrip().endswith("one\ntwo"), before
    started = time.monotonic()
    converge_users(moved(base_users))
    print(f"user1's home moved from swarm-b to swarm-c, with its run: {time.monotonic() - started:.1f} s")
    assert "quickjh-test-swarm_home_user1" not in on_worker("swarm-b", "docker", "volume", "ls", "-q")
    user1 = login("user1")
    assert node_of(client, service("user1")) == "swarm-c"
    assert shell(user1, LOOK) == before


def without_user2(users: list[dict]) -> list[dict]:
    """The users as the tests before left them (user1 on swarm-c), user2 removed."""
    return [u for u in moved(users) if u["name"] != "user2"] + [{"name": "user2", "state": "absent"}]


def test_a_removed_user_loses_their_service_at_once(base_users, service):
    assert service("user2") is not None
    converge_users(without_user2(base_users))
    assert service("user2") is None


def task_containers(worker: str, user: str, settings) -> list[str]:
    """The containers of the user's service's tasks on that worker (SERVICE.SLOT.TASK), running or not."""
    names = on_worker(worker, "docker", "ps", "-a", "--format", "{{.Names}}").split()
    return [n for n in names if n.startswith(f"{settings['quickjh_container_name']}-{user}.")]


def test_an_idle_server_is_culled_and_its_service_goes_from_its_node(login, base_users, service, settings):
    """The hub then keeps a 20 s idle timeout until the next test's runs."""
    converge_users(
        without_user2(base_users), "-e", json.dumps({"quickjh_cull_idle_timeout": 20, "quickjh_cull_every": 5})
    )
    user1 = login("user1")
    user1.run("print('then idle')")
    idle = time.monotonic()
    assert task_containers("swarm-c", "user1", settings)  # where its home is, since the move
    while service("user1") is not None and time.monotonic() - idle < 120:
        time.sleep(2)
    assert service("user1") is None
    assert not user1.model().get("servers")
    print(f"user1's service culled {time.monotonic() - idle:.0f} s after their last code ran")
    gone = time.monotonic() + 30
    while task_containers("swarm-c", "user1", settings) and time.monotonic() < gone:
        time.sleep(1)
    assert not task_containers("swarm-c", "user1", settings)


def labels(client) -> list[str]:
    """The inventory names of the swarm's nodes, as the manager sees them."""
    return sorted(n.attrs["Spec"].get("Labels", {}).get("quickjh.node", "") for n in client.nodes.list())


def node_id(client, name: str) -> str:
    return next(n.id for n in client.nodes.list() if n.attrs["Spec"].get("Labels", {}).get("quickjh.node") == name)


def test_a_node_out_of_the_inventory_leaves_one_in_another_swarm_is_refused_and_one_put_back_serves_again(
    base_users, client, service, hub_url, verify
):
    """swarm-b holds no home since user1 moved: out (it leaves), in a swarm of its own (refused), back with a new
    user on it; then forgotten by the manager while the inventory could not tell it (as for a host deleted from the
    inventory) and put back: it leaves that membership and joins again, and the user's server runs there again."""
    users = without_user2(base_users)
    converge_users(users, "-e", json.dumps({"quickjh_swarm_workers": ["swarm-c"]}))
    assert labels(client) == ["instance", "swarm-c"]
    assert on_worker("swarm-b", "docker", "info", "--format", "{{.Swarm.LocalNodeState}}") == "inactive"
    on_worker("swarm-b", "docker", "swarm", "init")
    try:
        refused = converge_users(users, ok=False)
        said = refused.stdout + refused.stderr
        assert "swarm-b is in another swarm (managers " in said, said[-3000:]
    finally:
        on_worker("swarm-b", "docker", "swarm", "leave", "--force")
    users.append({"name": "user3", "password": "us3r3-swarm-pw", "node": "swarm-b"})
    started = time.monotonic()
    converge_users(users)
    print(f"swarm-b joined again with its run: {time.monotonic() - started:.1f} s")
    assert labels(client) == ["instance", "swarm-b", "swarm-c"]
    user3 = HubUser(hub_url, "user3", verify=verify)
    user3.login("us3r3-swarm-pw")
    user3.start_server(timeout=120)
    assert node_of(client, service("user3")) == "swarm-b"
    assert user3.run("import getpass; print(getpass.getuser())").strip() == "user3"
    user3.stop_server()
    forgotten = node_id(client, "swarm-b")
    client.nodes.get(forgotten).remove(force=True)  # what the role does to a node the inventory no longer reaches
    assert on_worker("swarm-b", "docker", "info", "--format", "{{.Swarm.NodeID}}") == forgotten  # still believes
    converge_users(users)
    assert labels(client) == ["instance", "swarm-b", "swarm-c"] and node_id(client, "swarm-b") != forgotten
    user3.start_server(timeout=120)
    assert node_of(client, service("user3")) == "swarm-b"
    assert user3.run("print(6 * 7)").strip() == "42"
