"""What every login from elsewhere (OpenID Connect, GitHub, GitLab, LDAP) shares: the person allowed in gets a
Linux account at their first login, made as the users list makes one (a UID of its own, a private home, no
password), under a name by the list's rule; a name stays with the identity that first took it; and whoever loses
the right to log in (out of the allowed groups, locked in the list, gone at the provider) loses their running
server at the next refresh, not only their next login."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import tempfile
from pathlib import Path

from tornado import web

from quickjh.accounts import read_accounts, uid_range
from quickjh.nofollow import end_processes
from quickjh.pages import HANDLERS
from quickjh.persistence import listed
from quickjh.rules import NAME, NAME_RULE, RESERVED, is_human_uid
from quickjh.settings import state_dir

ADD_USER = ["/usr/local/sbin/quickjh-users", "add"]


def name_problem(name: str) -> str | None:
    """Why a provider's name cannot be a hub user's Linux name (the list's rule), or None."""
    if not NAME.fullmatch(name):
        return f"{name!r} is not a valid Linux user name ({NAME_RULE}); ask an admin to map it"
    if name in RESERVED:
        return f"{name!r} is a name the hub's image uses for itself"
    account = read_accounts().get(name)
    if account is not None and not is_human_uid(account.uid, uid_range()):
        return f"{name!r} is a system account of the hub's image"
    return None


def identities_file() -> Path:
    return state_dir() / "identities.json"


def bind_identity(name: str, identity: str, path: Path | None = None) -> str | None:
    """Keep name with the identity that logged in with it first (the provider's own id, e.g. OIDC's sub): a name
    another identity holds is refused, so a renamed or re-registered account never inherits a home. Returns why
    not, or None."""
    path = path or identities_file()
    known = json.loads(path.read_text()) if path.exists() else {}
    if known.get(name, identity) != identity:
        return f"{name!r} belongs to another identity of the provider than the one logging in"
    if name not in known:
        known[name] = identity
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as new:
            json.dump(known, new, indent=1, sort_keys=True)
        os.chmod(new.name, 0o600)
        os.replace(new.name, path)
    return None


def locked(name: str) -> bool:
    """Locked in the users list (quickjh_users' locked: true): the account's expiry date has passed."""
    account = read_accounts().get(name)
    return account is not None and account.expired


async def make_account(name: str) -> None:
    """The account of a person allowed in, as the users list makes one (quickjh-users add: no password)."""
    process = await asyncio.create_subprocess_exec(
        *ADD_USER, name, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        said, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        raise
    if process.returncode != 0:
        raise ValueError(f"no account for {name}: {said.decode(errors='replace').strip()}")


def refused(why: str) -> web.HTTPError:
    return web.HTTPError(403, f"quickjh: {why}")


class People:
    """Mixed into each login kind's authenticator (before the library's class)."""

    def get_handlers(self, app):
        """The library's pages, then quickjh's token API (an API token is made by its owner only)."""
        return super().get_handlers(app) + [h for h in HANDLERS if h[0] != r"/password"]

    identity_claim = "sub"  # the key of the provider's user info that never changes for a person

    def identity(self, auth_model: dict) -> str:
        info = auth_model.get("auth_state", {}).get(self.user_auth_state_key, {})
        return f"{type(self).__name__}:{info.get(self.identity_claim, '')}"

    async def update_auth_model(self, auth_model):
        """At each login and refresh: the name by the list's rule, the name's own identity, not locked; an admin of
        the users list is a hub admin (besides the provider's admin groups)."""
        parent = getattr(super(), "update_auth_model", None)  # OAuthenticator's; LDAPAuthenticator has none
        if parent is not None:
            auth_model = await parent(auth_model)
        name = auth_model["name"]
        problem = name_problem(name) or bind_identity(name, self.identity(auth_model))
        if problem is None and locked(name):
            problem = f"{name} is locked in the hub's users list"
        if problem:
            raise refused(problem)
        if name in listed("admins"):
            auth_model["admin"] = True
        return auth_model

    async def check_allowed(self, username, auth_model=None):
        """The users list's present people are let in besides the provider's allowed groups. The list is the one
        the last sync kept, read here at each login and refresh: changing it restarts nothing."""
        if username in listed("people"):
            return True
        allowed = super().check_allowed(username, auth_model)
        return await allowed if inspect.isawaitable(allowed) else allowed

    async def add_user(self, user):
        """At a first login (and for every known user at the hub's start): the Linux account, when missing."""
        if name_problem(user.name):
            raise ValueError(name_problem(user.name))
        if user.name not in read_accounts():
            await make_account(user.name)
        return super().add_user(user)

    async def refresh_user(self, user, handler=None, **kwargs):
        """Asked again every quickjh_auth_refresh_seconds and before each start: out of the allowed groups, locked,
        or refused by the provider ends the session, the tokens and the running server."""
        try:
            model = await super().refresh_user(user, handler, **kwargs)
        except web.HTTPError:
            model = False
        if isinstance(model, dict) and not await self.check_allowed(user.name, model):
            model = False
        if model is False:
            await end_server(user)
        return model


async def end_server(user) -> None:
    """The user's servers stopped, as the admin page stops one, and every process of theirs in the hub's container
    ended (one they started to outlive the server too)."""
    for name, spawner in list(user.spawners.items()):
        if spawner.active:
            await user.stop(name)
    account = read_accounts().get(user.name)
    if account is not None and is_human_uid(account.uid, uid_range()):
        await asyncio.get_running_loop().run_in_executor(None, end_processes, account.uid)
