"""quickjh_auth against real identity servers on this machine (molecule/shared/idservers.py): an OpenID Connect
provider with a login form, slapd over StartTLS, and one-time codes (pam_oath) for password logins. Through each, a
person logs in as a browser does and runs code as their own Linux user, an admin by group is hub admin, someone
outside the allowed group is refused, and someone removed from the group loses their server at the next refresh.
The scenario's hub goes back to its own logins (pam) at the end of each."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
import time
from pathlib import Path

import docker
import pytest
import yaml

from browser_check import chromium
from hubclient import HubUser, LoginFailed
from hubfixtures import converge
from idservers import LDAPServer, OIDCProvider, build

ROOT = Path(__file__).resolve().parents[3]
BASE_IMAGE = yaml.safe_load((ROOT / "roles/quickjh/defaults/main.yml").read_text())["quickjh_base_image"]
REFRESH = 10  # quickjh_auth_refresh_seconds here: how soon a person out of the group loses their server


@pytest.fixture(scope="module")
def image():
    print(f"\nidentity servers' image: {build(BASE_IMAGE):.1f} s")


@pytest.fixture(scope="module", autouse=True)
def back_to_pam():
    """Each kind's tests switch the hub to it (every login variable given); the scenario's own logins come back once,
    after the last."""
    yield
    switch({})


def switch(extra: dict) -> str:
    started = time.monotonic()
    said = " ".join(converge("-e", json.dumps(extra)).stdout.split())
    print(
        f"\nthe hub switched to quickjh_auth {extra.get('quickjh_auth', 'pam')} in {time.monotonic() - started:.0f} s"
    )
    return said


def lost_server_within(person: HubUser, seconds: float) -> float:
    """How long until the person's running server is gone and their session refused."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if person.http.get(f"{person.base}/hub/api/user", timeout=10).status_code == 403:
            return time.monotonic() - started
        time.sleep(1)
    raise AssertionError(f"{person.name} still logged in after {seconds} s")


# --- OpenID Connect ------------------------------------------------------------------------------------------------

PEOPLE = [
    {"sub": "id-olga", "preferred_username": "olga", "groups": ["jupyter", "jupyter-admins"]},
    {"sub": "id-oscar", "preferred_username": "oscar", "groups": ["jupyter"]},
    {"sub": "id-otto", "preferred_username": "otto", "groups": ["elsewhere"]},
    {"sub": "id-other-olga", "preferred_username": "olga", "groups": ["jupyter"]},
    {"sub": "id-odd", "preferred_username": "Odd.Name", "groups": ["jupyter"]},
]


@pytest.fixture(scope="class")
def oidc(image, tmp_path_factory, hub_url):
    provider = OIDCProvider(tmp_path_factory.mktemp("oidc"), PEOPLE)
    extra = {
        "quickjh_auth": "oidc",
        "quickjh_oidc_issuer": provider.issuer,
        "quickjh_oidc_name": "the test provider",
        "quickjh_oauth_client_id": "quickjh-test",
        "quickjh_oauth_client_secret": "client-s3cret-of-the-test",
        "quickjh_allowed_groups": ["jupyter"],
        "quickjh_admin_groups": ["jupyter-admins"],
        "quickjh_auth_refresh_seconds": REFRESH,
        "quickjh_public_url": f"{hub_url}/",
    }
    switch(extra)
    try:
        yield provider, extra
    finally:
        provider.remove()


def oidc_login(hub_url, verify, sub: str) -> HubUser:
    person = HubUser(hub_url, sub.removeprefix("id-"), verify=verify)
    person.login_with_provider({"sub": sub})
    return person


