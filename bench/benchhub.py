"""The hub the benchmarks run: this machine's Docker under bench-only names (container quickjh-bench, port 18100,
its own volumes and folders), deployed with the project's playbook and removed at the end."""

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
    "quickjh_container_name": "quickjh-bench",
    "quickjh_image_name": "quickjh-bench",
    "quickjh_home_volume": "quickjh-bench-home",
    "quickjh_state_volume": "quickjh-bench-state",
    "quickjh_config_dir": "/tmp/quickjh-bench/config",
    "quickjh_build_dir": "/tmp/quickjh-bench/build",
    "quickjh_port": 18100,
    "quickjh_bind_address": "127.0.0.1",
    "quickjh_ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
}
URL = f"https://127.0.0.1:{NAMES['quickjh_port']}"
CERT = f"{NAMES['quickjh_config_dir']}/tls/hub.crt"


def users(count: int) -> list[dict]:
    return [{"name": f"bench{i:04d}", "password": f"bench-pw-{i:04d}"} for i in range(count)]


def playbook(listed: list[dict], inventory: str = "inventory.example", **settings) -> tuple[float, float, str]:
    """Run the playbook with these users (and settings); return its wall time, the sync task's time and its recap
    line."""
    wall, out = run_playbook(listed, inventory, **settings)
    task = re.search(r"Apply quickjh_users inside the container -+ ([0-9.]+)s", out)
    recap = re.search(r"(ok=\d+ +changed=\d+)", out)
    report = re.findall(r"msg: '?([^\n']*)", out)[-1]
    return wall, float(task.group(1)) if task else 0.0, f"{recap.group(1)}; {report[:60]}"


def run_playbook(listed: list[dict], inventory: str = "inventory.example", **settings) -> tuple[float, str]:
    """Run the playbook with these users (and settings), timing each task; return its wall time and output."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as extra:
        json.dump(dict(NAMES, quickjh_users=listed, **settings), extra)
    env = dict(
        os.environ,
        PATH=f"{ROOT / '.venv/bin'}:{os.environ['PATH']}",  # ansible from the project's venv (make venv)
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
        PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    )
    start = time.monotonic()
    out = subprocess.run(
        ["ansible-playbook", "-i", inventory, "playbook.yml", "-e", f"@{extra.name}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - start
    os.unlink(extra.name)
    if out.returncode != 0:
        sys.exit(out.stdout[-4000:] + out.stderr[-2000:])
    return wall, out.stdout


def clean(image: bool = False) -> None:
    """Remove the bench hub: container, users' containers (docker mode) or services (swarm mode), network, volumes,
    folders (and its image)."""
    subprocess.run(
        "docker service ls -q --filter label=quickjh.hub=quickjh-bench | xargs -r docker service rm; "
        "docker rm -f quickjh-bench $(docker ps -aq --filter label=quickjh.hub=quickjh-bench); "
        "docker network rm quickjh-bench-users; docker volume rm quickjh-bench-home quickjh-bench-state; "
        "docker volume ls -q --filter label=quickjh.hub=quickjh-bench | xargs -r docker volume rm; "
        "rm -rf /tmp/quickjh-bench",
        shell=True,
        capture_output=True,
        check=False,
    )
    if image:
        subprocess.run(
            "docker images -q quickjh-bench | xargs -r docker rmi -f", shell=True, capture_output=True, check=False
        )
