"""quickjh-usage: who uses what, for the team lead: each user's server (running since when), memory now and at peak,
CPU over the last minutes, home size and last activity, the disk, and the last scheduled backup.

  quickjh-usage              the table (docker exec quickjh quickjh-usage)
  quickjh-usage --json       the same figures as JSON, for scripts (the page's /services/usage/api too)
  quickjh-usage homes        measure the homes' sizes now (the collector does every 10 minutes)
  quickjh-usage collect      the collector (quickjh-start runs it): a sample every 30 s, home sizes every 10 minutes
  quickjh-usage serve        the admins' page, a JupyterHub service at /services/usage/ (admins only: the hub's
                             default access scope for a service, which only the admin role holds)

The collector writes $QUICKJH_STATE/usage/now.json and history.json (one point a minute, six hours); the page, the
JSON, the table and the hub's Prometheus gauges (quickjh_user_*, on /hub/metrics) all read those files, so nothing
is measured twice and the hub itself runs no timer. Local mode sums each user's processes from one pass over /proc
(resident memory, CPU time); docker mode reads each user's container's cgroup (the host's /sys/fs/cgroup, mounted
read-only), or asks Docker once per container where no cgroup file is found. Home sizes come from one `du` at the
lowest priority. The collector's own CPU time is in now.json: the page shows its share of a core.
"""

from __future__ import annotations

import contextlib
import datetime
import html
import json
import os
import pwd
import resource
import subprocess
import sys
import time
from pathlib import Path

from quickjh import settings as deployment
from quickjh.accounts import uid_range
from quickjh.rules import is_human_uid
from quickjh.settings import state_dir

INTERVAL = 30  # seconds between samples
HOMES_EVERY = 600  # seconds between home sizes
HISTORY = 6 * 3600  # seconds of history, one point a minute
PROC = Path("/proc")
CGROUP = Path("/host/cgroup")  # the host's /sys/fs/cgroup, docker mode
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def folder() -> Path:
    return state_dir() / "usage"


