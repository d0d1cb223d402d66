"""quickjh_spawner docker: each user's server in a container of its own. What users see (login, code in
~/notebook, a terminal, pip into the home, their own kernels, a profile), the limits that hold per user, and what
admins, idle culling and removal do there. Runs first on the scenario's deployment; test_lifecycle.py follows."""

from __future__ import annotations

import re
import subprocess
import time

import docker
import pytest

from hubclient import KernelDied
from hubfixtures import can_login, converge_users, own_venv_becomes_their_kernel


@pytest.fixture(scope="module")
def user_container(settings):
    """user_container(name) -> the Docker container of that user's server, or None."""
    client = docker.from_env()

    def get(name: str):
        found = client.containers.list(all=True, filters={"name": f"^{settings['quickjh_container_name']}-{name}$"})
        return found[0] if found else None

    return get


@pytest.mark.parametrize("name", ["admin", "user1"])
def test_each_user_runs_code_as_themselves_in_a_container_of_their_own(login, user_container, settings, name):
    user = login(name)
    printed = user.whoami()
    assert printed[0] == name and printed[1] >= 1000 and printed[2] == f"/home/{name}/notebook"
    container = user_container(name)
    assert container.status == "running"
    assert container.image.id == docker.from_env().containers.get(settings["quickjh_container_name"]).image.id
    assert container.attrs["HostConfig"]["NetworkMode"] == f"{settings['quickjh_container_name']}-users"
    # the user's own folder of the home volume, as the home, and nothing else of it
    homes = [m for m in container.attrs["Mounts"] if m["Destination"].startswith("/home")]
    assert [m["Destination"] for m in homes] == [f"/home/{name}"]
    assert user.run("import os; print(sorted(os.listdir('/home')))").strip() == f"['{name}']"


def test_limits_hold_per_container_and_docker_inspect_shows_them(login, user_container):
    login("user1")
    config = user_container("user1").attrs["HostConfig"]
    assert config["Memory"] == config["MemorySwap"] == 600 * 1024**2  # no swap past it either
    assert config["CpuQuota"] == 50_000 and config["CpuPeriod"] == 100_000  # quickjh_user_cpus 0.5
    assert config["PidsLimit"] == 256
    assert config["CapDrop"] == ["ALL"] and "no-new-privileges" in config["SecurityOpt"]


def test_past_the_memory_limit_only_that_users_kernel_dies_and_restarts(login, user_container):
    user1, user2 = login("user1"), login("user2")
    before = user_container("user1").id
    with user1.kernel(timeout=60) as execute:
        execute("x = 1")
        # JupyterLab: "The kernel appears to have died...". The server's "restarting" can be lost in a race of its
        # own (seen once in CI: the kernel restarted, no message came): then the cell times out, and the next cell
        # shows whether the kernel was new all the same.
        with pytest.raises((KernelDied, TimeoutError), match=r"restarting|did not finish"):
            execute("big = b'x' * (1024 ** 3); print('allocated')")  # 1 GiB in a 600 MiB container
        assert execute("print('x' in globals())").strip() == "False"  # a new kernel: the old one's state is gone
    assert user_container("user1").id == before  # the server and its container carry on
    assert user2.run("print(6 * 7)").strip() == "42"  # and so does everyone else


def test_a_terminal_runs_as_the_user_with_only_their_home(login):
    printed = login("user1").terminal("id -un; ls /home; ls /var/run/docker.sock")
    lines = [re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\][^\x07]*\x07", "", line).strip() for line in printed.splitlines()]
    assert lines.count("user1") == 2, printed  # `id -un`, and `ls /home`: their home alone
    assert "No such file" in printed and printed.endswith("[exit 2]"), printed


def test_pip_install_goes_into_the_home_and_imports_in_the_running_kernel(login):
    user1 = login("user1")
    with user1.kernel(timeout=300) as execute:
        printed = execute("%pip install -q text-unidecode\nimport text_unidecode; print(text_unidecode.__file__)")
    assert "/home/user1/.local/lib/" in printed, printed


def test_a_users_own_venv_becomes_their_kernel(login):
    own_venv_becomes_their_kernel(login("user1"), login("admin"))


def test_admins_have_no_sudo_in_their_container_but_stay_hub_admins(login, passwords):
    admin = login("admin")
    assert admin.model()["admin"] is True
    assert admin.can_sudo(passwords["admin"]) is False
    printed = admin.terminal(f"echo {passwords['admin']} | sudo -S -p '' id -u")
    assert "no new privileges" in printed, printed


def test_shared_folders_reach_members_only(login, user_container):
    admin, user1, user2 = login("admin"), login("user1"), login("user2")
    admin.run("open('data/from-admin.txt', 'w').write('shared')")
    assert user1.run("print(open('data/from-admin.txt').read())").strip() == "shared"
    assert (
        user2.run("import os; print(os.path.exists('data'), os.path.exists('/srv/shared/data'))").strip()
        == "False False"
    )
    assert not [m for m in user_container("user2").attrs["Mounts"] if m["Destination"].startswith("/srv")]


def test_a_profile_is_offered_and_its_image_runs(login):
    user2 = login("user2", start=False)
    user2.stop_server()
    form = user2.http.get(f"{user2.base}/hub/spawn", timeout=30).text
    assert "Tools &lt;b&gt;(figlet)&lt;/b&gt;" in form and "<b>(figlet)" not in form and "Default" in form
    user2.start_server(options={"image": "Tools <b>(figlet)</b>"})
    assert (
        user2.run("import pyfiglet, shutil; print(bool(shutil.which('figlet')), pyfiglet.__version__)").strip()
        == "True 1.0.4"
    )
    user2.stop_server()
    user2.start_server(options={"image": "Default"})
    assert user2.run("import shutil; print(shutil.which('figlet'))").strip() == "None"  # the hub's image


