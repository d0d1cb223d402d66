"""quickjh_auth: each login kind is a module that sets its authenticator (quickjh.logins.KIND), what every kind from
elsewhere shares (names by the list's rule, a name kept by its identity), one-time code secrets, and the checks of
the role's login variables."""

from __future__ import annotations

import base64
import copy
import ssl

import pytest
from traitlets.config import Config

from quickjh import otp
from quickjh.hubconfig import configure
from quickjh.logins import github, people
from quickjh.plan import plan
from test_accounts import account, home
from test_checks import problems
from test_hubconfig import SETTINGS


def configured(tmp_path, kind: str, **auth) -> Config:
    settings = copy.deepcopy(SETTINGS)
    settings["auth"].update(kind=kind, **auth)
    c = Config()
    configure(c, settings, tmp_path)
    return c


@pytest.mark.parametrize("kind", ["pam", "oidc", "github", "gitlab", "ldap"])
def test_each_login_kind_sets_an_authenticator_class_that_imports(tmp_path, kind):
    import importlib

    path = configured(tmp_path, kind).JupyterHub.authenticator_class
    module, name = path.rsplit(".", 1)
    assert isinstance(getattr(importlib.import_module(module), name), type)


def test_oidc_uses_the_providers_endpoints_the_secret_file_and_a_callback_under_the_public_url(tmp_path):
    (tmp_path / "jupyterhub_crypt_key").write_text("ab" * 32)
    c = configured(tmp_path, "oidc", allowed_groups=["jupyter"], admin_groups=["jupyter-admins"])
    section = c.QuickjhOIDCAuthenticator
    assert section.oauth_callback_url == "https://hub.example.org/hub/oauth_callback"
    assert (section.token_url, section.userdata_url) == (
        "https://id.example.org/token",
        "https://id.example.org/userinfo",
    )
    assert section.client_secret == "s3cret"
    assert section.allowed_groups == {"jupyter"} and section.admin_groups == {"jupyter-admins"}
    assert "allowed_users" not in section and "admin_users" not in section  # the list: people.py, at each login
    assert c.Authenticator.any_allow_config
    assert section.auth_state_groups_key == "oauth_user.groups" and section.manage_groups
    assert c.Authenticator.enable_auth_state and c.CryptKeeper["keys"] == [bytes.fromhex("ab" * 32)]
    assert (c.Authenticator.auth_refresh_age, c.Authenticator.auth_refresh_strict) == (300, True)


def test_ldap_checks_the_servers_certificate_and_takes_port_and_tls_from_the_url(tmp_path):
    c = configured(tmp_path, "ldap", admin_groups=["cn=admins,dc=example,dc=org"])
    section = c.QuickjhLDAPAuthenticator
    assert (section.server_address, section.server_port, section.tls_strategy) == (
        "ldap.example.org",
        389,
        "before_bind",
    )
    assert section.tls_kwargs["validate"] == ssl.CERT_REQUIRED
    assert "cn=admins,dc=example,dc=org" in section.allowed_groups  # searched, so admins are found (and allowed)
    settings = copy.deepcopy(SETTINGS)
    settings["auth"].update(kind="ldap", ldap=dict(settings["auth"]["ldap"], url="ldaps://ad.example.org:3269"))
    c = Config()
    configure(c, settings, tmp_path)
    assert (c.QuickjhLDAPAuthenticator.server_port, c.QuickjhLDAPAuthenticator.tls_strategy) == (3269, "on_connect")


def test_pam_with_otp_asks_for_the_code_through_its_own_pam_service(tmp_path):
    assert "request_otp" not in configured(tmp_path, "pam").QuickjhAuthenticator
    section = configured(tmp_path, "pam", otp=True).QuickjhAuthenticator
    assert section.request_otp and section.service == "jupyterhub"
    assert section.otp_users == str(tmp_path / "otp" / "users.oath")


def test_the_hubs_pages_know_the_login_kind(tmp_path):
    assert configured(tmp_path, "oidc").JupyterHub.template_vars["quickjh_login"] == "oidc"


def test_githubs_teams_are_groups_as_org_colon_team():
    state = {"teams": [{"organization": {"login": "acme"}, "slug": "data"}]}
    assert github.teams(state) == {"acme:data"}


@pytest.mark.parametrize(
    "name,message",
    [("alice.smith", "is not a valid Linux user name"), ("root", "a name the hub's image uses for itself")],
)
def test_a_providers_name_must_follow_the_lists_rule(name, message, monkeypatch, tmp_path):
    monkeypatch.setattr(people, "read_accounts", dict)
    assert message in people.name_problem(name)


