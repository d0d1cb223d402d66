"""The hub's REST API as the accounts program uses it (inside the hub's container, under quickjh_base_url) to change
what the hub holds: admin flags, groups, removed users, shares. JupyterHub revokes no admin by itself, so the sync
tells it. Calls are made within access(), with a token made for that run alone (quickjh.hubdb) at its first call: a
run that tells the hub nothing makes none. What the hub holds is read from its database (quickjh.hubdb)."""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from quickjh.hubdb import run_token

HUB = f"http://127.0.0.1:8081{os.environ.get('QUICKJH_BASE_URL', '/')}hub"
HUB_API = f"{HUB}/api"
_runs: list[contextlib.ExitStack] = []  # while access() lasts: what holds the run's token, once made
_token: list[str] = []


@contextlib.contextmanager
def access() -> Iterator[None]:
    with contextlib.ExitStack() as run:
        _runs.append(run)
        try:
            yield
        finally:
            _runs.remove(run)
            _token.clear()


def token() -> str:
    """The run's token, made at the first call of the run."""
    if not _runs:
        raise OSError("no access to the hub's API outside quickjh.hubapi.access()")
    if not _token:
        _token.append(_runs[-1].enter_context(run_token()))
    return _token[-1]


def health() -> None:
    """The hub's health check answers (no token needed); URLError or OSError when it does not."""
    with urllib.request.urlopen(f"{HUB}/health", timeout=10):  # noqa: S310 (the hub's own http:// address)
        pass


def hub_api(method: str, path: str, body: dict | None = None) -> object:
    token_ = token()
    request = urllib.request.Request(  # noqa: S310 (HUB_API: the hub's own http:// address in the container)
        HUB_API + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"token {token_}",
            "Content-Type": "application/json",
            "Accept": "application/jupyterhub-pagination+json",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310 (as above)
        text = reply.read()
    return json.loads(text) if text else None


def every(path: str) -> list[dict]:
    """Every item of a paginated list of the API (path without query)."""
    found: list[dict] = []
    while True:
        page = hub_api("GET", f"{path}?limit=200&offset={len(found)}")
        items = page["items"] if isinstance(page, dict) else page
        found += items
        if not items or not isinstance(page, dict) or not page["_pagination"].get("next"):
            return found


def set_hub_groups(
    todo: dict[str, set[str] | None], known: dict[str, set[str]], users: set[str], admins: set[str]
) -> None:
    """Each group to its members (None: the group goes, and every share with it); known: the hub's groups now,
    users: the hub's users (a member it does not know yet is added to it first, as the admin page does, an admin
    of the list as an admin)."""
    new = set().union(*(m for m in todo.values() if m)) - users
    for admin in (True, False):
        if {n for n in new if (n in admins) == admin}:
            hub_api("POST", "/users", {"usernames": sorted(n for n in new if (n in admins) == admin), "admin": admin})
    for name, members in todo.items():
        if members is None:
            hub_api("DELETE", f"/groups/{name}")
            continue
        if name not in known:
            hub_api("POST", f"/groups/{name}")
        have = known.get(name, set())
        if members - have:
            hub_api("POST", f"/groups/{name}/users", {"users": sorted(members - have)})
        if have - members:
            hub_api("DELETE", f"/groups/{name}/users", {"users": sorted(have - members)})


def end_shares(name: str) -> None:
    """Every share of the user's server, and every share they received, revoked."""
    try:
        hub_api("DELETE", f"/shares/{name}/")
    except urllib.error.HTTPError as err:
        if err.code != 404:  # no server, no shares
            raise
    for share in every(f"/users/{name}/shared"):
        server = share["server"]
        hub_api("DELETE", f"/users/{name}/shared/{server['user']['name']}/{server['name']}")


def remove_from_hub(names: list[str]) -> None:
    for name in names:
        for attempt in range(30):  # the hub stops the user's server first, and may ask to wait for it
            try:
                hub_api("DELETE", f"/users/{name}")
                break
            except urllib.error.HTTPError as err:
                if err.code != 400 or attempt == 29:
                    raise
                time.sleep(1)


def stop_server(name: str) -> None:
    """Ask the hub to stop the user's server (nothing to do when none runs)."""
    try:
        hub_api("DELETE", f"/users/{name}/server")
    except urllib.error.HTTPError as err:
        if err.code not in (400, 404):
            raise


def set_hub_admin(flags: dict[str, bool]) -> None:
    for name, admin in flags.items():
        hub_api("PATCH", f"/users/{name}", {"admin": admin})
        if not admin:  # its processes still hold the sudo group: stop them
            stop_server(name)
