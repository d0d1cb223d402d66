"""quickjh_spawner: swarm. Each user's server is a Swarm service of its own, HUB-NAME, from the hub's very image (the
role brings it to every node), on the deployment's overlay network with a DNS round-robin endpoint (no virtual IP),
started by quickjh-launch as in docker mode. A user's home is a volume of its own, HUB_home_NAME, on the node the
user is placed on: a name given in the users list (`node:`), else the node with the fewest users; the choice is kept
in the hub's state (swarm-homes.json) and the user always runs there. With quickjh_homes_nfs the volume is the NFS
export's folder of the user instead, and a user runs on any node.

A node is one of the hub's when it carries the label quickjh.node (its inventory name, set by the role)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from docker.types import DriverConfig, Mount
from dockerspawner import SwarmSpawner
from tornado import web
from traitlets import Dict, Int

from quickjh import settings as deployment
from quickjh.spawners import docker as docker_mode
from quickjh.spawners.docker import QuickjhDockerSpawner

NODE_LABEL = "quickjh.node"


def configure(c, settings: dict) -> None:
    docker_mode.configure(c, settings)  # the image, network, launcher, limits and hub address of docker mode
    swarm, limits = settings["swarm"], settings["limits"]
    c.JupyterHub.spawner_class = "quickjh.spawners.swarm.QuickjhSwarmSpawner"
    c.QuickjhSwarmSpawner.hub_name = settings["hub"]
    c.QuickjhSwarmSpawner.home_volume = settings["docker"]["home_volume"]
    c.QuickjhSwarmSpawner.nodes_given = swarm["nodes"]
    c.QuickjhSwarmSpawner.homes_nfs = swarm["homes_nfs"]
    c.QuickjhSwarmSpawner.processes = limits["processes"] or 0
    c.QuickjhSwarmSpawner.extra_container_spec = {
        "command": docker_mode.ENTRYPOINT,
        "cap_drop": docker_mode.CAP_DROP,
        "cap_add": docker_mode.CAP_ADD,
    }
    c.QuickjhSwarmSpawner.extra_endpoint_spec = {"mode": "dnsrr"}  # service VIPs need IPVS, which not every host has
    log = settings["log"]
    c.QuickjhSwarmSpawner.extra_task_spec = {
        "log_driver": {
            "Name": "json-file",
            "Options": {"max-size": log["max_size"], "max-file": str(log["max_files"])},
        },
        "restart_policy": {"Condition": "none"},  # a server that ended stays ended: the hub starts it again
    }


def choose_node(user: str, given: dict[str, str], placed: dict[str, str], nodes: list[str]) -> str:
    """The node of the user's home: where it already is, else the users list's `node:`, else the node that holds the
    fewest homes (the first by name on a tie). Raises ValueError, with what to do, when that cannot be."""
    if user in placed:
        node = placed[user]
        if user in given and given[user] != node:
            raise ValueError(
                f"{user}'s home is on node {node}, while the users list says node {given[user]}: the next playbook "
                "run moves it there."
            )
        return node
    if user in given:
        if given[user] not in nodes:
            raise ValueError(f"{user}'s node in the users list, {given[user]}, is not a node of this hub's swarm.")
        return given[user]
    if not nodes:
        raise ValueError("No node of the swarm carries the label quickjh.node: run the playbook again.")
    homes = Counter(placed.values())
    return min(sorted(nodes), key=lambda node: homes[node])


def home_mount(hub: str, user: str, nfs: dict) -> Mount:
    """The user's home: a volume of its own, on its node; or, with nfs (server, export), the export's folder of the
    user, mounted by the local driver wherever the user runs (Docker's documented NFS volume)."""
    driver = None
    if nfs:
        driver = DriverConfig(
            "local",
            {"type": "nfs", "o": f"addr={nfs['server']},rw,nfsvers=4", "device": f":{nfs['export']}/{user}"},
        )
    return Mount(
        target=f"/home/{user}",
        source=f"{hub}_home_{user}",
        type="volume",
        driver_config=driver,
        labels={"quickjh.hub": hub, "quickjh.user": user},
    )


class QuickjhSwarmSpawner(QuickjhDockerSpawner, SwarmSpawner):
    """Docker mode's user container, as a service placed on the node of the user's home."""

    nodes_given = Dict(help="The users list's node: entries, by user.").tag(config=True)
    homes_nfs = Dict(help="quickjh_homes_nfs (server, export), or empty: homes live on their nodes.").tag(config=True)
    processes = Int(0, help="The processes of a user's service, threads included (0: no limit).").tag(config=True)

    def _placements_path(self) -> Path:
        return deployment.state_dir() / "swarm-homes.json"

    def _read_placements(self) -> dict[str, str]:
        try:
            return json.loads(self._placements_path().read_text())
        except FileNotFoundError:
            return {}

    def _keep_placement(self, user: str, node: str, placed: dict[str, str]) -> None:
        path = self._placements_path()
        new = path.with_suffix(".new")
        new.write_text(json.dumps(placed | {user: node}, indent=1, sort_keys=True))
        os.replace(new, path)

    async def _node_for(self, user: str) -> str:
        """The node the user runs on, checked: a node that is down, drained or gone is named, at once."""
        if self.homes_nfs:  # any node will do: the home comes with the user
            return ""
        nodes = {n["Spec"].get("Labels", {}).get(NODE_LABEL): n for n in await self.docker("nodes")}
        nodes.pop(None, None)
        placed = self._read_placements()
        try:
            node = choose_node(user, self.nodes_given, placed, list(nodes))
        except ValueError as e:
            raise web.HTTPError(503, str(e)) from None
        found = nodes.get(node)
        if found is None:
            raise web.HTTPError(503, f"Your home is on node {node}, which is no longer in the swarm: ask an admin.")
        state, availability = found["Status"]["State"], found["Spec"].get("Availability", "active")
        if state != "ready" or availability != "active":
            raise web.HTTPError(
                503,
                f"Your home is on node {node}, which is {state if state != 'ready' else availability}: "
                "your server can start once it is back; everyone else's servers keep running.",
            )
        if placed.get(user) != node:
            self._keep_placement(user, node, placed)
            self.log.info("%s's home is on node %s", user, node)
        return node

    async def start(self):
        name = self.user.name
        node = await self._node_for(name)
        self.extra_placement_spec = {"constraints": [f"node.labels.{NODE_LABEL}=={node}"] if node else []}
        labels = {"quickjh.hub": self.hub_name, "quickjh.user": name}
        self.extra_create_kwargs = {"labels": labels}
        self.extra_container_spec = {**self.extra_container_spec, "labels": labels}  # the task's container too
        return await super().start()

    @property
    def mounts(self):
        """The home only: a shared folder needs network storage, which swarm mode does not have yet."""
        return [home_mount(self.hub_name, self.user.name, self.homes_nfs)]

    async def get_ip_and_port(self):
        """The running task's own address on the network, not the service's name: a node that went down leaves its
        dead task's name behind in the swarm's DNS for a while, and the hub would ask that address."""
        task = await self.get_task()
        for attachment in (task or {}).get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] == self.network_name and attachment.get("Addresses"):
                return attachment["Addresses"][0].split("/")[0], self.port
        return await super().get_ip_and_port()

    async def docker(self, method, *args, **kwargs):
        """The process limit, which Docker's services have (API 1.41) and the SDK's Resources cannot say."""
        if method == "create_service" and self.processes:
            kwargs["task_template"].setdefault("Resources", {}).setdefault("Limits", {})["Pids"] = self.processes
        return await super().docker(method, *args, **kwargs)
