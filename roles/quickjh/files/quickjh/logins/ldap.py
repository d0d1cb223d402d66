"""quickjh_auth: ldap, an LDAP directory or Active Directory: the person's own bind (a DN template), over StartTLS or
LDAPS with the server's certificate checked; allowed and admin groups by DN. ldapauthenticator neither names admins
nor refreshes: quickjh does both, the refresh with the search account (quickjh_ldap_search_dn), which reads each
group's members. Every call to the directory runs in a thread, never on the hub's event loop."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import ldap3
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from ldapauthenticator import LDAPAuthenticator
from traitlets import List, Unicode

from quickjh.logins.oauth import set_refresh
from quickjh.logins.people import People, end_server, locked
from quickjh.persistence import listed
from quickjh.rules import NAME


class QuickjhLDAPAuthenticator(People, LDAPAuthenticator):
    admin_group_dns = List(Unicode(), help="Members of these groups (DNs) are hub admins.").tag(config=True)
    search_dn = Unicode("", help="The account that reads group members at each refresh.").tag(config=True)
    search_password = Unicode("", help="Its password.").tag(config=True)

    def identity(self, auth_model: dict) -> str:
        return f"ldap:{self.user_dn(auth_model['name'])}"

    def user_dn(self, name: str) -> str:
        return self.bind_dn_template[0].format(username=escape_rdn(name))

    async def authenticate(self, handler, data):
        """ldapauthenticator's bind and group search, in a thread; then admin by group, and the checks of People."""
        parent = super().authenticate
        model = await asyncio.get_running_loop().run_in_executor(None, lambda: asyncio.run(parent(handler, data)))
        if model is None:
            return None
        groups = set(model["auth_state"]["ldap_groups"])
        model["admin"] = bool(groups & set(self.admin_group_dns))  # the list's admins too: People's update
        model["groups"] = sorted(groups)  # the hub's groups: the allowed and admin groups (DNs) they are in
        return await self.update_auth_model(model)

    async def update_auth_model(self, auth_model):
        return await People.update_auth_model(self, auth_model)

    async def refresh_user(self, user, handler=None, **kwargs):
        """The groups read again with the search account; False when the person left every allowed group (or the
        directory lost them), which ends their server. Without a search account only the next login checks."""
        if not self.search_dn:
            return True
        groups = await asyncio.get_running_loop().run_in_executor(None, self.groups_of, user.name)
        model = {
            "name": user.name,
            "admin": bool((groups or set()) & set(self.admin_group_dns)) or user.name in listed("admins"),
            "auth_state": {"ldap_groups": sorted(groups or ())},
            "groups": sorted(groups or ()),
        }
        if groups is None or locked(user.name) or not await self.check_allowed(user.name, model):
            await end_server(user)
            return False
        return model

    def groups_of(self, name: str) -> set[str] | None:
        """The allowed and admin groups (DNs) the person's DN is a member of, read as the search account."""
        dn = self.user_dn(name)
        conn = self.get_connection(self.search_dn, self.search_password)
        if conn is None:
            raise OSError("the LDAP search account could not bind")
        try:
            if not conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE):
                return None  # gone from the directory
            found = set()
            member = self.group_search_filter.format(userdn=escape_filter_chars(dn), uid=escape_filter_chars(name))
            for group in {*self.allowed_groups, *self.admin_group_dns}:
                if conn.search(group, member, search_scope=ldap3.BASE, attributes=["cn"]):
                    found.add(group)
            return found
        finally:
            conn.unbind()


def configure(c, settings: dict, state: Path) -> None:
    auth, ldap = settings["auth"], settings["auth"]["ldap"]
    c.JupyterHub.authenticator_class = "quickjh.logins.ldap.QuickjhLDAPAuthenticator"
    section = c.QuickjhLDAPAuthenticator
    url = urlsplit(ldap["url"])
    section.server_address = url.hostname
    if url.scheme == "ldaps":
        section.tls_strategy = "on_connect"
    else:
        section.tls_strategy = "before_bind" if ldap["starttls"] else "insecure"
    section.server_port = url.port or (636 if url.scheme == "ldaps" else 389)
    tls = {"validate": ssl.CERT_REQUIRED, "version": ssl.PROTOCOL_TLS_CLIENT}
    if ldap["ca_bundle"]:
        tls["ca_certs_file"] = ldap["ca_bundle"]
    section.tls_kwargs = tls
    section.bind_dn_template = [ldap["bind_dn_template"]]
    section.valid_username_regex = rf"^{NAME.pattern}$"
    section.allowed_groups = list(auth["allowed_groups"]) + [
        g for g in auth["admin_groups"] if g not in auth["allowed_groups"]
    ]
    section.admin_group_dns = list(auth["admin_groups"])
    section.manage_groups = True
    section.search_dn = ldap["search_dn"]
    section.search_password = settings["secrets"]["ldap_search_password"]
    set_refresh(c, auth)
