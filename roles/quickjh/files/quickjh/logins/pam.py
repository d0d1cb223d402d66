"""quickjh_auth: pam (the default), the hub container's Linux accounts and their passwords (quickjh.auth); with
quickjh_otp, a one-time code after the password (PAM service jupyterhub: pam_oath, each user's secret in the state
volume's root-only otp folder)."""

from __future__ import annotations

from pathlib import Path


def configure(c, settings: dict, state: Path) -> None:
    """The rule of who may log in is asked again at least every minute and before each server start, so a locked or
    removed account loses its session and its tokens."""
    auth = settings["auth"]
    c.JupyterHub.authenticator_class = "quickjh.auth.QuickjhAuthenticator"
    c.Authenticator.any_allow_config = True  # the allow rule is check_allowed's
    c.Authenticator.delete_invalid_users = True  # users removed with userdel leave the hub too
    c.Authenticator.auth_refresh_age = 60
    c.Authenticator.refresh_pre_spawn = True
    c.Authenticator.auth_refresh_strict = True
    c.PAMAuthenticator.admin_groups = {"sudo"}
    c.QuickjhAuthenticator.min_password_length = settings["min_password_length"]
    if auth["otp"]:
        c.QuickjhAuthenticator.service = "jupyterhub"  # /etc/pam.d/jupyterhub: the password, then pam_oath
        c.QuickjhAuthenticator.request_otp = True
        c.QuickjhAuthenticator.otp_prompt = "One-time code (your authenticator app's)"
        c.QuickjhAuthenticator.otp_users = str(state / "otp" / "users.oath")
