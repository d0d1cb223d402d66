#!/usr/bin/python
"""Ansible module quickjh_target: what the target has for quickjh, in one look (read only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: quickjh_target
short_description: What a quickjh target has, in one look
description:
  - Reads, with the Python that runs Ansible's modules on the target, whether a Docker Engine is there (dockerd on
    PATH or its socket), which of the given Python modules that Python cannot import, the OS (os-release), what
    given paths are (a SHA-1 for regular files), and, when the Docker SDK and Engine answer, the tags of an image
    repository and a container's inspect data. Changes nothing; runs in check mode. One module run instead of
    several: every task costs a Python start on the target.
options:
  python_modules:
    description: Modules to try to import.
    type: list
    elements: str
    default: []
  paths:
    description: Paths to look at.
    type: list
    elements: str
    default: []
  image_repository:
    description: An image repository whose tags to list ("" for none).
    type: str
    default: ""
  container:
    description: A container whose inspect data to return ("" for none).
    type: str
    default: ""
  resolve:
    description: DNS names to resolve, with the host's own addresses beside them.
    type: list
    elements: str
    default: []
  ports:
    description: TCP ports to publish at bind_address; those another program holds (not the container) are named.
    type: list
    elements: int
    default: []
  bind_address:
    description: The address the ports are to be published at.
    type: str
    default: "0.0.0.0"
  certificate:
    description: A PEM certificate whose end and names to read, with cryptography ("" for none).
    type: str
    default: ""
  read:
    description: Small files whose text to return (none secret; "" when one cannot be read).
    type: list
    elements: str
    default: []
  expect:
    description: Files (path to the SHA-1 their content should have) to compare, for files whose checksum may not
      show (a secret could be guessed from it offline); only whether each is as expected is returned.
    type: dict
    default: {}
"""

RETURN = r"""
engine: {description: A Docker Engine is installed or its socket is there., type: bool, returned: always}
cli: {description: "Docker's command-line client (docker) is on PATH.", type: bool, returned: always}
missing_modules: {description: The python_modules that could not be imported., type: list, returned: always}
python: {description: The Python that runs the role's modules there., type: str, returned: always}
debian_like: {description: Debian, Ubuntu or another Debian-like OS., type: bool, returned: always}
distribution: {description: The OS's name (os-release NAME)., type: str, returned: always}
paths: {description: "Path to {exists, dir, mode (octal string), sha1 (regular files)}.", type: dict, returned: always}
images: {description: The image_repository's REPO:TAG names (empty without Docker)., type: list, returned: always}
image_ids: {description: "Each of images to its image's ID (sha256:...).", type: dict, returned: always}
container: {description: "The container as docker_container_info gives it: {exists, container}.", type: dict,
            returned: always}
resolved: {description: Each name of resolve to its addresses (empty when it does not resolve)., type: dict,
           returned: always}
addresses: {description: The host's own addresses (with resolve)., type: list, returned: always}
certificate: {description: "The certificate's {exists, seconds_left, sans (DNS:name, IP:address)}; exists false when
              it cannot be read.", type: dict, returned: always}
texts: {description: Each path of read to its text., type: dict, returned: always}
as_expected: {description: "Each path of expect to whether it has that content and mode 0600 (its owner's alone).",
              type: dict, returned: always}
ports_taken: {description: The ports another program than the container holds there (none when Docker does not answer).,
              type: list, returned: always}
"""

import errno
import hashlib
import importlib
import os
import shutil
import socket
import stat
import subprocess
import sys

from ansible.module_utils.basic import AnsibleModule