def test_a_name_stays_with_the_identity_that_first_logged_in_with_it(tmp_path):
    path = tmp_path / "identities.json"
    assert people.bind_identity("alice", "oidc:1", path) is None
    assert people.bind_identity("alice", "oidc:1", path) is None
    assert "another identity" in people.bind_identity("alice", "oidc:2", path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_each_user_gets_one_secret_kept_across_runs_and_a_removed_users_goes(tmp_path):
    path = tmp_path / "otp" / "users.oath"
    made = otp.keep_secrets(["ann", "bob"], path)
    assert set(made) == {"ann", "bob"} and all(len(bytes.fromhex(s)) == 20 for s in made.values())
    # pam_oath rewrites a line after each login: kept as it is
    path.write_text(path.read_text().replace(f"{made['ann']}\n", f"{made['ann']}\t0\t123456\t2026-12-06T10:00:00L\n"))
    assert otp.keep_secrets(["ann"], path) == {}
    assert [line.split()[1] for line in path.read_text().splitlines()] == ["ann"]
    assert "123456" in path.read_text() and oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_an_enrolment_is_an_otpauth_uri_of_the_base32_secret_and_its_qr_code():
    out = otp.enrolment("ann", "00" * 20, "hub.example.org")
    assert out["uri"].startswith("otpauth://totp/hub.example.org%3Aann?secret=")
    assert f"secret={base64.b32encode(bytes(20)).decode().rstrip('=')}&" in out["uri"]
    assert out["svg"].startswith("<svg")


def test_locked_in_the_list_locks_and_false_unlocks():
    accounts = {"ann": account("ann", 1001)}
    homes = {"ann": home(1001)}
    assert plan([{"name": "ann", "password": "x" * 9, "locked": True}], accounts, homes, verify=lambda *a: True)[
        0
    ].what == ["locked"]
    accounts["ann"].expire = "1"
    assert plan([{"name": "ann", "password": "x" * 9}], accounts, homes, verify=lambda *a: True)[0].what == ["unlocked"]


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"quickjh_auth": "oidc", "quickjh_oidc_issuer": "https://id.example.org"}, "needs quickjh_oauth_client_id"),
        (
            {"quickjh_auth": "oidc", "quickjh_oauth_client_id": "x", "quickjh_oauth_client_secret": "y"},
            "needs quickjh_oidc_issuer",
        ),
        ({"quickjh_auth": "gitlab", "quickjh_admin_groups": ["acme"]}, "GitLab's OAuth names no groups"),
        ({"quickjh_auth": "ldap", "quickjh_ldap_url": "ldap.example.org"}, "is not ldap://HOST[:PORT]"),
        ({"quickjh_auth": "ldap", "quickjh_ldap_bind_dn_template": "uid=x"}, "has no {username}"),
        ({"quickjh_auth": "oidc", "quickjh_otp": True}, "quickjh_otp asks for a code after the password"),
        ({"quickjh_auth": "github", "quickjh_users": []}, "no one may log in"),
    ],
)
def test_each_bad_login_setting_is_refused_with_its_message(settings, message):
    assert any(message in p for p in problems(**settings)), problems(**settings)


def test_with_a_provider_the_lists_users_need_no_password():
    users = [{"name": "ann"}]
    assert any("needs exactly one of password" in p for p in problems(quickjh_users=users))
    ok = problems(
        quickjh_auth="oidc",
        quickjh_oidc_issuer="https://id.example.org",
        quickjh_oauth_client_id="x",
        quickjh_oauth_client_secret="y",
        quickjh_users=users,
    )
    assert ok == [], ok


def test_with_a_provider_an_admin_by_group_stays_admin_and_the_list_makes_or_unmakes_the_rest():
    from quickjh.plan import plan_hub

    users = [{"name": "ann"}, {"name": "bob", "admin": True}, {"name": "cy"}]
    known = {"ann": True, "bob": False, "cy": True}
    assert plan_hub(users, known, frozenset({"ann"})) == {"bob": "admin", "cy": "not admin"}


def test_the_secrets_file_is_locked_the_way_liboath_locks_it(tmp_path):
    """liboath makes users.oath.lock exclusively and refuses every code while one is there: the sync takes the same
    lock, leaves none behind, waits for a fresh one and removes a stale one."""
    import os
    import time
    from pathlib import Path

    users = tmp_path / "otp" / "users.oath"
    otp.keep_secrets(["ana"], users)
    assert users.read_text().split("\t")[1] == "ana" and not Path(f"{users}.lock").exists()
    lock = Path(f"{users}.lock")
    lock.touch()  # a login's liboath holds it
    with pytest.raises(TimeoutError), otp.locked_file(users, wait=0.3):
        pass
    os.utime(lock, (time.time() - 120, time.time() - 120))  # left by a writer killed long ago
    otp.keep_secrets(["ana", "ben"], users)
    assert not lock.exists() and "ben" in users.read_text()


def test_the_lists_people_are_let_in_and_its_admins_made_admin_as_the_last_sync_left_the_list(tmp_path, monkeypatch):
    """With a login kind from elsewhere the hub reads the list the sync kept at each login: no restart for a change."""
    import asyncio

    from quickjh.logins.oidc import QuickjhOIDCAuthenticator
    from quickjh.persistence import keep_listed

    monkeypatch.setenv("QUICKJH_STATE", str(tmp_path))
    monkeypatch.setattr(people, "bind_identity", lambda name, identity: None)
    monkeypatch.setattr(people, "read_accounts", dict)
    auth = QuickjhOIDCAuthenticator(
        allowed_groups={"jupyter"}, manage_groups=True, auth_state_groups_key="oauth_user.groups"
    )

    def model(name: str, *groups: str) -> dict:
        info = {"sub": name, "groups": list(groups)}  # as OAuthenticator's authenticate() makes it
        return {"name": name, "admin": None, "groups": list(groups), "auth_state": {"oauth_user": info}}

    def allowed(name: str, *groups: str) -> bool:  # as the hub asks: the model updated, then checked
        return asyncio.run(auth.check_allowed(name, asyncio.run(auth.update_auth_model(model(name, *groups)))))

    keep_listed([{"name": "ann", "admin": True}, {"name": "bob"}, {"name": "cy", "state": "absent"}])
    assert allowed("bob") and allowed("dee", "jupyter") and not allowed("cy") and not allowed("eve", "elsewhere")
    assert asyncio.run(auth.update_auth_model(model("ann")))["admin"] is True
    keep_listed([{"name": "ann"}])  # bob taken off the list, ann no admin of it: at their next login or refresh
    assert not allowed("bob") and allowed("ann")
    assert not asyncio.run(auth.update_auth_model(model("ann")))["admin"]
