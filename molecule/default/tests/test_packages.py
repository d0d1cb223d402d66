"""Python packages and kernels as users see them: shared and private installs, distro tools, users' own kernels.

Runs after test_default.py on the same deployment (the scenario sets quickjh_pip_packages and quickjh_apt_packages).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hubfixtures import converge, own_venv_becomes_their_kernel, wait_healthy

IMPORT = (
    "import importlib, sys\n"
    "try:\n    m = importlib.import_module({name!r}); print('found', m.__file__)\n"
    "except ImportError:\n    print('missing')\n"
)


def where(user, module: str) -> str:
    """'missing', or the file the user's kernel imports the module from."""
    printed = user.run(IMPORT.format(name=module)).split()
    return printed[1] if printed[0] == "found" else "missing"


def test_inventory_packages_are_there_for_everyone(login):
    for name in ("admin", "user1"):
        user = login(name)
        assert where(user, "cowsay").startswith("/opt/jupyterhub/lib/")
        assert user.run("import cowsay; print(cowsay.__version__)").strip() == "6.1"
        assert "[exit 0]" in user.terminal("jq --version")


def test_pip_magic_installs_into_the_users_home_only(login):
    user1, admin = login("user1"), login("admin")
    printed = user1.run("%pip install -q tabulate")
    assert "error" not in printed.lower(), printed
    assert where(user1, "tabulate").startswith("/home/user1/.local/lib/")  # a new kernel, as after a restart
    assert where(admin, "tabulate") == "missing"


def test_pip_in_a_terminal_falls_back_to_the_users_home(login):
    user1, admin = login("user1"), login("admin")
    printed = user1.terminal("pip install -q text-unidecode")
    assert printed.endswith("[exit 0]"), printed
    assert where(user1, "text_unidecode").startswith("/home/user1/.local/lib/")
    assert where(admin, "text_unidecode") == "missing"


def test_sudo_pip_installs_for_everyone_and_users_cannot_write_the_shared_venv(login, passwords):
    admin, user1 = login("admin"), login("user1")
    printed = admin.terminal(f"echo {passwords['admin']} | sudo -S -p '' pip install -q toolz")
    assert printed.endswith("[exit 0]"), printed
    assert where(user1, "toolz").startswith("/opt/jupyterhub/lib/")
    printed = user1.terminal("touch /opt/jupyterhub/lib/python3*/site-packages/mine")
    assert printed.endswith("[exit 1]"), printed


def test_a_users_own_venv_becomes_their_kernel(login):
    own_venv_becomes_their_kernel(login("user1"), login("admin"))


def test_packages_and_kernels_survive_recreation_and_a_package_change(hub, hub_url, login):
    before = hub()
    converge("-e", '{"quickjh_pip_packages": ["cowsay==6.0"]}')  # a pin changed: rebuild, re-create once
    after = hub()
    assert after.image.id != before.image.id and after.id != before.id
    wait_healthy(hub_url)
    user1 = login("user1")
    assert user1.run("import cowsay; print(cowsay.__version__)").strip() == "6.0"
    assert where(user1, "tabulate").startswith("/home/user1/.local/lib/")
    assert where(user1, "toolz") == "missing"  # sudo pip went into the old image: docs/operating.md says to declare it
    assert user1.run("import sys; print(sys.executable)", kernel="myenv").strip() == "/home/user1/myenv/bin/python"
    assert user1.whoami()[1] >= 1000
    converge()  # back to the scenario's settings: that image exists, so no rebuild
    assert hub().image.id == before.image.id


@pytest.fixture(autouse=True, scope="module")
def _hub_is_up(hub_url):
    wait_healthy(hub_url)


def test_the_images_python_packages_are_exactly_the_lock_files_and_the_inventorys(hub, settings):
    lock = Path(__file__).resolve().parents[3] / "roles/quickjh/files/locks"
    pinned = {
        line
        for line in (lock / f"jupyterhub-{settings.get('quickjh_jupyterhub_version', '6.1.1')}.txt")
        .read_text()
        .splitlines()
        if line and not line.startswith("#")
    }
    frozen = hub().exec_run(["/opt/jupyterhub/bin/pip", "freeze", "--local"]).output.decode().splitlines()
    extra = {name.split("==")[0].lower() for name in settings["quickjh_pip_packages"]}
    assert {line for line in frozen if line.split("==")[0].lower() not in extra} == pinned
    assert set(settings["quickjh_pip_packages"]) <= set(frozen)


def test_make_lock_resolves_the_images_packages_again_into_a_lock_the_role_can_use(tmp_path, settings):
    """`make lock` (scripts/lock.sh), as docs/operating.md tells an admin to take newer releases: it resolves the
    packages again from PyPI in a container of the base image and writes both lock files, here into tmp_path."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    default = yaml.safe_load((root / "roles/quickjh/defaults/main.yml").read_text())["quickjh_jupyterhub_version"]
    version = settings.get("quickjh_jupyterhub_version", default)
    made = subprocess.run(
        ["make", "-C", str(root), "lock", f"VERSIONS={version}"],
        env=dict(os.environ, LOCKS=str(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    sys.path.insert(0, str(root / "tests"))
    from test_locks import FLOORS, pins  # the rules every committed lock keeps

    new, new_extra = (tmp_path / f"jupyterhub-{version}{suffix}.txt" for suffix in ("", "-collaboration"))
    found, extra = pins(new), pins(new_extra)
    assert found["jupyterhub"] == version and "dockerspawner" in found and "jupyter-collaboration" in extra
    assert not found.keys() & extra.keys()
    for name, floor in FLOORS.items():
        assert tuple(int(part) for part in found[name].split(".")[: len(floor)]) >= floor, (name, found[name])
    committed = pins(root / f"roles/quickjh/files/locks/jupyterhub-{version}.txt")
    moved = sorted(
        f"{name} {committed.get(name)} -> {pin}" for name, pin in found.items() if committed.get(name) != pin
    )
    print(f"\nmake lock: {len(found)} + {len(extra)} pins, against the committed lock: {moved or 'the same'}")


def test_a_new_refresh_stamp_builds_the_image_again_with_the_distributions_updates(hub):
    said = " ".join(converge("--check", "-e", "quickjh_image_refresh=2026-12-06").stdout.split())
    assert "would be built from" in said  # another tag: the apt layer again, with `apt-get upgrade`
    assert "would be built from" not in " ".join(converge("--check").stdout.split())
