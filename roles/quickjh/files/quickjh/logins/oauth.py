"""What the OAuth login kinds (oidc, github, gitlab) set alike: the client, the callback under the hub's public
address, the tokens kept encrypted (auth_state, with a key of the state volume's) so each refresh asks the provider
again, who is allowed and who is admin."""

from __future__ import annotations

from pathlib import Path

CRYPT_KEY = "jupyterhub_crypt_key"  # made by quickjh-start on the state volume, root's alone


def configure_oauth(c, section, settings: dict, state: Path) -> None:
    """section: the authenticator class's part of the config (e.g. c.QuickjhOIDCAuthenticator)."""
    auth = settings["auth"]
    section.client_id = auth["client_id"]
    section.client_secret = settings["secrets"]["oauth_client_secret"]
    section.oauth_callback_url = f"{auth['public_url']}hub/oauth_callback"
    c.Authenticator.enable_auth_state = True
    key = state / CRYPT_KEY
    if key.exists():
        c.CryptKeeper.keys = [bytes.fromhex(key.read_text().strip())]
    set_refresh(c, auth)


def set_refresh(c, auth: dict) -> None:
    """Every login kind but pam: who may log in is asked of the provider again every quickjh_auth_refresh_seconds
    (and before each start); a refusal ends the session, its tokens and the server."""
    c.Authenticator.allow_existing_users = False  # who once logged in is not allowed for that alone
    # The users list lets people in besides the groups, read at each login (people.py), not from this config: without
    # this JupyterHub warns at each start that nobody may log in.
    c.Authenticator.any_allow_config = True
    c.Authenticator.auth_refresh_age = auth["refresh_seconds"]
    c.Authenticator.refresh_pre_spawn = True
    c.Authenticator.auth_refresh_strict = True