class TestOpenIDConnect:
    """quickjh_auth oidc, through the provider's login form."""

    def test_through_the_providers_form_in_chromium_an_admin_by_group_logs_in_as_a_hub_admin(self, oidc, hub_url):
        with chromium() as browser:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{hub_url}/hub/login")
            page.get_by_text("the test provider").click()  # "Sign in with the test provider"
            page.locator("#subject-input").fill("id-olga")  # the provider's own login form
            page.get_by_role("button", name="Authorize", exact=True).click()  # not the known subjects' buttons
            page.wait_for_url(re.compile(r"/user/olga/"))
            page.locator("#jp-main-dock-panel").wait_for(timeout=180_000)
            page.goto(f"{hub_url}/hub/api/user")  # as a page: the hub takes its cookie for a GET it navigates to
            me = json.loads(page.locator("body").inner_text())
        assert (me["name"], me["admin"]) == ("olga", True)

    def test_a_person_of_the_allowed_group_runs_code_as_their_own_linux_user_with_no_password(
        self, oidc, hub_url, verify, hub
    ):
        oscar = oidc_login(hub_url, verify, "id-oscar")
        assert oscar.model()["admin"] is False
        oscar.start_server()
        name, uid, cwd = oscar.whoami()
        assert (name, cwd) == ("oscar", "/home/oscar/notebook") and uid >= 1000
        shadow = hub().exec_run(["getent", "shadow", "oscar"]).output.decode().split(":")
        assert shadow[1] in ("!", "*", "!*")  # no password: no PAM login, no sudo
        assert not oscar.can_sudo("")

    def test_outside_the_allowed_groups_a_clash_or_an_unsafe_name_is_refused_with_a_reason(self, oidc, hub_url, verify):
        for sub, reason in (
            ("id-otto", ""),
            ("id-other-olga", "belongs to another identity"),
            ("id-odd", "is not a valid Linux user name"),
        ):
            if sub == "id-other-olga":
                oidc_login(hub_url, verify, "id-olga")  # olga's name is taken by her identity first
            with pytest.raises(LoginFailed, match=reason):
                oidc_login(hub_url, verify, sub)

    def test_a_person_removed_from_the_group_loses_their_server_at_the_next_refresh(self, oidc, hub_url, verify):
        provider, _ = oidc
        oscar = oidc_login(hub_url, verify, "id-oscar")
        oscar.start_server()
        provider.set_claims("id-oscar", {"sub": "id-oscar", "preferred_username": "oscar", "groups": []})
        took = lost_server_within(oscar, REFRESH * 3 + 30)
        print(f"\noscar out of the group: session and server gone after {took:.0f} s (refresh every {REFRESH} s)")
        admin = oidc_login(hub_url, verify, "id-olga")
        assert admin.hub_api("GET", "/users/oscar").json()["servers"] == {}
        with pytest.raises(LoginFailed):
            oidc_login(hub_url, verify, "id-oscar")
        provider.set_claims("id-oscar", PEOPLE[1])

    def test_a_person_put_on_the_list_is_let_in_and_taken_off_is_refused_and_the_hub_never_restarts(
        self, oidc, hub_url, verify, hub, settings
    ):
        _, extra = oidc
        started = hub().attrs["State"]["StartedAt"]
        with pytest.raises(LoginFailed):
            oidc_login(hub_url, verify, "id-otto")  # outside the allowed groups
        switch(dict(extra, quickjh_users=settings["quickjh_users"] + [{"name": "otto"}]))
        assert oidc_login(hub_url, verify, "id-otto").model()["name"] == "otto"
        switch(extra)
        with pytest.raises(LoginFailed):
            oidc_login(hub_url, verify, "id-otto")
        assert hub().attrs["State"]["StartedAt"] == started  # no restart: local mode's kernels would have ended

    def test_a_persons_account_and_home_survive_the_hubs_re_creation(self, oidc, hub_url, verify, hub):
        _, extra = oidc
        olga = oidc_login(hub_url, verify, "id-olga")
        olga.start_server()
        olga.run("open('kept.txt', 'w').write('mine')")
        uid = olga.whoami()[1]
        hub().remove(force=True)
        switch(extra)
        olga = oidc_login(hub_url, verify, "id-olga")
        olga.start_server()
        assert olga.run("print(open('kept.txt').read())").strip() == "mine" and olga.whoami()[1] == uid

    def test_the_client_secret_reaches_the_hub_alone_and_a_new_one_is_never_shown(self, oidc, hub_url, verify, hub):
        _, extra = oidc
        rotated = dict(extra, quickjh_oauth_client_secret="rotated-s3cret-of-the-test")
        # a new secret, as from the vault: the hub restarts
        shown = converge("--diff", "-vvv", "-e", json.dumps(rotated))
        try:
            assert hub().exec_run(["grep", "-rqs", "rotated-s3cret-of-the-test", "/etc/quickjh"]).exit_code == 0
            # nor the secrets file's checksum (the run compares it on the target; a weak secret could be guessed), even
            # where -vvv shows each module's arguments
            checksum = hub().exec_run(["sha1sum", "/etc/quickjh/secrets.json"]).output.decode().split()[0]
            assert len(checksum) == 40 and checksum not in shown.stdout + shown.stderr
            oscar = oidc_login(hub_url, verify, "id-oscar")  # logins go on with the new secret
            oscar.start_server()
            environment = oscar.run("import os; print(dict(os.environ))")
            image = docker.from_env().images.get(hub().image.id)
            for where, text in (
                ("the run's output with --diff", shown.stdout + shown.stderr),
                ("docker inspect", json.dumps(hub().attrs)),
                ("the hub's logs", hub().logs().decode(errors="replace")),
                ("the image's history", json.dumps(image.history())),
                ("a user's environment", environment),
            ):
                for secret in ("client-s3cret-of-the-test", "rotated-s3cret-of-the-test"):
                    assert secret not in text, f"{secret} in {where}"
        finally:
            switch(extra)


