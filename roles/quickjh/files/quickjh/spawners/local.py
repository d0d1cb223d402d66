"""quickjh_spawner: local. Each user's server is a process of the user's in the hub's container, started through
quickjh-launch: the hub's process executes the root-owned launcher directly (no preexec_fn), so between fork and
exec the child is root's and no user can stop it, and the hub's one event loop never waits on a process of a
user's."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import re
import subprocess
import threading
import time

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Dict, Integer, default

from quickjh.rules import ADMIN_GROUP

LAUNCHER = "/usr/local/sbin/quickjh-launch"
# What a user's server may write to the hub's log (docker logs), per second: past it the user's writes wait.
LOG_BYTES_PER_SECOND = 64 * 1024
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def relay_output(fd: int, name: str, out: int = 2) -> None:
    """Copy what a user's server and its processes print into the hub's log, each line marked as theirs and its
    control characters shown as \\xNN, so that no line of theirs passes for the hub's. Runs in a thread of its
    own, on a file descriptor of its own: the hub's event loop never reads, waits for or closes the pipe, which a
    user's process may hold open as long as it likes."""
    prefix = f"[user {name}] ".encode()

    def write(line: bytes) -> None:
        text = CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line.decode("utf-8", "backslashreplace"))
        os.write(out, prefix + text.encode("utf-8", "backslashreplace") + b"\n")

    pending, window, spent = b"", time.monotonic(), 0
    try:
        while chunk := os.read(fd, 65536):
            spent += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > 4096:  # a line without end: cut it
                lines.append(pending)
                pending = b""
            for line in lines:
                write(line)
            if spent > LOG_BYTES_PER_SECOND:  # enough for this second: the user's writes wait in the pipe
                time.sleep(max(0.0, window + 1 - time.monotonic()))
                window, spent = time.monotonic(), 0
        if pending:
            write(pending)
    finally:
        os.close(fd)


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
        # The launcher goes to the home once it is the user; the server's output goes through relay_output.
        return {"cwd": "/", "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}

    def make_preexec_fn(self, name):
        return None  # Popen executes the launcher at once: see launch_command

    def launch_command(self, name: str) -> list[str]:
        """quickjh-launch's arguments for this user: the server's niceness and limits (the hub and the proxy come
        first: no user can starve the logins of the others), the shared folders of the user's groups, and no new
        privileges unless the user is an admin (admins may sudo): a setuid or setgid program, one a former admin
        left or a setgid copy made while in a group, gives nobody else anything."""
        account = pwd.getpwnam(name)
        groups = {g.gr_name for g in grp.getgrall() if name in g.gr_mem} | {grp.getgrgid(account.pw_gid).gr_name}
        args = [LAUNCHER, "--user", name, "--nice", "10"]
        if self.max_processes:
            args += ["--processes", str(self.max_processes)]
        if self.mem_limit:
            args += ["--memory", str(self.mem_limit)]
        if ADMIN_GROUP not in groups:
            args.append("--no-new-privileges")
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
        if self.proc.stdout is not None:  # the relay gets its own descriptor; the Popen object keeps none
            fd = os.dup(self.proc.stdout.fileno())
            self.proc.stdout.close()
            self.proc.stdout = None
            threading.Thread(target=relay_output, args=(fd, self.user.name), daemon=True).start()
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
