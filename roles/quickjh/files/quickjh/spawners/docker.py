"""quickjh_spawner: docker. Each user's server in a container of the user's own, HUB-NAME, from the hub's very image
(hub and servers always match), on the deployment's network. quickjh-launch inside takes the user's account from
the environment and gives up every privilege before the server starts. The user's folder of the home volume is
the home, and nothing else of it is there; the shared folders of the user's groups are mounted too."""

from __future__ import annotations

import functools
import grp
import html
import os
import pwd

import docker
from dockerspawner import DockerSpawner
from traitlets import Dict, Unicode, default

LAUNCHER = "/usr/local/sbin/quickjh-launch"
# How a user's container starts (docker and swarm): quickjh-launch takes the account from the environment and gives
# up every privilege (no new privileges: Swarm drops the container option, so the launcher's own is what holds).
ENTRYPOINT = [
    "/usr/bin/tini",
    "--",
    LAUNCHER,
    "--account-from-env",
    "--no-new-privileges",
    "--links-from",
    "/srv/shared",
    "--",
]
# Root in the container only to take the account (quickjh-launch); then nothing.
CAP_DROP, CAP_ADD = ["ALL"], ["CHOWN", "SETUID", "SETGID", "SETPCAP"]


def configure(c, settings: dict) -> None:
    hub, docker_settings, limits = settings["hub"], settings["docker"], settings["limits"]
    c.JupyterHub.spawner_class = "quickjh.spawners.docker.QuickjhDockerSpawner"
    c.QuickjhDockerSpawner.hub_name = hub
    c.QuickjhDockerSpawner.home_volume = docker_settings["home_volume"]
    c.QuickjhDockerSpawner.shared_folders = settings["shared_folders"]
    c.DockerSpawner.image = os.environ.get("QUICKJH_IMAGE", "")  # the role passes the hub image's tag
    c.DockerSpawner.pull_policy = "never"  # images are built or loaded on this host: nothing is pulled
    c.DockerSpawner.name_template = f"{hub}-{{raw_username}}"
    c.DockerSpawner.network_name = docker_settings["network"]
    c.DockerSpawner.use_internal_ip = True
    c.DockerSpawner.remove = True  # a stopped server's container goes; the home stays on the volume
    c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
    c.DockerSpawner.extra_create_kwargs = {
        "entrypoint": ENTRYPOINT,
        "labels": {"quickjh.hub": hub, "quickjh.user": "{raw_username}"},
    }
    # Root in the container only to take the account (quickjh-launch); then nothing: no capabilities, no new
    # privileges. The processes of a user's container, threads included: a fork bomb stops there.
    host_config = {
        "cap_drop": CAP_DROP,
        "cap_add": CAP_ADD,
        "security_opt": ["no-new-privileges"],
        "log_config": {
            "type": "json-file",
            "config": {"max-size": settings["log"]["max_size"], "max-file": str(settings["log"]["max_files"])},
        },
    }
    if limits["processes"]:
        host_config["pids_limit"] = limits["processes"]
    if limits["memory"]:
        host_config["memswap_limit"] = limits["memory"]  # no swap beyond the memory limit
    c.DockerSpawner.extra_host_config = host_config
    if limits["cpus"]:
        c.DockerSpawner.cpu_limit = float(limits["cpus"])
    if docker_settings["profiles"]:  # the user picks an environment at each start, the hub's image first
        c.DockerSpawner.allowed_images = {"Default": c.DockerSpawner.image, **docker_settings["profiles"]}
    # Users' containers keep running while the hub restarts or is re-created; the new hub finds them.
    c.JupyterHub.cleanup_servers = False
    # The hub's API listens on the deployment's network, where users' servers reach it by the hub's name.
    c.JupyterHub.hub_ip = "0.0.0.0"  # noqa: S104 (the container's interfaces: the deployment's network)
    c.JupyterHub.hub_connect_ip = hub
    c.QuickjhAuthenticator.add_user_hint = f"on the hub's host: docker exec -it {hub} quickjh-adduser {{name}}"
    c.JupyterHub.template_vars = {
        "quickjh_add_user_where": "on the hub's host",
        "quickjh_add_user": f"docker exec -it {hub} quickjh-adduser NAME",
    }


class QuickjhDockerSpawner(DockerSpawner):
    """The user's server in a container of the user's own, with the account the hub's container has for them."""

    hub_name = Unicode(help="The hub container's name: users' containers carry it as their quickjh.hub label.").tag(
        config=True
    )
    home_volume = Unicode(help="The volume of the users' homes.").tag(config=True)
    shared_folders = Dict(
        help="Shared folders (a volume HUB_shared_NAME each) by the group whose members see them."
    ).tag(config=True)

    @default("options_form")
    def _options_form_default(self):
        """DockerSpawner's choice of images, with each profile's name escaped (it is the inventory's text)."""
        images = self._get_allowed_images()
        if images == "*" or len(images) <= 1:
            return ""
        options = "".join(
            f'<option value="{html.escape(name)}"{" selected" if image == self.image else ""}>{html.escape(name)}'
            "</option>"
            for name, image in images.items()
        )
        return (
            '<label for="image">Select an image:</label>'
            f'<select class="form-control" name="image" required>{options}</select>'
        )

    @functools.cached_property
    def homes(self) -> str:
        """The home volume's folder on the Docker host: homes are bound from there (Docker Engine 20.10 mounts
        no part of a named volume by itself)."""
        return docker.from_env().volumes.get(self.home_volume).attrs["Mountpoint"]

    async def get_object(self):
        """The user's container, if it is this hub's: one of another's under the same name is never taken over
        or removed."""
        found = await super().get_object()
        if found is None:
            return None
        labels = (found.get("Spec") or found.get("Config") or {}).get("Labels") or {}  # a service's or a container's
        if labels.get("quickjh.hub") != self.hub_name:
            raise RuntimeError(
                f"A {self.object_type} named {self.object_name} exists that is not this hub's (no label "
                f"quickjh.hub={self.hub_name}): rename or remove it on the Docker host."
            )
        return found

    async def start(self):
        """The user's account and groups, read once per start: the mounts here, the environment in get_env."""
        name = self.user.name
        account = pwd.getpwnam(name)
        groups = [g for g in grp.getgrall() if name in g.gr_mem or g.gr_gid == account.pw_gid]
        self.quickjh_account = account, groups
        names = {g.gr_name for g in groups}
        self.volumes = {f"{self.homes}/{name}": {"bind": f"/home/{name}", "mode": "rw"}} | {
            f"{self.hub_name}_shared_{folder}": {"bind": f"/srv/shared/{folder}", "mode": "rw"}
            for folder, group in self.shared_folders.items()
            if group in names
        }
        return await super().start()

    def get_env(self):
        env = super().get_env()
        account, groups = self.quickjh_account
        env.update(
            QUICKJH_USER=account.pw_name,
            QUICKJH_UID=str(account.pw_uid),
            QUICKJH_GID=str(account.pw_gid),
            QUICKJH_GROUPS=" ".join(f"{g.gr_name}:{g.gr_gid}" for g in groups),
        )
        return env