def test_an_idle_server_is_culled_and_its_container_goes(login, user_container, settings):
    admin = login("admin")
    admin.run("print('then idle')")
    deadline = time.monotonic() + settings["quickjh_cull_idle_timeout"] * 3
    while user_container("admin") is not None and time.monotonic() < deadline:
        time.sleep(5)
    assert user_container("admin") is None
    assert not admin.model().get("servers")


def test_a_removed_user_loses_their_container_and_keeps_their_files(settings, hub, login, user_container):
    login("user2").run("open('keep.txt', 'w').write('mine')")
    users = [dict(u, state="absent") if u["name"] == "user2" else u for u in settings["quickjh_users"]]
    converge_users(users)
    assert user_container("user2") is None
    found = docker.from_env().containers.run(
        hub().image.id,
        ["find", "/home", "-name", "keep.txt"],
        entrypoint="",
        remove=True,
        volumes={settings["quickjh_home_volume"]: {"bind": "/home", "mode": "ro"}},
    )
    assert b"keep.txt" in found
    converge_users(settings["quickjh_users"])  # back, with the files


def docker_exec(settings, *command: str, stdin: str = "") -> subprocess.CompletedProcess:
    """What the README tells an admin to run on the hub's host in docker mode: docker exec into the hub."""
    return subprocess.run(
        ["docker", "exec", "-i", settings["quickjh_container_name"], *command],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_an_admin_adds_a_user_changes_a_password_and_ends_a_user_from_the_host_with_docker_exec(
    settings, user, user_container
):
    added = docker_exec(settings, "quickjh-adduser", "hostmade", stdin="Host-made-pw-1\nHost-made-pw-1\n")
    assert added.returncode == 0, added.stdout + added.stderr
    hostmade = user("hostmade")
    hostmade.login("Host-made-pw-1")
    hostmade.start_server()
    assert hostmade.whoami()[0::2] == ("hostmade", "/home/hostmade/notebook")
    changed = docker_exec(settings, "passwd", "hostmade", stdin="Host-made-pw-2\nHost-made-pw-2\n")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert not can_login(user, "hostmade", "Host-made-pw-1") and can_login(user, "hostmade", "Host-made-pw-2")
    assert user_container("hostmade").status == "running"
    ended = docker_exec(settings, "quickjh-users", "end", "hostmade")
    assert ended.returncode == 0 and "everything they ran has ended" in ended.stdout, ended.stdout + ended.stderr
    assert user_container("hostmade") is None  # the container is gone at once, with every process in it
    removed = docker_exec(settings, "bash", "-c", "userdel -r hostmade && quickjh-users save")
    assert removed.returncode == 0, removed.stderr


def test_a_user_changes_their_own_password_on_the_hubs_page(user, passwords):
    user2 = user("user2")
    user2.login(passwords["user2"])
    printed = user2.change_password("not-the-password", "us3r2-Own-pw-9")
    assert printed.status_code == 400 and "the current password is not right" in printed.text
    printed = user2.change_password(passwords["user2"], "short")
    assert printed.status_code == 400 and "shorter than 8 characters" in printed.text
    printed = user2.change_password(passwords["user2"], "us3r2-Own-pw-9")
    assert printed.status_code == 200 and "Your password is changed." in printed.text
    assert can_login(user, "user2", "us3r2-Own-pw-9") and not can_login(user, "user2", passwords["user2"])
    changed = user("user2")
    changed.login("us3r2-Own-pw-9")
    assert changed.change_password("us3r2-Own-pw-9", passwords["user2"]).status_code == 200  # back


def test_losing_a_group_stops_the_users_container_and_the_next_has_no_such_folder(settings, login, user_container):
    user1 = login("user1")
    user1.stop_server()
    user1.start_server()  # a second start of a member: the link is there already, and no link is made inside it
    printed = user1.run("import os; print(os.path.islink('data'), os.path.lexists('/srv/shared/data/data'))")
    assert printed.strip() == "True False", printed
    out = [dict(u, groups=[]) if u["name"] == "user1" else u for u in settings["quickjh_users"]]
    said = " ".join(converge_users(out).stdout.split())
    assert "user1: groups" in said
    assert user_container("user1") is None  # stopped at once, mounts and groups with it
    again = login("user1")
    printed = again.run("import os; print(os.path.exists('/srv/shared/data'), os.path.exists('data'))")
    assert printed.strip().startswith("False"), printed
    converge_users(settings["quickjh_users"])


def test_a_container_of_the_users_name_that_is_not_this_hubs_is_never_taken_over(settings, login, user_container):
    client = docker.from_env()
    name = f"{settings['quickjh_container_name']}-user2"
    login("user2", start=False).stop_server()
    base = client.containers.get(settings["quickjh_container_name"]).image.id
    foreign = client.containers.run(base, ["sleep", "600"], name=name, entrypoint="", detach=True)
    try:
        user2 = login("user2", start=False)
        reply = user2.hub_api("POST", "/users/user2/server", json={})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and user2.model().get("servers"):
            time.sleep(1)
        foreign.reload()
        assert foreign.status == "running" and "quickjh.hub" not in foreign.labels, reply.text
        assert not user2.model().get("servers")
    finally:
        foreign.remove(force=True)
    assert login("user2").whoami()[0] == "user2"