# --- LDAP ----------------------------------------------------------------------------------------------------------

DIRECTORY = {"lena": "lena-ldap-pw", "leon": "leon-ldap-pw", "lara": "lara-ldap-pw"}


@pytest.fixture(scope="class")
def ldap(image, tmp_path_factory):
    server = LDAPServer(
        tmp_path_factory.mktemp("ldap"), DIRECTORY, {"jupyter": ["lena", "leon"], "jupyter-admins": ["lena"]}
    )
    switch(
        {
            "quickjh_auth": "ldap",
            "quickjh_ldap_url": server.url,
            "quickjh_ldap_ca_bundle": str(server.bundle),
            "quickjh_ldap_bind_dn_template": "uid={username},ou=people,dc=example,dc=org",
            "quickjh_ldap_search_dn": "cn=admin,dc=example,dc=org",
            "quickjh_ldap_search_password": "ldap-admin-pw",
            "quickjh_allowed_groups": ["cn=jupyter,ou=groups,dc=example,dc=org"],
            "quickjh_admin_groups": ["cn=jupyter-admins,ou=groups,dc=example,dc=org"],
            "quickjh_auth_refresh_seconds": REFRESH,
        }
    )
    try:
        yield server
    finally:
        server.remove()


class TestLDAP:
    """quickjh_auth ldap, over StartTLS with the server's certificate checked."""

    def test_over_starttls_a_directory_admin_is_hub_admin_and_a_member_runs_code_as_themselves(
        self, ldap, hub_url, verify
    ):
        lena, leon = HubUser(hub_url, "lena", verify=verify), HubUser(hub_url, "leon", verify=verify)
        lena.login(DIRECTORY["lena"])
        leon.login(DIRECTORY["leon"])
        assert (lena.model()["admin"], leon.model()["admin"]) == (True, False)
        leon.start_server()
        assert leon.whoami()[0] == "leon"

    def test_a_wrong_password_or_someone_outside_the_groups_is_refused(self, ldap, hub_url, verify):
        with pytest.raises(LoginFailed):
            HubUser(hub_url, "leon", verify=verify).login("not-" + DIRECTORY["leon"])
        with pytest.raises(LoginFailed):
            HubUser(hub_url, "lara", verify=verify).login(DIRECTORY["lara"])

    def test_a_member_removed_from_the_directorys_group_loses_their_server_at_the_next_refresh(
        self, ldap, hub_url, verify
    ):
        leon = HubUser(hub_url, "leon", verify=verify)
        leon.login(DIRECTORY["leon"])
        leon.start_server()
        ldap.remove_member("jupyter", "leon")
        took = lost_server_within(leon, REFRESH * 3 + 30)
        print(f"\nleon out of the directory's group: session and server gone after {took:.0f} s")
        with pytest.raises(LoginFailed):
            HubUser(hub_url, "leon", verify=verify).login(DIRECTORY["leon"])