def write(path: Path, data: object) -> None:
    """Whole or not at all; a full disk loses this sample, never the last one."""
    path.parent.mkdir(mode=0o700, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(data, sort_keys=True))
        partial.replace(path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        print(f"quickjh-usage: not written ({err})", file=sys.stderr)


def read(path: Path, default: object) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


# --- Local mode: one pass over /proc ---------------------------------------------------------------------------------


class Processes:
    """Each human UID's resident memory and CPU share since the last pass (a process seen for the first time counts
    from its start)."""

    def __init__(self, proc: Path = PROC) -> None:
        self.proc, self.seen, self.last = proc, {}, time.monotonic()
        self.boot = time.time() - float((proc / "uptime").read_text().split()[0]) if (proc / "uptime").exists() else 0

    def sample(self) -> dict[int, dict[str, float]]:
        now, low_high = time.monotonic(), uid_range()
        elapsed, self.last = max(now - self.last, 1e-3), now
        out: dict[int, dict[str, float]] = {}
        seen = {}
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            try:
                uid = entry.stat(follow_symlinks=False).st_uid
                if not is_human_uid(uid, low_high):
                    continue
                fields = (self.proc / entry.name / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            start = int(fields[19])
            key = (int(entry.name), start)
            before = self.seen.get(key, 0)
            seen[key] = ticks
            user = out.setdefault(uid, {"memory": 0, "cpu": 0.0})
            user["memory"] += int(fields[21]) * PAGE
            user["cpu"] += max(ticks - before, 0) / TICKS / elapsed
        self.seen = seen
        return out


# --- Docker mode: each user's container's cgroup --------------------------------------------------------------------

CGROUP_FILES = [  # (memory now, memory peak, CPU used) under CGROUP, for the container's id; v2, then v1
    ("{v2}/memory.current", "{v2}/memory.peak", "{v2}/cpu.stat"),
    ("memory/{v1}/memory.usage_in_bytes", "memory/{v1}/memory.max_usage_in_bytes", "cpuacct/{v1}/cpuacct.usage"),
]


def cgroup_figures(container_id: str, root: Path = CGROUP) -> tuple[int, int, float] | None:
    """(memory, peak memory, CPU seconds used) of a container from the host's cgroup files, or None."""
    for v2, v1 in (
        (f"docker/{container_id}", f"docker/{container_id}"),
        (f"system.slice/docker-{container_id}.scope", f"system.slice/docker-{container_id}.scope"),
    ):
        for memory, peak, cpu in CGROUP_FILES:
            paths = [root / p.format(v2=v2, v1=v1) for p in (memory, peak, cpu)]
            if not paths[0].exists():
                continue
            used = int(paths[0].read_text())
            top = int(paths[1].read_text()) if paths[1].exists() else used
            text = paths[2].read_text()
            seconds = int(text.split("usage_usec", 1)[1].split()[0]) / 1e6 if "usage_usec" in text else int(text) / 1e9
            return used, max(top, used), seconds
    return None


class Containers:
    """Each user's container (this hub's label): memory now and at peak, CPU share since the last pass."""

    def __init__(self, hub: str) -> None:
        self.hub, self.cpu, self.last = hub, {}, time.monotonic()

    def sample(self) -> dict[str, dict[str, float]]:
        import docker  # the image has it (DockerSpawner's)

        now = time.monotonic()
        elapsed, self.last = max(now - self.last, 1e-3), now
        client = docker.from_env()
        out, cpu = {}, {}
        for container in client.containers.list(filters={"label": f"quickjh.hub={self.hub}"}):
            name = container.labels.get("quickjh.user", "")
            figures = cgroup_figures(container.id)
            if figures is None:  # no cgroup file here (rootless, Docker in Docker): ask Docker, once
                stats = client.api.stats(container.id, stream=False, one_shot=True)
                memory = stats.get("memory_stats", {})
                figures = (
                    memory.get("usage", 0),
                    memory.get("max_usage", memory.get("usage", 0)),
                    stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0) / 1e9,
                )
            used, peak, seconds = figures
            cpu[container.id] = seconds
            before = self.cpu.get(container.id, seconds)
            out[name] = {"memory": used, "peak": peak, "cpu": max(seconds - before, 0) / elapsed}
        self.cpu = cpu
        return out


# --- What the hub knows, homes, disk, backups -------------------------------------------------------------------------


def hub_users(db: Path | None = None) -> dict[str, dict]:
    """Each user the hub knows: admin, last activity, and their server (running, since when), from its database."""
    from quickjh.hubdb import database, read

    db = db or database()
    if not db.exists():
        return {}
    (rows,) = read(
        "SELECT u.name, u.admin, u.last_activity, s.started, s.server_id, s.last_activity "
        "FROM users u LEFT JOIN spawners s ON s.user_id = u.id AND s.name = ''",
        db=db,
    )
    return {
        name: {
            "admin": bool(admin),
            "last_activity": iso(max(filter(None, (last, server_last)), default=None)),
            "running": server_id is not None,
            "since": iso(started) if server_id is not None else None,
        }
        for name, admin, last, started, server_id, server_last in rows
    }


def iso(value: str | None) -> str | None:
    return value.replace(" ", "T")[:19] + "Z" if value else None


def home_sizes(home: Path = Path("/home")) -> dict[str, int]:
    """Each home's size in bytes: one du, at the lowest priority, on the homes' own file system only."""
    try:
        done = subprocess.run(
            ["nice", "-n", "19", "ionice", "-c", "3", "timeout", "300", "du", "-x", "-B1", "-d", "1", str(home)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return {}
    sizes = {}
    for line in done.stdout.splitlines():
        size, _, path = line.partition("\t")
        if path != str(home) and size.isdigit():
            sizes[Path(path).name] = int(size)
    return sizes


def measure_homes() -> dict[str, int]:
    """Home sizes now, kept for the collector's next samples (it measures every ten minutes; `quickjh-usage homes`
    at once)."""
    sizes = home_sizes()
    write(folder() / "homes.json", sizes)
    return sizes


def disk(paths: dict[str, Path], warn_percent: int) -> dict:
    """How full each file system is (as df counts: used / (used + available)), and whether it warns."""
    out = {}
    for name, path in paths.items():
        try:
            fs = os.statvfs(path)
        except OSError:
            continue
        used, avail = (fs.f_blocks - fs.f_bfree) * fs.f_frsize, fs.f_bavail * fs.f_frsize
        percent = round(100 * used / max(used + avail, 1), 1)
        out[name] = {"path": str(path), "percent": percent, "free": avail, "warn": percent >= warn_percent}
    return out


# --- One sample ------------------------------------------------------------------------------------------------------


def sample(sampler, settings: dict, homes: dict[str, int], started: float) -> dict:
    figures = sampler.sample()
    users = hub_users()
    if isinstance(sampler, Processes):  # by UID: to names
        by_name = {}
        for uid, values in figures.items():
            with contextlib.suppress(KeyError):
                by_name[pwd.getpwuid(uid).pw_name] = values
        figures = by_name
    peaks = read(folder() / "peaks.json", {})
    rows = {}
    for name in sorted(set(users) | set(figures) | set(homes)):
        user = users.get(name, {"admin": False, "last_activity": None, "running": False, "since": None})
        figure = figures.get(name, {})
        memory = int(figure.get("memory", 0))
        since = user.get("since") or ""
        peak = peaks.get(name, {}) if peaks.get(name, {}).get("since") == since else {}
        peak = {"since": since, "bytes": max(int(figure.get("peak", 0)), memory, peak.get("bytes", 0))}
        peaks[name] = peak
        rows[name] = dict(
            user, memory=memory, peak=peak["bytes"], cpu=round(figure.get("cpu", 0.0), 3), home=homes.get(name)
        )
    write(folder() / "peaks.json", peaks)
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    warn = settings.get("usage", {}).get("disk_warn_percent", 90)
    paths = {"homes": Path("/home"), "hub state": state_dir(), "backups": Path("/var/backups/quickjh")}
    return {
        "at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "users": rows,
        "disk": disk({k: v for k, v in paths.items() if v.exists()}, warn),
        "biggest_homes": sorted(homes, key=homes.get, reverse=True)[:5],
        "backup": read(state_dir() / "backup-status.json", {}),
        "collector": {
            "cpu_seconds": round(cpu, 2),
            "share_of_a_core": round(cpu / max(time.monotonic() - started, 1), 5),
        },
    }


# Each spawner mode's sampler, by the mode's name. Swarm: the users' containers on the hub's own node (their
# containers carry the same labels); those on other nodes are not measured.
SAMPLERS = {
    "local": lambda settings: Processes(),
    "docker": lambda settings: Containers(settings["hub"]),
    "swarm": lambda settings: Containers(settings["hub"]),
}


def remember(now: dict, history: list[dict]) -> list[dict]:
    """One point a minute, six hours: the time, and each user's memory and CPU."""
    point = {"at": now["at"], "users": {n: [u["memory"], u["cpu"]] for n, u in now["users"].items() if u["memory"]}}
    if history and history[-1]["at"][:16] == point["at"][:16]:
        return history
    return (history + [point])[-(HISTORY // 60) :]


def collect() -> None:
    """The collector's loop (quickjh-start keeps it running beside the hub)."""
    os.nice(10)
    settings = deployment.load()
    sampler = SAMPLERS[settings["spawner"]](settings)  # a mode with no sampler fails here, named, at start
    started, homes_at = time.monotonic(), 0.0
    history = read(folder() / "history.json", [])
    while True:
        if time.monotonic() - homes_at >= HOMES_EVERY:
            measure_homes()
            homes_at = time.monotonic()
        try:
            now = sample(sampler, settings, read(folder() / "homes.json", {}), started)
        except Exception as err:  # a sample lost (the database busy, Docker restarting): the next one comes
            print(f"quickjh-usage: sample lost: {err!r}", file=sys.stderr)
        else:
            for name, fs in now["disk"].items():
                if fs["warn"]:
                    print(
                        f"quickjh-usage: WARNING {name} ({fs['path']}) {fs['percent']}% full; biggest homes: "
                        f"{', '.join(now['biggest_homes'])}",
                        file=sys.stderr,
                    )
            history = remember(now, history)
            write(folder() / "now.json", now)
            write(folder() / "history.json", history)
        time.sleep(INTERVAL)


# --- Showing it ------------------------------------------------------------------------------------------------------


def report() -> dict:
    now = read(folder() / "now.json", {"users": {}, "disk": {}, "backup": {}})
    return dict(now, history=read(folder() / "history.json", []))


def size(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def table(now: dict) -> str:
    lines = [f"{'user':<16} {'server':<22} {'memory':>10} {'peak':>10} {'cpu':>6} {'home':>10}  last activity"]
    for name, u in now.get("users", {}).items():
        server = f"since {u['since'][:16]}" if u.get("running") else "stopped"
        lines.append(
            f"{name:<16} {server:<22} {size(u['memory']):>10} {size(u['peak']):>10} {u['cpu']:>6.2f} "
            f"{size(u.get('home')):>10}  {u.get('last_activity') or '-'}"
        )
    for name, fs in now.get("disk", {}).items():
        lines.append(f"disk {name}: {fs['percent']}% used, {size(fs['free'])} free{'  WARNING' if fs['warn'] else ''}")
    backup = now.get("backup", {})
    lines.append(
        f"last scheduled backup: {backup.get('last_success') or 'none'}"
        + (f"  ERROR: {backup['error']}" if backup.get("error") else "")
    )
    return "\n".join(lines)


def sparkline(values: list[float], width: int = 160, height: int = 24) -> str:
    """A line of the values as inline SVG (no script, nothing fetched)."""
    if len(values) < 2:
        return ""
    top = max(values) or 1
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 1 - v / top * (height - 2):.1f}" for i, v in enumerate(values))
    return (
        f'<svg width="{width}" height="{height}" role="img"><polyline fill="none" stroke="#f37524" '
        f'stroke-width="1.5" points="{points}"/></svg>'
    )


def bar(value: int | None, top: int, width: int = 160) -> str:
    share = (value or 0) / max(top, 1)
    return f'<svg width="{width}" height="12"><rect width="{share * width:.1f}" height="12" fill="#4c8bbf"/></svg>'


def page(report_: dict) -> str:
    history = report_.get("history", [])
    users = report_.get("users", {})
    top_home = max((u.get("home") or 0 for u in users.values()), default=0)
    rows = []
    for name, u in users.items():
        memory = [p["users"].get(name, [0, 0])[0] for p in history]
        cpu = [p["users"].get(name, [0, 0])[1] for p in history]
        rows.append(
            f"<tr><td>{html.escape(name)}{' (admin)' if u.get('admin') else ''}</td>"
            f"<td>{'running since ' + html.escape(u['since'][:16]) if u.get('running') else 'stopped'}</td>"
            f"<td>{size(u['memory'])}<br>{sparkline(memory)}</td><td>{size(u['peak'])}</td>"
            f"<td>{u['cpu']:.2f}<br>{sparkline(cpu)}</td>"
            f"<td>{size(u.get('home'))}<br>{bar(u.get('home'), top_home)}</td>"
            f"<td>{html.escape(u.get('last_activity') or '-')}</td></tr>"
        )
    warnings = [
        f"{html.escape(name)} is {fs['percent']}% full ({size(fs['free'])} free): biggest homes "
        f"{html.escape(', '.join(report_.get('biggest_homes', [])))}"
        for name, fs in report_.get("disk", {}).items()
        if fs.get("warn")
    ]
    backup = report_.get("backup", {})
    if backup.get("error"):
        warnings.append(f"the last scheduled backup failed: {html.escape(backup['error'])}")
    banner = "".join(f'<p class="warn">WARNING: {w}</p>' for w in warnings)
    disks = "".join(
        f"<li>{html.escape(n)}: {fs['percent']}% used, {size(fs['free'])} free</li>"
        for n, fs in report_.get("disk", {}).items()
    )
    collector = report_.get("collector", {})
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Usage - quickjh</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:.3em .8em;
border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}.warn{{background:#fdd;padding:.5em}}</style></head>
<body><h1>Who uses what</h1>{banner}<p>At {html.escape(report_.get("at", "no sample yet"))} (every {INTERVAL} s;
charts: the last six hours, a point a minute). Memory: resident memory (local mode: each process's, summed).</p>
<table id="usage"><tr><th>user</th><th>server</th><th>memory now</th><th>peak</th><th>CPU (cores)</th><th>home</th>
<th>last activity</th></tr>{"".join(rows)}</table>
<h2>Disk</h2><ul>{disks}</ul>
<h2>Backups</h2><p>Last scheduled backup: {html.escape(backup.get("last_success") or "none")}
{html.escape(backup.get("archive") or "")}</p>
<p>The collector takes {collector.get("share_of_a_core", 0) * 100:.3f}% of a core. The same figures as JSON:
<a href="api">api</a>.</p></body></html>"""


# --- The page as a JupyterHub service ---------------------------------------------------------------------------------


def serve() -> None:
    import asyncio
    import importlib
    import signal
    from urllib.parse import urlparse

    from tornado import web

    def handlers(auth) -> list:
        class Page(auth.HubOAuthenticated, web.RequestHandler):
            @web.authenticated
            def get(self):
                self.set_header("Cache-Control", "no-store")
                self.finish(page(report()))

        class Api(auth.HubOAuthenticated, web.RequestHandler):
            @web.authenticated
            def get(self):
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps(report()))

        return [(prefix, Page), (prefix + "api", Api), (prefix + "oauth_callback", auth.HubOAuthCallbackHandler)]

    prefix, url = os.environ["JUPYTERHUB_SERVICE_PREFIX"], urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = web.Application(cookie_secret=os.urandom(32))

    async def forever() -> None:
        # Listening first: the hub routes nobody to itself before this service answers (any answer below 500 will
        # do), and JupyterHub's OAuth helpers take over a second to import (its database layer). They are imported
        # in a thread while the page answers 404; then the page is there.
        app.listen(url.port, url.hostname)  # on the loop asyncio.run made: one made before it would never run
        # Nothing to save: ended at once (the hub's stop waits for it; Python's own exit took 0.4 s after these imports)
        for ending in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(ending, os._exit, 0)
        auth = await asyncio.to_thread(importlib.import_module, "jupyterhub.services.auth")
        app.add_handlers(r".*", handlers(auth))
        await asyncio.Event().wait()

    asyncio.run(forever())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["collect"]:
        collect()
    elif argv == ["serve"]:
        serve()
    elif argv == ["homes"]:
        print(json.dumps(measure_homes(), indent=1))
    elif argv == ["--json"]:
        print(json.dumps(report(), indent=1))
    elif not argv:
        print(table(report()))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


# --- Prometheus: each user's figures as gauges on the hub's own /hub/metrics ------------------------------------------


class Gauges:
    """Read at each scrape from now.json (the hub runs no timer for it)."""

    def describe(self):
        return []  # nothing to check at registration: the families come at each scrape

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        now = read(folder() / "now.json", {"users": {}, "disk": {}, "backup": {}})
        families = {
            "memory_bytes": ("resident memory", "memory"),
            "memory_peak_bytes": ("peak memory since the server started", "peak"),
            "cpu_cores": ("CPU, in cores, over the last 30 s", "cpu"),
            "home_bytes": ("size of the home", "home"),
            "server_running": ("1 while the server runs", "running"),
        }
        for suffix, (text, key) in families.items():
            family = GaugeMetricFamily(f"quickjh_user_{suffix}", f"Each user's {text}", labels=["user"])
            for name, user in now["users"].items():
                if user.get(key) is not None:
                    family.add_metric([name], float(user[key]))
            yield family
        used = GaugeMetricFamily("quickjh_disk_used_ratio", "How full each file system is", labels=["path"])
        for name, fs in now.get("disk", {}).items():
            used.add_metric([name], fs["percent"] / 100)
        yield used
        last = now.get("backup", {}).get("last_success_epoch")
        if last:
            yield GaugeMetricFamily(
                "quickjh_backup_last_success_timestamp_seconds", "When the last scheduled backup was written", last
            )


_registered: list[Gauges] = []


def register_gauges() -> None:
    """Once per process (the hub's config may be loaded more than once, e.g. by the unit tests)."""
    if not _registered:
        from prometheus_client import REGISTRY

        _registered.append(Gauges())
        REGISTRY.register(_registered[0])
