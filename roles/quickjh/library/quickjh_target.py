#!/usr/bin/python
"""Ansible module quickjh_target: what the target has for quickjh, in one look (read only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: quickjh_target
short_description: What a quickjh target has (a Docker Engine, Python modules, files' checksums)
description:
  - Reads, with the Python that runs Ansible's modules on the target, whether a Docker Engine is there (dockerd on
    PATH or its socket), which of the given Python modules that Python cannot import, the OS (os-release), and the
    SHA-1 of given files. Changes nothing; runs in check mode.
options:
  python_modules:
    description: Modules to try to import.
    type: list
    elements: str
    default: []
  checksums:
    description: Paths whose SHA-1 to return (null for a path that is not a regular file).
    type: list
    elements: str
    default: []
"""

RETURN = r"""
engine: {description: A Docker Engine is installed or its socket is there., type: bool, returned: always}
missing_modules: {description: The python_modules that could not be imported., type: list, returned: always}
python: {description: The Python that runs the role's modules there., type: str, returned: always}
debian_like: {description: Debian, Ubuntu or another Debian-like OS., type: bool, returned: always}
distribution: {description: The OS's name (os-release NAME)., type: str, returned: always}
checksums: {description: Path to SHA-1 (null when not a regular file)., type: dict, returned: always}
"""

import hashlib
import importlib
import os
import shutil
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


def missing(modules: list[str]) -> list[str]:
    out = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            out.append(name)
    return out


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "python_modules": {"type": "list", "elements": "str", "default": []},
            "checksums": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    release = os_release()
    module.exit_json(
        changed=False,
        engine=bool(shutil.which("dockerd")) or os.path.exists("/var/run/docker.sock"),
        missing_modules=missing(module.params["python_modules"]),
        python=sys.executable,
        debian_like=release.get("ID") == "debian" or "debian" in release.get("ID_LIKE", "").split(),
        distribution=release.get("NAME", "an unknown OS"),
        checksums={path: checksum(path) for path in module.params["checksums"]},
    )


if __name__ == "__main__":
    main()
