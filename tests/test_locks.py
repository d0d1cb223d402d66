"""The hub image's Python packages are pinned, one lock file per JupyterHub version (scripts/lock.sh: make lock):
every package at one version, past the advisories known when the lock was made, and the lock the role's default
version needs is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]  # not conftest's: the default scenario's test of make lock imports this

LOCKS = sorted(p for p in (ROOT / "roles/quickjh/files/locks").glob("jupyterhub-*.txt") if p.stem[-1].isdigit())
COLLABORATION = sorted((ROOT / "roles/quickjh/files/locks").glob("jupyterhub-*-collaboration.txt"))
# Versions fixing published advisories: jupyter-server 2.20, JupyterLab 4.6.2.
FLOORS = {"jupyter-server": (2, 20), "jupyterlab": (4, 6, 2)}


def pins(lock) -> dict[str, str]:
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", line) for line in lines), lines
    return {name.lower().replace("_", "-"): version for name, version in (line.split("==") for line in lines)}


def test_the_roles_default_version_has_a_lock():
    version = yaml.safe_load((ROOT / "roles/quickjh/defaults/main.yml").read_text())["quickjh_jupyterhub_version"]
    assert ROOT / f"roles/quickjh/files/locks/jupyterhub-{version}.txt" in LOCKS


@pytest.mark.parametrize("lock", LOCKS, ids=[lock.stem for lock in LOCKS])
def test_every_package_is_pinned_and_past_the_known_advisories(lock):
    found = pins(lock)
    assert found["jupyterhub"] == lock.stem.removeprefix("jupyterhub-")
    assert {"jupyterlab", "notebook", "jupyter-server", "dockerspawner", "jupyterhub-idle-culler"} <= found.keys()
    for name, floor in FLOORS.items():
        assert tuple(int(part) for part in found[name].split(".")[: len(floor)]) >= floor, (name, found[name])


@pytest.mark.parametrize("extra", COLLABORATION, ids=[lock.stem for lock in COLLABORATION])
def test_collaborations_pins_add_to_their_versions_lock_and_change_none_of_it(extra):
    found, base = pins(extra), pins(extra.with_name(extra.name.replace("-collaboration", "")))
    assert "jupyter-collaboration" in found and "jupyter-server-ydoc" in found
    assert not found.keys() & base.keys(), found.keys() & base.keys()