# --- One-time codes ------------------------------------------------------------------------------------------------


def code(uri: str, at: float | None = None) -> str:
    """The TOTP code of an otpauth:// URI (RFC 6238: SHA-1, 6 digits, 30 s), as an authenticator app shows it."""
    import base64

    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int((at or time.time()) // 30)), hashlib.sha1).digest()
    offset = mac[-1] & 15
    return f"{(struct.unpack('>I', mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**6:06d}"


def next_step() -> None:
    """Wait for the next 30 s step: a code once used is refused, as is any older one."""
    time.sleep(30 - time.time() % 30 + 0.5)


@pytest.fixture(scope="class")
def otp(hub):
    said = switch({"quickjh_otp": True})
    credentials = ROOT / "molecule/shared/credentials/instance"
    try:
        yield said, credentials
    finally:  # the secrets stay on the hub when codes are turned off (turned on again, nobody enrols again): gone
        for made in credentials.glob("*otp*"):
            made.unlink()
        hub().exec_run(["rm", "-f", "/srv/jupyterhub/otp/users.oath"])


class TestOneTimeCodes:
    """quickjh_otp with pam: the password, then the code."""

    def test_the_run_hands_each_user_a_secret_and_its_qr_code(self, otp):
        said, credentials = otp
        assert "user1: one-time code secret made" in said
        assert (credentials / "user1.otp").read_text().startswith("otpauth://totp/")
        assert (credentials / "user1-otp.svg").read_text().startswith("<svg")
        assert oct((credentials / "user1.otp").stat().st_mode & 0o777) == "0o600"

    def test_the_right_code_logs_in_and_a_wrong_missing_or_replayed_one_is_refused(
        self, otp, hub_url, verify, passwords
    ):
        uri = (otp[1] / "user1.otp").read_text().strip()
        next_step()
        for wrong in ("000000" if code(uri) != "000000" else "111111", ""):
            with pytest.raises(LoginFailed):
                HubUser(hub_url, "user1", verify=verify).login_with_code(passwords["user1"], wrong)
        right = code(uri)
        HubUser(hub_url, "user1", verify=verify).login_with_code(passwords["user1"], right)
        with pytest.raises(LoginFailed):  # the same code again, within its 30 s
            HubUser(hub_url, "user1", verify=verify).login_with_code(passwords["user1"], right)
        with pytest.raises(LoginFailed):  # the password alone
            HubUser(hub_url, "user1", verify=verify).login(passwords["user1"])

    def test_sudo_asks_for_the_password_only_and_a_user_without_a_secret_is_told_so(
        self, otp, hub_url, verify, passwords, hub
    ):
        uri = (otp[1] / "admin.otp").read_text().strip()
        admin = HubUser(hub_url, "admin", verify=verify)
        admin.login_with_code(passwords["admin"], code(uri))
        admin.start_server()
        assert admin.can_sudo(passwords["admin"])
        made = hub().exec_run(["sh", "-c", "quickjh-users add newcomer && echo 'newcomer:n3wcomer-pw' | chpasswd"])
        assert made.exit_code == 0, made.output
        try:
            with pytest.raises(LoginFailed, match="has no one-time code secret yet"):
                HubUser(hub_url, "newcomer", verify=verify).login_with_code("n3wcomer-pw", "123456")
        finally:
            hub().exec_run(["userdel", "-r", "newcomer"])
