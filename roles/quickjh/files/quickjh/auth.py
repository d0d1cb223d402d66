"""Logging in to the hub with the container's Linux accounts (PAM), by the rule of quickjh.accounts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pamela
from jupyterhub.auth import PAMAuthenticator
from jupyterhub.handlers.base import BaseHandler
from tornado import web
from traitlets import Integer, Unicode

from quickjh.accounts import login_problem
from quickjh.pages import HANDLERS

# JupyterHub reads a handler's _token_authenticated when a refresh fails, but sets it only on token logins: a browser
# (cookie) request of a locked account then got "500 Internal Server Error" instead of 403 or the login page.
BaseHandler._token_authenticated = False


class QuickjhAuthenticator(PAMAuthenticator):
    """Every human account (UID_MIN..UID_MAX) with a usable password logs in, however it was made (the list,
    quickjh-adduser, useradd and passwd, adduser); PAM checks the password. Members of sudo are hub admins."""

    add_user_hint = Unicode(
        "in an admin's terminal: sudo quickjh-adduser {name}",
        help="Where an admin adds an account in this mode ({name}: the user's), said when a name has none.",
    ).tag(config=True)
    min_password_length = Integer(8, help="Shortest new password the password page accepts.").tag(config=True)
    otp_users = Unicode("", help="With request_otp: pam_oath's file of users' secrets (root's alone).").tag(config=True)

    def get_handlers(self, app):
        """The login page, then quickjh's password page and token API (before JupyterHub's own)."""
        return super().get_handlers(app) + HANDLERS

    def normalize_username(self, username):
        """Linux names are case-sensitive, and PAM checked this very name: the hub keeps it as typed."""
        return username

    async def authenticate(self, handler, data):
        """With quickjh_otp, a user without a secret is told so (PAM would only say "invalid"); the code goes to
        pam_oath after the password, which refuses a wrong, missing or used one."""
        if self.request_otp and not self.has_otp_secret(data.get("username", "")):
            raise web.HTTPError(
                403,
                f"{data.get('username', '')} has no one-time code secret yet: an admin's next playbook run makes one",
            )
        return await super().authenticate(handler, data)

    def has_otp_secret(self, name: str) -> bool:
        try:
            lines = Path(self.otp_users).read_text().splitlines()
        except OSError:
            return False
        return any(len(fields) > 1 and fields[1] == name for fields in (line.split() for line in lines))

    async def check_password(self, name: str, password: str) -> bool:
        """The password alone (PAM service quickjh-password: no one-time code), for the password page."""

        def check() -> bool:
            try:
                pamela.authenticate(name, password, service="quickjh-password")
            except pamela.PAMError:
                return False
            return True

        return await asyncio.get_running_loop().run_in_executor(None, check)

    def check_allowed(self, username, authentication=None):
        return login_problem(username) is None

    async def refresh_user(self, user, handler=None):
        """Asked again at least every minute and before each server start: an account locked (passwd -l), expired
        or removed since the login loses its session and its tokens."""
        return login_problem(user.name) is None

    async def add_user(self, user):
        """Called at each login, for every known user at the hub's start, and by the admin page's "Add Users":
        a name without an account that can log in is refused (and forgotten by the hub at its next start)."""
        problem = login_problem(user.name)
        if problem:
            hint = self.add_user_hint.format(name=user.name)
            raise ValueError(f"{problem}. Add users to quickjh_users and run the playbook, or {hint}")
        await super().add_user(user)
