"""quickjh_auth: gitlab, members of GitLab groups (gitlab.com or your own): quickjh_allowed_groups lists group paths.
GitLab's OAuth user info names no groups, so admins come from the users list (admin: true); for admins by group,
use quickjh_auth oidc against GitLab's own OpenID Connect (issuer https://GITLAB)."""

from __future__ import annotations

from pathlib import Path

from oauthenticator.gitlab import GitLabOAuthenticator

from quickjh.logins.oauth import configure_oauth
from quickjh.logins.people import People


class QuickjhGitLabAuthenticator(People, GitLabOAuthenticator):
    identity_claim = "id"


def configure(c, settings: dict, state: Path) -> None:
    auth = settings["auth"]
    c.JupyterHub.authenticator_class = "quickjh.logins.gitlab.QuickjhGitLabAuthenticator"
    section = c.QuickjhGitLabAuthenticator
    configure_oauth(c, section, settings, state)
    section.gitlab_url = auth["gitlab_url"]
    section.scope = ["read_user"]
    section.allowed_gitlab_groups = set(auth["allowed_groups"])
