"""The hub under quickjh_base_url behind a real nginx: docs/operating.md's own server block, in Debian's nginx, in a
container built from the local base image on the hub's Docker network. A user logs in through it, runs code over
the kernel's websocket and types into a terminal's; a person does the same in Chromium."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import docker
import pytest
import requests
import yaml

from browser_check import round_trip
from hubclient import HubUser

ROOT = Path(__file__).resolve().parents[3]
OPERATING = ROOT / "docs/operating.md"  # its ```nginx block is the one users copy
BASE_IMAGE = yaml.safe_load((ROOT / "roles/quickjh/defaults/main.yml").read_text())["quickjh_base_image"]
PORT = 18444  # nginx's, published on 127.0.0.1
NGINX_IMAGE = "quickjh-test:nginx"  # a tag of the shared test image's name: make test removes it with the rest


def documented_nginx_conf(upstream: str, tls: str) -> str:
    """docs/operating.md's nginx block, with the hub container's address and its proxy's port for 127.0.0.1:8000,
    and the hub's certificate (its names are 127.0.0.1 and localhost, which the client checks) for the site's."""
    conf = re.search(r"```nginx\n(.*?)```", OPERATING.read_text(), re.S).group(1)
    conf = conf.replace("https://127.0.0.1:8000", f"https://{upstream}:443")  # the proxy, in the container
    conf = re.sub(r"ssl_certificate(\s+)\S+;", rf"ssl_certificate\1{tls}/hub.crt;", conf)
    return re.sub(r"ssl_certificate_key(\s+)\S+;", rf"ssl_certificate_key\1{tls}/hub.key;", conf)


@pytest.fixture(scope="module")
def nginx(settings, hub):
    """https://127.0.0.1:PORT/jupyter: nginx with the documented config in front of the hub."""
    client = docker.from_env()
    started = time.monotonic()
    dockerfile = (
        f"FROM {settings.get('quickjh_base_image', BASE_IMAGE)}\n"
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        "nginx && apt-get clean && rm -rf /var/lib/apt/lists/* && rm -f /etc/nginx/sites-enabled/*\n"
        'CMD ["nginx", "-g", "daemon off;"]\n'
    )
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=NGINX_IMAGE, rm=True)
    print(f"\nnginx image: {time.monotonic() - started:.1f} s")
    conf = Path(settings["test_dir"]) / "nginx-jupyter.conf"
    conf.write_text(documented_nginx_conf(hub().attrs["NetworkSettings"]["IPAddress"], "/etc/quickjh/tls"))
    container = client.containers.run(
        NGINX_IMAGE,
        name="quickjh-test-nginx",
        detach=True,
        ports={"443/tcp": ("127.0.0.1", PORT)},
        volumes={
            str(conf): {"bind": "/etc/nginx/conf.d/jupyter.conf", "mode": "ro"},
            f"{settings['quickjh_config_dir']}/tls": {"bind": "/etc/quickjh/tls", "mode": "ro"},
        },
    )
    try:
        url = f"https://127.0.0.1:{PORT}{settings['quickjh_base_url'].rstrip('/')}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(url + "/hub/health", timeout=5, verify=False)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        yield url
    finally:
        print(container.logs(tail=20).decode(errors="replace"))
        container.remove(force=True)


def test_through_nginx_a_user_logs_in_runs_code_and_opens_a_terminal(nginx, verify, passwords):
    user1 = HubUser(nginx, "user1", verify=verify)
    user1.login(passwords["user1"])
    user1.start_server()
    assert user1.whoami()[0] == "user1"  # the kernel's websocket, through nginx
    printed = user1.terminal("echo through-$((40 + 2))")  # the terminal's websocket
    assert "through-42" in printed and printed.endswith("[exit 0]"), printed


def test_in_chromium_through_nginx_a_person_logs_in_runs_a_cell_and_a_terminal_and_logs_out(nginx, passwords):
    times = round_trip(nginx, "admin", passwords["admin"], insecure=True)
    print("\nbrowser through nginx: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in times.items()))


def test_the_hub_answers_only_under_its_path(settings, hub_url, verify):
    root = hub_url[: -len(settings["quickjh_base_url"].rstrip("/"))]
    assert requests.get(f"{hub_url}/hub/health", timeout=10, verify=verify).status_code == 200
    assert requests.get(f"{root}/hub/login", timeout=10, verify=verify).status_code == 404
