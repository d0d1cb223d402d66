"""A real ACME CA on this machine for the tests: Debian's pebble, with pebble-challtestsrv as the DNS it asks, in a
container built from the local base image (no registry). It runs on the hub's network (Docker's default bridge),
its API published at the bridge's gateway address, where the hub's container reaches its directory; pebble reaches
the hub's published port 80 there too, as a CA reaches a host from outside: every test name resolves to that
address (127.0.0.1 is pebble's own, where nothing answers). Its API's certificate comes from a CA made here (the
hub is told to trust it, as a site trusts a private CA's bundle); the certificates it issues chain to a root it
makes at each start.
"""

from __future__ import annotations

import io
import ipaddress
import json
import ssl
import time
import urllib.request
from pathlib import Path

import docker
import requests

from testca import issue

IMAGE = "quickjh-test:pebble"  # a tag of the shared test image's name: make test removes it with the rest
NAME = "quickjh-test-pebble"
ACME_PORT, MANAGEMENT_PORT, DNS_PORT, DNS_MANAGEMENT_PORT = 14000, 15000, 8053, 8055


def gateway() -> str:
    """The Docker bridge's gateway: this machine as the hub's container (and pebble's checks) reach it."""
    config = docker.from_env().networks.get("bridge").attrs["IPAM"]["Config"][0]
    # A daemon that found docker0 already there lists the subnet alone: the gateway is its first address.
    return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


class Pebble:
    """The running CA: its directory URL, the bundle to trust for it, its issuing root, and its DNS's answers."""

    def __init__(self, base_image: str, folder: Path, http_port: int, validity: int) -> None:
        client = docker.from_env()
        self.address = gateway()
        self.bundle = issue(folder, "quickjh test ACME directory CA", "api", self.address, ("pebble",))
        self.directory = f"https://{self.address}:{ACME_PORT}/dir"
        (folder / "pebble.json").write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"0.0.0.0:{ACME_PORT}",
                        "managementListenAddress": f"0.0.0.0:{MANAGEMENT_PORT}",
                        "certificate": "/pebble/api.pem",
                        "privateKey": "/pebble/api.key",
                        "httpPort": http_port,
                        "tlsPort": 5001,
                        "externalAccountBindingRequired": False,
                        "certificateValidityPeriod": validity,
                    }
                }
            )
        )
        dockerfile = (
            f"FROM {base_image}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
            "--no-install-recommends pebble && apt-get clean && rm -rf /var/lib/apt/lists/*\n"
        )
        started = time.monotonic()
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=IMAGE, rm=True)
        self.build_seconds = time.monotonic() - started
        for old in client.containers.list(all=True, filters={"name": f"^{NAME}$"}):
            old.remove(force=True)
        # Every name resolves to this machine's bridge address, where the hub's ports are published; pebble's checks
        # come without sleeping, and no nonce is refused on purpose (Let's Encrypt's own clients' retries, not ours).
        script = (
            f"pebble-challtestsrv -defaultIPv4 {self.address} -defaultIPv6 '' -dns01 :{DNS_PORT} "
            f"-http01 '' -https01 '' -tlsalpn01 '' -doh '' -management :{DNS_MANAGEMENT_PORT} & "
            f"exec pebble -config /pebble/pebble.json -dnsserver 127.0.0.1:{DNS_PORT}"
        )
        self.container = client.containers.run(
            IMAGE,
            ["sh", "-c", script],
            name=NAME,
            detach=True,
            ports={  # the directory and roots where the hub and the tests reach them; the DNS's management here
                f"{ACME_PORT}/tcp": (self.address, ACME_PORT),
                f"{MANAGEMENT_PORT}/tcp": (self.address, MANAGEMENT_PORT),
                f"{DNS_MANAGEMENT_PORT}/tcp": ("127.0.0.1", DNS_MANAGEMENT_PORT),
            },
            # every order checks its names again (no authorisation kept from an earlier one)
            environment={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"},
            volumes={str(folder): {"bind": "/pebble", "mode": "ro"}},
        )
        self.tls = ssl.create_default_context(cafile=str(self.bundle))
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.directory, context=self.tls, timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def root(self) -> str:
        """The root pebble issues certificates under (made anew at each start): what clients trust."""
        url = f"https://{self.address}:{MANAGEMENT_PORT}/roots/0"
        return urllib.request.urlopen(url, context=self.tls, timeout=10).read().decode()

    def resolve(self, name: str, address: str) -> None:
        """Make pebble's DNS answer address for name (another host's, to make its checks fail)."""
        requests.post(
            f"http://127.0.0.1:{DNS_MANAGEMENT_PORT}/add-a", json={"host": name, "addresses": [address]}, timeout=10
        ).raise_for_status()

    def forget(self, name: str) -> None:
        requests.post(
            f"http://127.0.0.1:{DNS_MANAGEMENT_PORT}/clear-a", json={"host": name}, timeout=10
        ).raise_for_status()

    def remove(self) -> None:
        self.container.remove(force=True)
