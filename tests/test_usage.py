"""Who uses what (quickjh.usage) and scheduled backups (quickjh.schedule): the figures from /proc and cgroup files
(made up here, in the kernel's formats), the page's escaping and charts, the gauges, the schedule's due times, the
pruning, the archive written from the hub's own paths, and the run's warnings."""

from __future__ import annotations

import datetime
import json
import os
import tarfile

import pytest

from quickjh import backup, schedule, sync, usage


def fake_proc(root, processes):
    """processes: (pid, uid, utime+stime ticks, rss pages, start)."""
    (root / "uptime").write_text("1000.0 900.0\n")
    for pid, uid, ticks, rss, start in processes:
        folder = root / str(pid)
        folder.mkdir()
        fields = ["S", "1"] + ["0"] * 9 + [str(ticks), "0", "0", "0"] + ["0"] * 4 + [str(start), "0", str(rss)]
        (folder / "stat").write_text(f"{pid} (py thon) " + " ".join(fields) + " 0 0\n")
        os.chown(folder, uid, uid)


@pytest.mark.skipif(os.getuid() != 0, reason="the processes' owners are set with chown")
def test_local_mode_sums_each_persons_processes_and_their_cpu_since_the_last_pass(tmp_path):
    fake_proc(tmp_path, [(10, 1001, 100, 256, 5), (11, 1001, 50, 256, 6), (12, 1002, 0, 10, 7), (13, 0, 999, 9, 1)])
    sampler = usage.Processes(tmp_path)
    first = sampler.sample()
    assert set(first) == {1001, 1002}  # root's process is no one's
    assert first[1001]["memory"] == 512 * usage.PAGE
    (tmp_path / "10" / "stat").write_text(
        (tmp_path / "10" / "stat").read_text().replace(" 100 0 0 0 ", " 400 0 0 0 ", 1)
    )
    sampler.last -= 10  # ten seconds later: 300 ticks more
    assert sampler.sample()[1001]["cpu"] == pytest.approx(300 / usage.TICKS / 10, rel=0.05)


