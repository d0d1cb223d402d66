"""The per-user start (quickjh-launch) and the spawners that run it: the account it becomes and what that keeps,
what it makes as the user, and the arguments each mode passes."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
from pathlib import Path
from types import SimpleNamespace

import pytest

from quickjh import launch
from quickjh.spawners import docker as docker_mode
from quickjh.spawners import local as local_mode

NOBODY = pwd.struct_passwd(("nobody", "x", 65534, 65534, "", "/nonexistent", "/usr/sbin/nologin"))


def in_child(action) -> str:
    """Run action in a forked child (it may drop privileges for good) and return what it returned, as text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            out = str(action())
        except BaseException as error:
            out = f"{type(error).__name__}: {error}"
        os.write(write, out.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        out = pipe.read()
    os.waitpid(pid, 0)
    return out


def status(*fields: str) -> dict[str, str]:
    text = Path("/proc/self/status").read_text()
    lines = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    return {field: lines[field].strip() for field in fields}


@pytest.mark.skipif(os.getuid() != 0, reason="becoming another user needs root")
def test_a_user_becomes_themselves_for_good_with_no_new_privileges_or_capabilities():
    def become_and_look():
        launch.become(NOBODY, no_new_privileges=True)
        try:
            os.setuid(0)
            back = "root again"
        except PermissionError:
            back = "stays"
        return (os.getresuid(), status("NoNewPrivs", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), back)

    uids, caps, back = eval(in_child(become_and_look))
    assert uids == (65534, 65534, 65534) and back == "stays"
    assert caps == {
        "NoNewPrivs": "1",
        "CapInh": "0000000000000000",
        "CapPrm": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "CapAmb": "0000000000000000",
    }


@pytest.mark.skipif(os.getuid() != 0, reason="becoming another user needs root")
def test_an_admin_keeps_setuid_programs_working_for_sudo_but_holds_no_capability():
    def become_and_look():
        launch.become(NOBODY, no_new_privileges=False)
        return status("NoNewPrivs", "CapInh", "CapEff", "CapBnd")

    caps = eval(in_child(become_and_look))
    assert caps["NoNewPrivs"] == "0" and caps["CapInh"] == caps["CapEff"] == "0000000000000000"
    assert caps["CapBnd"] != "0000000000000000"  # sudo, a setuid program, may still become root


def test_the_users_start_makes_notebook_site_packages_and_links_but_never_a_link_inside_a_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home, shared = tmp_path / "home", tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    home.mkdir()
    launch.as_user(home, [("data", str(shared / "data"))])
    assert (home / "notebook").is_dir() and (home / "notebook" / "data").readlink() == shared / "data"
    assert list(home.glob(".local/lib/python3.*/site-packages"))
    launch.as_user(home, [("data", str(shared / "data"))])  # the second start: the link is there already
    assert list((shared / "data").iterdir()) == []  # no data/data loop inside the shared folder
    assert os.getcwd() == str(home)


def test_a_users_own_file_or_link_in_the_way_is_left_as_it_is(tmp_path):
    home = tmp_path / "home"
    (home / "notebook").mkdir(parents=True)
    (home / "notebook" / "data").write_text("mine")
    launch.as_user(home, [("data", "/srv/shared/data")])
    assert (home / "notebook" / "data").read_text() == "mine"


def test_arguments_of_each_mode():
    args = launch.parse(
        [
            "--user",
            "ann",
            "--nice",
            "10",
            "--processes",
            "512",
            "--memory",
            "1000",
            "--no-new-privileges",
            "--link",
            "data=/srv/shared/data",
            "--",
            "jupyterhub-singleuser",
            "--debug",
        ]
    )
    assert (args.user, args.nice, args.processes, args.memory, args.no_new_privileges) == ("ann", 10, 512, 1000, True)
    assert args.link == [("data", "/srv/shared/data")] and args.command == ["jupyterhub-singleuser", "--debug"]
    args = launch.parse(["--account-from-env", "--links-from", "/srv/shared", "--", "jupyterhub-singleuser"])
    assert args.account_from_env and args.links_from == "/srv/shared"
    with pytest.raises(SystemExit):
        launch.parse(["--", "jupyterhub-singleuser"])  # whose server?


@pytest.mark.parametrize(
    "env",
    [
        {"QUICKJH_USER": "root;x", "QUICKJH_UID": "1000", "QUICKJH_GID": "1000"},
        {"QUICKJH_USER": "ann", "QUICKJH_UID": "-1", "QUICKJH_GID": "1000"},
        {"QUICKJH_USER": "ann", "QUICKJH_UID": "1000", "QUICKJH_GID": "1000", "QUICKJH_GROUPS": "x:y"},
    ],
)
def test_an_account_from_the_environment_that_is_not_a_hub_users_is_refused_before_anything(env):
    with pytest.raises(SystemExit, match="not a"):
        launch.account_from_env(env)


@pytest.fixture
def accounts(monkeypatch):
    """ann (admin, in analysts) and bob (in nothing) as pwd and grp would give them to the local spawner."""
    users = {
        "ann": pwd.struct_passwd(("ann", "x", 1000, 1000, "", "/home/ann", "/bin/bash")),
        "bob": pwd.struct_passwd(("bob", "x", 1001, 1001, "", "/home/bob", "/bin/bash")),
    }
    groups = [
        grp.struct_group(g)
        for g in (
            ("ann", "x", 1000, []),
            ("bob", "x", 1001, []),
            ("sudo", "x", 27, ["ann"]),
            ("analysts", "x", 1500, ["ann"]),
        )
    ]
    monkeypatch.setattr(local_mode.pwd, "getpwnam", users.__getitem__)
    monkeypatch.setattr(local_mode.grp, "getgrall", lambda: groups)
    monkeypatch.setattr(local_mode.grp, "getgrgid", {g.gr_gid: g for g in groups}.__getitem__)


def local_spawner(**config) -> local_mode.QuickjhLocalSpawner:
    spawner = local_mode.QuickjhLocalSpawner(user=SimpleNamespace(name="ann", url="/user/ann/"), **config)
    return spawner


def test_local_mode_runs_the_launcher_with_limits_links_of_the_users_groups_and_no_new_privileges_but_for_admins(
    accounts,
):
    spawner = local_spawner(
        max_processes=512, mem_limit=600 * 2**20, shared_folders={"data": "analysts", "secret": "finance"}
    )
    assert spawner.make_preexec_fn("ann") is None and spawner.popen_kwargs["cwd"] == "/"
    assert spawner.launch_command("ann") == [
        "/usr/local/sbin/quickjh-launch",
        "--user",
        "ann",
        "--nice",
        "10",
        "--processes",
        "512",
        "--memory",
        str(600 * 2**20),
        "--link",
        "data=/srv/shared/data",
        "--",
    ]
    assert spawner.launch_command("bob") == [
        "/usr/local/sbin/quickjh-launch",
        "--user",
        "bob",
        "--nice",
        "10",
        "--processes",
        "512",
        "--memory",
        str(600 * 2**20),
        "--no-new-privileges",
        "--",
    ]


def test_docker_mode_offers_profiles_with_their_names_escaped():
    spawner = docker_mode.QuickjhDockerSpawner(
        user=SimpleNamespace(name="ann", url="/user/ann/"),
        image="quickjh:1",
        allowed_images={"Default": "quickjh:1", '<b>R</b> & "more"': "quickjh-profile-r:1"},
    )
    form = spawner.options_form
    assert "<b>R</b>" not in form and "&lt;b&gt;R&lt;/b&gt; &amp; &quot;more&quot;" in form
    assert 'value="Default" selected' in form


def test_docker_mode_never_takes_over_a_container_that_is_not_this_hubs(monkeypatch):
    spawner = docker_mode.QuickjhDockerSpawner(user=SimpleNamespace(name="ann", url="/user/ann/"), hub_name="quickjh")

    async def found(self):
        return {"Id": "x", "Config": {"Labels": labels}}

    monkeypatch.setattr(docker_mode.DockerSpawner, "get_object", found)
    labels = {"quickjh.hub": "quickjh"}
    assert asyncio.run(spawner.get_object())["Id"] == "x"
    labels = {"com.example": "someone else's"}
    with pytest.raises(RuntimeError, match="not this hub's"):
        asyncio.run(spawner.get_object())


def test_what_a_users_server_prints_reaches_the_hubs_log_marked_as_theirs(tmp_path):
    server_r, server_w = os.pipe()
    log = tmp_path / "hub.log"
    out = os.open(log, os.O_WRONLY | os.O_CREAT)
    os.write(server_w, b"hello\n[I 2026-12-06 08:00:00.000 JupyterHub app:1] Hub is fine\r\x1b[2Kfake\nno newline")
    os.close(server_w)
    local_mode.relay_output(server_r, "bob", out)
    os.close(out)
    assert log.read_text().splitlines() == [
        "[user bob] hello",
        "[user bob] [I 2026-12-06 08:00:00.000 JupyterHub app:1] Hub is fine\\x0d\\x1b[2Kfake",
        "[user bob] no newline",
    ]


def test_a_new_empty_root_owned_home_becomes_the_users_and_any_other_is_left_alone(tmp_path):
    """Swarm mode: Docker makes a user's home volume empty and root's; the launcher hands only such a one over."""
    account = pwd.struct_passwd(("ann", "x", 4321, 4321, "", str(tmp_path / "ann"), "/bin/bash"))
    home = tmp_path / "ann"
    home.mkdir(mode=0o755)
    launch.own_new_home(account)
    assert (home.stat().st_uid, home.stat().st_mode & 0o777) == (4321, 0o700)
    os.chown(home, 0, 0)
    (home / "x").write_text("")  # not empty: not a new volume
    launch.own_new_home(account)
    assert home.stat().st_uid == 0
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    launch.own_new_home(pwd.struct_passwd(("ann", "x", 4321, 4321, "", str(link), "/bin/bash")))
    assert (tmp_path / "elsewhere").stat().st_uid == 0  # a link is never followed
