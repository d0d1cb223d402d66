"""Ending what a user runs, at once, when rights are taken away (removal, demotion, a group lost) or an admin asks
(`quickjh-users end NAME`): every process of the user's UID in the hub's container, from root, and in each mode
what else holds their rights (docker mode: their own container, with its mounts and groups). Nothing here waits on
a process the user can signal or stop."""

from __future__ import annotations

import contextlib
import urllib.error

from quickjh.hubapi import stop_server
from quickjh.nofollow import end_processes


def remove_containers(name: str, settings: dict) -> None:
    """The user's own containers, found by this deployment's label (never a container that is not the hub's)."""
    import docker  # only where docker mode runs: the image has it (DockerSpawner's own dependency)

    hub = settings["hub"]
    for container in docker.from_env().containers.list(all=True, filters={"label": f"quickjh.hub={hub}"}):
        labels = container.labels
        if labels.get("quickjh.user", container.name.removeprefix(f"{hub}-")) == name:
            container.remove(force=True)


def remove_services(name: str, settings: dict) -> None:
    """Swarm mode: the user's service (this deployment's label), wherever it runs; its container goes with it."""
    import docker

    hub = settings["hub"]
    for service in docker.from_env().services.list(filters={"label": f"quickjh.hub={hub}"}):
        if service.attrs["Spec"].get("Labels", {}).get("quickjh.user") == name:
            service.remove()


# By quickjh_spawner: what holds a user's rights besides their processes in the hub's container, and whether an
# admin was root in the hub's container (local: sudo there; docker: their terminal is their own container).
SERVERS = {"local": None, "docker": remove_containers, "swarm": remove_services}
ADMINS_ROOT_IN_HUB = {"local": True, "docker": False, "swarm": False}


def admins_were_root(settings: dict) -> bool:
    return ADMINS_ROOT_IN_HUB[settings["spawner"]]


def end_user(name: str, uid: int, settings: dict) -> None:
    """Everything the user runs ends now; then the hub is told that their server stopped (within the caller's
    quickjh.hubapi.access(), when the hub answers: it would find out by itself within its poll interval)."""
    servers = SERVERS[settings["spawner"]]
    if servers:
        servers(name, settings)
    end_processes(uid)
    with contextlib.suppress(OSError, urllib.error.URLError):
        stop_server(name)