def os_release() -> dict[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as release:
                lines = [line.strip().split("=", 1) for line in release if "=" in line]
            return {key: value.strip().strip("\"'") for key, value in lines}
        except OSError:
            continue
    return {}


def checksum(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    digest = hashlib.sha1()  # noqa: S324 (a change detector, as Ansible's stat module uses)
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def look(path: str) -> dict:
    try:
        st = os.stat(path)
    except OSError:
        return {"exists": False, "dir": False, "mode": None, "sha1": None}
    return {
        "exists": True,
        "dir": stat.S_ISDIR(st.st_mode),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "sha1": checksum(path),
    }


def as_expected(path: str, sha1: str) -> bool:
    """path holds content of this SHA-1 and only its owner may read or write it (0600)."""
    seen = look(path)
    return seen["mode"] == "0600" and seen["sha1"] == sha1


def certificate(path: str) -> dict:
    """How long the certificate has left and its names, in x509_certificate_info's form (DNS:..., IP:...)."""
    if not path:
        return {"exists": False}
    try:
        import datetime
        import ipaddress

        from cryptography import x509

        with open(path, "rb") as pem:
            cert = x509.load_pem_x509_certificate(pem.read())
        utc = datetime.timezone.utc  # noqa: UP017 (a target's Python may be 3.10: Ubuntu 22.04)
        end = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=utc)
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            names = []
        sans = [
            f"IP:{ipaddress.ip_address(name.value).compressed}"
            if isinstance(name, x509.IPAddress)
            else f"DNS:{name.value}"
            for name in names
            if isinstance(name, (x509.IPAddress, x509.DNSName))
        ]
        left = (end - datetime.datetime.now(utc)).total_seconds()
        return {"exists": True, "seconds_left": int(left), "sans": sans}
    except Exception:  # not there, not a certificate, no cryptography: not known (then made again when due)
        return {"exists": False}


def missing(modules: list[str]) -> list[str]:
    out = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            out.append(name)
    return out


def docker_look(repository: str, container: str) -> tuple[dict[str, str], dict]:
    """The repository's tags (to their image's ID) and the container's inspect data, when the Docker SDK and Engine
    answer."""
    nothing = {"exists": False, "container": None}
    if not (repository or container):
        return {}, nothing
    try:
        import docker

        client = docker.from_env()
        listed = client.images.list(name=repository) if repository else []
        images = {tag: image.id for image in listed for tag in image.tags}
        try:
            found = {"exists": True, "container": client.api.inspect_container(container)} if container else nothing
        except docker.errors.NotFound:
            found = nothing
        return images, found
    except Exception:
        return {}, {**nothing, "unknown": True}  # no SDK or no answer: whether the container exists is not known


def text(path: str) -> str:
    try:
        with open(path) as found:
            return found.read(4096)
    except (OSError, UnicodeDecodeError):
        return ""


def resolve(name: str) -> list[str]:
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(name, None)})
    except OSError:
        return []


def host_addresses() -> list[str]:
    """The host's addresses, as `hostname -I` lists them (loopback left out)."""
    try:
        return subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    except OSError:
        return []


def ports_taken(ports: list[int], address: str, container: dict) -> list[int]:
    """Those of ports that another program than the container (which may publish them already) holds at address
    (Docker's form: an IPv6 address in brackets). None when Docker could not say what the container publishes."""
    if container.get("unknown"):
        return []
    bindings = ((container.get("container") or {}).get("HostConfig") or {}).get("PortBindings") or {}
    ours = {int(b["HostPort"]) for found in bindings.values() for b in found or [] if b.get("HostPort")}
    address = address.strip("[]")
    out = []
    for port in ports:
        if port in ours:
            continue
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            try:
                probe.bind((address, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    out.append(port)
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "python_modules": {"type": "list", "elements": "str", "default": []},
            "paths": {"type": "list", "elements": "str", "default": []},
            "image_repository": {"type": "str", "default": ""},
            "container": {"type": "str", "default": ""},
            "resolve": {"type": "list", "elements": "str", "default": []},
            "ports": {"type": "list", "elements": "int", "default": []},
            "bind_address": {"type": "str", "default": "0.0.0.0"},  # noqa: S104 - only probed, as Docker publishes
            "certificate": {"type": "str", "default": ""},
            "read": {"type": "list", "elements": "str", "default": []},
            "expect": {"type": "dict", "default": {}, "no_log": True},
        },
        supports_check_mode=True,
    )
    release = os_release()
    images, container = docker_look(module.params["image_repository"], module.params["container"])
    module.exit_json(
        changed=False,
        engine=bool(shutil.which("dockerd")) or os.path.exists("/var/run/docker.sock"),
        cli=bool(shutil.which("docker")),
        missing_modules=missing(module.params["python_modules"]),
        python=sys.executable,
        debian_like=release.get("ID") == "debian" or "debian" in release.get("ID_LIKE", "").split(),
        distribution=release.get("NAME", "an unknown OS"),
        paths={path: look(path) for path in module.params["paths"]},
        images=list(images),
        image_ids=images,
        container=container,
        resolved={name: resolve(name) for name in module.params["resolve"]},
        addresses=host_addresses() if module.params["resolve"] else [],
        ports_taken=ports_taken(module.params["ports"], module.params["bind_address"], container),
        certificate=certificate(module.params["certificate"]),
        texts={path: text(path) for path in module.params["read"]},
        as_expected={path: as_expected(path, sha1) for path, sha1 in module.params["expect"].items()},
    )


if __name__ == "__main__":
    main()
