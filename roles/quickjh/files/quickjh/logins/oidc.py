"""quickjh_auth: oidc, any OpenID Connect provider by its issuer (the role reads its discovery document): its login
page, the claim that names the user, the claim that lists groups (allowed and admin groups)."""

from __future__ import annotations

from pathlib import Path

from oauthenticator.generic import GenericOAuthenticator

from quickjh.logins.oauth import configure_oauth
from quickjh.logins.people import People


class QuickjhOIDCAuthenticator(People, GenericOAuthenticator):
    identity_claim = "sub"


def configure(c, settings: dict, state: Path) -> None:
    auth, oidc = settings["auth"], settings["auth"]["oidc"]
    c.JupyterHub.authenticator_class = "quickjh.logins.oidc.QuickjhOIDCAuthenticator"
    section = c.QuickjhOIDCAuthenticator
    configure_oauth(c, section, settings, state)
    section.login_service = oidc["name"]
    section.authorize_url = oidc["authorize_url"]
    section.token_url = oidc["token_url"]
    section.userdata_url = oidc["userinfo_url"]
    if oidc["logout_url"]:
        section.logout_redirect_url = oidc["logout_url"]
    section.scope = list(oidc["scopes"])
    section.username_claim = oidc["username_claim"]
    section.manage_groups = True
    section.auth_state_groups_key = f"oauth_user.{oidc['groups_claim']}"
    section.allowed_groups = set(auth["allowed_groups"])
    section.admin_groups = set(auth["admin_groups"])
