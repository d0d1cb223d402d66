"""A server extension of every user's server with quickjh_collaboration: a visitor whose access ends (a share
revoked, the visitor removed or locked) loses their open websockets within seconds.

JupyterHub checks a visitor once per request through HubOAuth's cache (quickjh shortens it to a few seconds), and a
websocket only when it opens: without this, a revoked teammate's open kernel, terminal and notebook stay theirs.
Every websocket opened by someone other than the server's owner is remembered with its token; every INTERVAL
seconds each distinct visitor's token is asked about again (no cache), and one that no longer carries this server's
access has its websockets closed (1008) and the cache emptied, so a reconnect and any REST call are refused. The
owner's own websockets cost nothing: they are not watched (an owner removed or locked loses the whole server).
A hub that does not answer closes nothing: it is asked again next time.
"""

from __future__ import annotations

import os
import weakref

from tornado.ioloop import PeriodicCallback
from tornado.websocket import WebSocketHandler

INTERVAL = 2.0  # seconds between checks of the visitors' tokens
CLOSED = (1008, "access to this server was revoked")


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp) -> None:
    provider = serverapp.identity_provider
    hub_auth = getattr(provider, "hub_auth", None)
    if hub_auth is None:  # not started by JupyterHub
        return
    owner = os.environ.get("JUPYTERHUB_USER", "")
    visitors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # websocket handler -> token
    get_user = provider.get_user

    async def remembering_get_user(handler):
        user = await get_user(handler)
        if user is not None and isinstance(handler, WebSocketHandler) and user.username != owner:
            token = hub_auth.get_token(handler)
            if token:
                visitors[handler] = token
        return user

    provider.get_user = remembering_get_user
    running = False

    async def check() -> None:
        nonlocal running
        if running or not visitors:
            return
        running = True
        try:
            await close_revoked(serverapp, hub_auth, visitors)
        finally:
            running = False

    PeriodicCallback(check, INTERVAL * 1000).start()


async def close_revoked(serverapp, hub_auth, visitors: weakref.WeakKeyDictionary) -> None:
    by_token: dict[str, list] = {}
    for handler, token in list(visitors.items()):
        if getattr(handler, "_on_close_called", False):  # closed by now
            visitors.pop(handler, None)
        else:
            by_token.setdefault(token, []).append(handler)
    revoked = False
    for token, handlers in by_token.items():
        try:
            model = await hub_auth.user_for_token(token, use_cache=False, sync=False)
        except Exception as err:  # the hub restarting: ask again next time, close nothing
            serverapp.log.warning("quickjh.sharewatch: the hub did not answer: %s", err)
            continue
        if model is not None and hub_auth.check_scopes(hub_auth.access_scopes, model):
            continue
        revoked = True
        name = model["name"] if model else "a removed user"
        serverapp.log.warning("quickjh.sharewatch: %s lost access: %d websocket(s) closed", name, len(handlers))
        for handler in handlers:
            visitors.pop(handler, None)
            handler.close(*CLOSED)
    if revoked:
        hub_auth.cache.clear()  # no cached "allowed" for the reconnect or a REST call
