#!/usr/bin/python
"""Ansible module quickjh_wait: (restart a container, then) wait until a URL answers 200, asking every tenth of a
second."""

from __future__ import annotations

DOCUMENTATION = r"""
module: quickjh_wait
short_description: Wait until a URL answers 200
description:
  - With restart, first restarts that container (docker restart; in check mode only says it would). Then asks the
    URL every interval seconds, in one module run, until it answers 200 or timeout seconds have passed.
    The certificate is not checked (only whether the hub answers) and no proxy is used (the URL is the target's own).
    ansible.builtin.uri with until/retries costs a module run per try (about 0.9 s here): the hub was found up to
    2 s after it answered; a restart task of its own cost another module run.
options:
  url:
    description: The URL to ask.
    type: str
    required: true
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 120
  interval:
    description: Seconds between tries.
    type: float
    default: 0.1
  restart:
    description: A container to restart before waiting ("" for none); the module then reports a change.
    type: str
    default: ""
"""

RETURN = r"""
status: {description: The last answer's HTTP status (-1 when there was none)., type: int, returned: always}
error: {description: Why the last try was not a 200 ("" when it was)., type: str, returned: always}
seconds: {description: How long it waited., type: float, returned: always}
restart_failed: {description: The restart failed (msg says why); nothing was waited for., type: bool, returned: then}
"""

import http.client
import ssl
import subprocess
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule


def ask(opener: urllib.request.OpenerDirector, url: str, timeout: float) -> tuple[int, str]:
    try:
        with opener.open(url, timeout=timeout) as answer:
            return answer.status, ""
    except urllib.error.HTTPError as error:
        return error.code, str(error)
    except (OSError, http.client.HTTPException) as error:  # refused, reset, TLS not up yet, timed out
        return -1, str(error)


def wait(url: str, timeout: float, interval: float = 0.1) -> tuple[int, str, float]:
    """Ask url until it answers 200 or timeout seconds have passed: (the last status, its error, seconds waited)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # whether the hub answers, not who it is (self-signed by default)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    start = time.monotonic()
    while True:
        status, error = ask(opener, url, max(0.1, min(5.0, timeout - (time.monotonic() - start))))
        waited = time.monotonic() - start
        if status == 200 or waited >= timeout:
            return status, error, round(waited, 2)
        time.sleep(interval)


def restart(container: str) -> str:
    """docker restart the container: "" when it did, else why not."""
    done = subprocess.run(["docker", "restart", container], capture_output=True, text=True, check=False)
    return "" if done.returncode == 0 else f"docker restart {container} failed: {done.stderr.strip()}"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 120},
            "interval": {"type": "float", "default": 0.1},
            "restart": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    container = module.params["restart"]
    if container and module.check_mode:
        module.exit_json(changed=True, status=-1, error="", seconds=0.0)
    said = restart(container) if container else ""
    if said:
        module.fail_json(msg=said, status=-1, error=said, seconds=0.0, restart_failed=True)
    status, error, seconds = wait(module.params["url"], module.params["timeout"], module.params["interval"])
    result = {"changed": bool(container), "status": status, "error": error, "seconds": seconds}
    if status != 200:
        module.fail_json(msg=f"{module.params['url']} did not answer 200 within {seconds} s: {error}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
