"""quickjh_spawner: local. Each user's server is a process of the user's in the hub's container, started through
quickjh-launch: the hub's process executes the root-owned launcher directly (no preexec_fn), so between fork and
exec the child is root's and no user can stop it, and the hub's one event loop never waits on a process of a
user's."""

from __future__ import annotations

import asyncio
import grp
import pwd
import time

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Dict, Integer, default

LAUNCHER = "/usr/local/sbin/quickjh-launch"


def configure(c, settings: dict) -> None:
    c.JupyterHub.spawner_class = "quickjh.spawners.local.QuickjhLocalSpawner"
    c.QuickjhLocalSpawner.max_processes = settings["limits"]["processes"]
    c.QuickjhLocalSpawner.shared_folders = settings["shared_folders"]
    c.JupyterHub.template_vars = {
        "quickjh_add_user_where": "in an admin's terminal",
        "quickjh_add_user": "sudo quickjh-adduser NAME (or sudo useradd -m NAME and sudo passwd NAME)",
    }


class QuickjhLocalSpawner(LocalProcessSpawner):
    """The user's server, started as the user by quickjh-launch: nothing in the user's home is touched by root."""

    max_processes = Integer(0, help="Processes (threads count) one user may have at once (0: no limit).").tag(
        config=True
    )
    shared_folders = Dict(help="Shared folders (/srv/shared/NAME) by the group whose members see them.").tag(
        config=True
    )

    @default("popen_kwargs")
    def _popen_kwargs_default(self):
        return {"cwd": "/"}  # the launcher goes to the home once it is the user

    def make_preexec_fn(self, name):
        return None  # Popen executes the launcher at once: see launch_command

    def launch_command(self, name: str) -> list[str]:
        """quickjh-launch's arguments for this user: the server's niceness and limits (the hub and the proxy come
        first: no user can starve the logins of the others) and the shared folders of the user's groups."""
        account = pwd.getpwnam(name)
        groups = {g.gr_name for g in grp.getgrall() if name in g.gr_mem} | {grp.getgrgid(account.pw_gid).gr_name}
        args = [LAUNCHER, "--user", name, "--nice", "10"]
        if self.max_processes:
            args += ["--processes", str(self.max_processes)]
        if self.mem_limit:
            args += ["--memory", str(self.mem_limit)]
        for folder, group in sorted(self.shared_folders.items()):
            if group in groups:
                args += ["--link", f"{folder}=/srv/shared/{folder}"]
        return [*args, "--"]

    async def start(self):
        """Start the server through the launcher and return once it takes connections: the hub's own check (an HTTP
        request, retried after random waits that grow to seconds) then passes at its first try."""
        server_cmd = self.cmd
        self.cmd = self.launch_command(self.user.name) + list(server_cmd)
        try:
            ip, port = await super().start()  # Popen happens before its first await: the launcher is in self.proc
        finally:
            self.cmd = server_cmd
        deadline = time.monotonic() + self.http_timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), deadline - time.monotonic())
            except (TimeoutError, OSError):
                await asyncio.sleep(0.05)
            else:
                writer.close()
                break
        return ip, port