def test_docker_mode_reads_a_containers_cgroup_files_v1_and_v2(tmp_path):
    v1 = tmp_path / "v1"
    (v1 / "memory/docker/abc").mkdir(parents=True)
    (v1 / "cpuacct/docker/abc").mkdir(parents=True)
    (v1 / "memory/docker/abc/memory.usage_in_bytes").write_text("1000\n")
    (v1 / "memory/docker/abc/memory.max_usage_in_bytes").write_text("3000\n")
    (v1 / "cpuacct/docker/abc/cpuacct.usage").write_text("2500000000\n")
    assert usage.cgroup_figures("abc", v1) == (1000, 3000, 2.5)
    v2 = tmp_path / "v2" / "system.slice" / "docker-abc.scope"
    v2.mkdir(parents=True)
    (v2 / "memory.current").write_text("2000\n")
    (v2 / "memory.peak").write_text("5000\n")
    (v2 / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    assert usage.cgroup_figures("abc", tmp_path / "v2") == (2000, 5000, 1.5)
    assert usage.cgroup_figures("other", tmp_path / "v2") is None


def test_the_page_shows_each_user_as_text_with_charts_and_warns_of_a_full_disk():
    report = {
        "at": "2026-12-06T10:00:00Z",
        "users": {
            "<b>x</b>": {
                "admin": False,
                "running": True,
                "since": "2026-12-06T09:00:00Z",
                "memory": 300 << 20,
                "peak": 400 << 20,
                "cpu": 0.5,
                "home": 50 << 20,
                "last_activity": None,
            },
        },
        "history": [{"at": "t", "users": {"<b>x</b>": [1, 0.1]}}, {"at": "u", "users": {"<b>x</b>": [2, 0.2]}}],
        "disk": {"homes": {"path": "/home", "percent": 95.0, "free": 1 << 20, "warn": True}},
        "biggest_homes": ["<b>x</b>"],
        "backup": {},
    }
    shown = usage.page(report)
    assert "<b>x</b>" not in shown and "&lt;b&gt;x&lt;/b&gt;" in shown
    assert "<polyline" in shown and "300.0 MiB" in shown and "WARNING: homes is 95.0% full" in shown
    assert "<script" not in shown


def test_the_gauges_come_from_the_last_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKJH_STATE", str(tmp_path))
    usage.write(
        tmp_path / "usage" / "now.json",
        {"users": {"ann": {"memory": 5, "peak": 7, "cpu": 0.25, "home": 9, "running": True}}, "disk": {}, "backup": {}},
    )
    families = {f.name: f for f in usage.Gauges().collect()}
    assert families["quickjh_user_memory_bytes"].samples[0].labels == {"user": "ann"}
    assert families["quickjh_user_cpu_cores"].samples[0].value == 0.25


def test_a_schedule_is_due_at_its_latest_time_before_now():
    now = datetime.datetime(2026, 12, 6, 10, 30, tzinfo=datetime.UTC)
    assert schedule.due(["03:00"], now) == now.replace(hour=3, minute=0)
    assert schedule.due(["23:00"], now) == datetime.datetime(2026, 12, 5, 23, 0, tzinfo=datetime.UTC)
    assert schedule.due(["03:00", "10:00"], now) == now.replace(hour=10, minute=0)
    assert schedule.due(["every 1h"], now) == now.replace(minute=0)
    assert schedule.due([], now) is None


def test_only_the_newest_scheduled_archives_stay_and_others_are_never_touched(tmp_path):
    for stamp in ("20261201", "20261202", "20261203"):
        (tmp_path / f"quickjh-auto-{stamp}T030000Z.tar.gz").write_text("x")
    (tmp_path / "quickjh-20261130T120000Z.tar.gz").write_text("backup.yml's")
    assert schedule.prune(tmp_path, "quickjh", 2) == ["quickjh-auto-20261201T030000Z.tar.gz"]
    assert len(list(tmp_path.iterdir())) == 3


def test_the_hubs_own_paths_make_the_same_archive_as_backup_yml(tmp_path):
    parts = {name: tmp_path / name for name in ("state", "config", "home", "shared")}
    for path in parts.values():
        path.mkdir()
    (parts["home"] / "ann").mkdir()
    (parts["home"] / "ann" / "notes.txt").write_text("mine")
    (parts["state"] / "accounts.json").write_text("{}")
    archive = tmp_path / "out.tar.gz"
    backup.create(archive, parts=parts)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "home/ann/notes.txt" in names and "state/accounts.json" in names


def test_the_run_warns_of_a_full_disk_and_of_a_failed_or_missing_backup(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKJH_STATE", str(tmp_path))
    usage.write(
        tmp_path / "usage" / "now.json",
        {"disk": {"homes": {"path": "/home", "percent": 93.0, "warn": True}}, "biggest_homes": ["ann", "bob"]},
    )
    now = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.UTC)
    said = sync.operations_lines({"backup": {"schedule": ["03:00"]}}, now)
    assert "WARNING: homes (/home) is 93.0% full; biggest homes: ann, bob" in said
    assert "No scheduled backup has run yet" in said  # just scheduled: said, not yet a warning
    (tmp_path / "backup-status.json").write_text(json.dumps({"error": "no space left"}))
    assert "WARNING: the last scheduled backup failed: no space left" in sync.operations_lines(
        {"backup": {"schedule": ["03:00"]}}, now
    )
    (tmp_path / "backup-status.json").write_text(json.dumps({"last_success": "2026-12-03T03:00:05Z"}))
    assert "older than two scheduled times" in sync.operations_lines({"backup": {"schedule": ["03:00"]}}, now)
    (tmp_path / "backup-status.json").write_text(json.dumps({"last_success": "2026-12-06T03:00:05Z"}))
    assert "WARNING" not in sync.operations_lines({"backup": {"schedule": ["03:00"]}}, now).split("93.0%")[-1]


def test_the_page_server_answers_and_sends_a_visitor_to_the_hubs_login(tmp_path):
    """quickjh-usage serve, as the hub starts it: it answers (the hub waits for it before routing anything) and
    sends a visitor with no login to the hub's OAuth page."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        JUPYTERHUB_SERVICE_PREFIX="/services/usage/",
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
        JUPYTERHUB_API_TOKEN="t" * 32,
        JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api",
        JUPYTERHUB_CLIENT_ID="service-usage",
        JUPYTERHUB_OAUTH_CALLBACK_URL="/services/usage/oauth_callback",
        JUPYTERHUB_BASE_URL="/",
        JUPYTERHUB_HOST="",
        QUICKJH_STATE=str(tmp_path),
    )
    files = os.path.join(os.path.dirname(__file__), "..", "roles", "quickjh", "files")
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from quickjh import usage; sys.exit(usage.main(['serve']))"],
        env=dict(env, PYTHONPATH=files),
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.build_opener(NoRedirect).open(f"http://127.0.0.1:{port}/services/usage/", timeout=2)
                pytest.fail("a visitor with no login got the page")
            except urllib.error.HTTPError as answer:
                if answer.code == 404:  # listening, its page not there yet (JupyterHub's OAuth helpers importing)
                    assert time.monotonic() < deadline, "the page never came"
                    time.sleep(0.1)
                    continue
                assert answer.code == 302 and "/hub/api/oauth2/authorize" in answer.headers["Location"]
                break
            except (urllib.error.URLError, TimeoutError):
                assert time.monotonic() < deadline and server.poll() is None, "quickjh-usage serve never answered"
                time.sleep(0.2)
    finally:
        server.terminate()
        assert server.wait(10) == 0, "the page server did not end cleanly on SIGTERM"
