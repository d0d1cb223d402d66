"""quickjh_auth: github, a GitHub (or GitHub Enterprise) organisation's members: quickjh_allowed_groups lists
organisations or ORG:TEAM, quickjh_admin_groups teams (ORG:TEAM), read from the teams GitHub says the person is in."""

from __future__ import annotations

from pathlib import Path

from oauthenticator.github import GitHubOAuthenticator

from quickjh.logins.oauth import configure_oauth
from quickjh.logins.people import People


def teams(auth_state: dict) -> set[str]:
    """The person's teams as ORG:TEAM (GitHub's /user/teams, kept in the auth state)."""
    return {f"{t['organization']['login']}:{t['slug']}" for t in auth_state.get("teams") or []}


class QuickjhGitHubAuthenticator(People, GitHubOAuthenticator):
    identity_claim = "id"


def configure(c, settings: dict, state: Path) -> None:
    auth = settings["auth"]
    c.JupyterHub.authenticator_class = "quickjh.logins.github.QuickjhGitHubAuthenticator"
    section = c.QuickjhGitHubAuthenticator
    configure_oauth(c, section, settings, state)
    section.github_url = auth["github_url"]
    section.scope = ["read:org"]  # private memberships too
    section.allowed_organizations = set(auth["allowed_groups"])
    section.populate_teams_in_auth_state = True
    section.manage_groups = True
    section.auth_state_groups_key = teams
    section.admin_groups = set(auth["admin_groups"])
