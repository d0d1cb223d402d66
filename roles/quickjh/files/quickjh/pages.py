"""What quickjh adds to the hub's own pages and API (the authenticator registers these handlers, which JupyterHub
puts before its own): a page where every user changes their own password, in every mode, and the token API that
makes a token only for its owner."""

from __future__ import annotations

import asyncio
import subprocess

from jupyterhub.apihandlers.users import UserTokenListAPIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.user import User
from tornado import web

from quickjh.accountlock import end_user_holders
from quickjh.rules import password_problem


def set_password(name: str, password: str) -> None:
    """chpasswd as root, with no user's own passwd holding the account files' lock (the saver keeps the change
    across re-creation within half a second)."""
    end_user_holders()
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True, timeout=30)


class PasswordHandler(BaseHandler):
    """/hub/password: the current password, then the new one twice. Users' terminals run with no new privileges
    (and, in docker mode, with account files of their own), so `passwd` there cannot change the hub's password."""

    @web.authenticated
    async def get(self):
        self.finish(await self.render_template("password.html", message="", done=False))

    @web.authenticated
    async def post(self):
        name = self.current_user.name
        current, new, again = (self.get_body_argument(key, "") for key in ("current", "new", "again"))
        problem = "the two new passwords differ" if new != again else None
        problem = problem or password_problem(name, new, self.authenticator.min_password_length)
        if problem is None and not await self.authenticator.check_password(name, current):
            problem = "the current password is not right"
        if problem is None:
            await asyncio.get_running_loop().run_in_executor(None, set_password, name, new)
            self.log.info("quickjh: %s changed their password on the password page", name)
        message = f"Not changed: {problem}." if problem else "Your password is changed."
        self.set_status(400 if problem else 200)
        self.finish(await self.render_template("password.html", message=message, done=problem is None))


class OwnTokensOnly(UserTokenListAPIHandler):
    """POST /hub/api/users/NAME/tokens: only NAME may make a token of NAME's. JupyterHub lets admins make tokens for
    anyone, which would outlive their admin rights (a token of alice's stays alice's when its maker is demoted)."""

    async def post(self, user_name):
        requester = self.current_user
        if requester is not None and not (isinstance(requester, User) and requester.name == user_name):
            raise web.HTTPError(403, "quickjh: an API token is made by its owner only")
        return await super().post(user_name)


HANDLERS = [(r"/password", PasswordHandler), (r"/api/users/([^/]+)/tokens", OwnTokensOnly)]
