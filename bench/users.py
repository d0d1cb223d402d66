#!/usr/bin/env python3
"""Benchmark of the users sync: for 10, 100 and 500 users, time the first sync (all created), a no-op run of the
whole playbook, and a run where one password changed. Runs on this machine's Docker under bench-only names
(container quickjh-bench, port 18100, its own volumes and folders) and removes them at the end.

  .venv/bin/python bench/users.py [COUNTS...]      (default: 10 100 500; needs `make deploy`'s set-up)
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = {
    "quickjh_container_name": "quickjh-bench", "quickjh_image_name": "quickjh-bench",
    "quickjh_home_volume": "quickjh-bench-home", "quickjh_state_volume": "quickjh-bench-state",
    "quickjh_config_dir": "/tmp/quickjh-bench/config", "quickjh_build_dir": "/tmp/quickjh-bench/build",
    "quickjh_port": 18100, "quickjh_bind_address": "127.0.0.1",
    "quickjh_ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
}


def users(count: int, changed: bool = False) -> list[dict]:
    listed = [{"name": f"bench{i:04d}", "password": f"bench-pw-{i:04d}"} for i in range(count)]
    if changed:
        listed[0] = {"name": "bench0000", "password": "bench-pw-changed", "update_password": "always"}
    return listed


def playbook(listed: list[dict]) -> tuple[float, float, str]:
    """Run the playbook; return its wall time, the sync task's time and its recap line."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as extra:
        json.dump(dict(NAMES, quickjh_users=listed), extra)
    env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    start = time.monotonic()
    out = subprocess.run(["ansible-playbook", "-i", "inventory.example", "playbook.yml", "-e", f"@{extra.name}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    os.unlink(extra.name)
    if out.returncode != 0:
        sys.exit(out.stdout[-4000:] + out.stderr[-2000:])
    task = re.search(r"Apply quickjh_users inside the container -+ ([0-9.]+)s", out.stdout)
    recap = re.search(r"(ok=\d+ +changed=\d+)", out.stdout)
    report = re.findall(r"msg: '?([^\n']*)", out.stdout)[-1]
    return wall, float(task.group(1)) if task else 0.0, f"{recap.group(1)}; {report[:60]}"


def clean() -> None:
    subprocess.run("docker rm -f quickjh-bench; docker volume rm quickjh-bench-home quickjh-bench-state; "
                   "rm -rf /tmp/quickjh-bench", shell=True, capture_output=True, check=False)


def main(counts: list[int]) -> None:
    print("| users | first sync: playbook (sync task) | no-op playbook | one password changed: playbook (sync task) |")
    print("| ---: | --- | --- | --- |")
    try:
        playbook([])  # image and container, so the rows time the users alone
        for count in counts:
            clean()
            playbook([])
            first = playbook(users(count))
            noop = playbook(users(count))
            one = playbook(users(count, changed=True))
            print(f"| {count} | {first[0]:.1f} s ({first[1]:.1f} s) | {noop[0]:.1f} s, {noop[2]} "
                  f"| {one[0]:.1f} s ({one[1]:.1f} s), {one[2]} |", flush=True)
    finally:
        clean()
        subprocess.run("docker images -q quickjh-bench | xargs -r docker rmi -f", shell=True, capture_output=True,
                       check=False)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 500])
