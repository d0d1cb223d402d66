"""Real servers on this machine for the tests, in containers of one image built from the local base image (no
registry): an OpenID Connect provider (oidc-provider-mock from PyPI, in a venv: a real login form, its
discovery document, tokens, userinfo, refresh tokens; a person's claims replaced live with PUT /users/SUB) and
Debian's slapd with StartTLS under a CA made here (people and groups from an LDIF, groups changed live with
ldapmodify), and an SSH server that takes scheduled backups (the data scenario). All are on Docker's default bridge,
reached at their container's address by the hub (same bridge), by the tests and by Chromium."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import docker
import requests

from testca import issue

IMAGE = "quickjh-test:ids"  # a tag of the shared test image's name: make test removes it with the rest
OIDC_PORT = 9400
SUFFIX = "dc=example,dc=org"
ADMIN_DN, ADMIN_PASSWORD = f"cn=admin,{SUFFIX}", "ldap-admin-pw"
PLACEHOLDER = ADMIN_DN  # groupOfNames needs a member: the test removes every person from a group
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"  # what PyPI's certificate chains to from this machine


def build(base_image: str) -> float:
    """The image (cached by Docker after the first build); returns the seconds it took."""
    dockerfile = f"""FROM {base_image}
COPY host-ca.crt /tmp/host-ca.crt
RUN echo 'slapd slapd/no_configuration boolean false' > /tmp/seed \\
 && echo 'slapd slapd/domain string example.org' >> /tmp/seed \\
 && echo 'slapd shared/organization string Example' >> /tmp/seed \\
 && echo 'slapd slapd/password1 password {ADMIN_PASSWORD}' >> /tmp/seed \\
 && echo 'slapd slapd/password2 password {ADMIN_PASSWORD}' >> /tmp/seed \\
 && apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debconf-utils \\
 && debconf-set-selections /tmp/seed \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
    slapd ldap-utils openssh-server python3-venv \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/seed \\
 && python3 -m venv /opt/oidc \\
 && PIP_CERT=/tmp/host-ca.crt /opt/oidc/bin/pip install -q --no-cache-dir oidc-provider-mock==0.4.8 \\
 && rm /tmp/host-ca.crt
"""
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Dockerfile").write_text(dockerfile)
        shutil.copy(HOST_CA, Path(context, "host-ca.crt"))
        proxies = {k: v for k, v in os.environ.items() if k.lower() in ("http_proxy", "https_proxy", "no_proxy")}
        started = time.monotonic()
        docker.from_env().images.build(path=context, tag=IMAGE, rm=True, buildargs=proxies)
    return time.monotonic() - started


def run(name: str, command: list[str], folder: Path) -> docker.models.containers.Container:
    client = docker.from_env()
    for old in client.containers.list(all=True, filters={"name": f"^{name}$"}):
        old.remove(force=True)
    container = client.containers.run(
        IMAGE, command, name=name, detach=True, volumes={str(folder): {"bind": "/ids", "mode": "ro"}}
    )
    container.reload()
    return container


def address(container) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["IPAddress"]


class OIDCProvider:
    """oidc-provider-mock: a login form where a person names their subject; claims per subject."""

    def __init__(self, folder: Path, people: list[dict]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "people.json").write_text(json.dumps(people))
        self.container = run(
            "quickjh-test-oidc",
            [
                "/opt/oidc/bin/oidc-provider-mock",
                "--host=0.0.0.0",
                f"--port={OIDC_PORT}",
                "--user-claims-file=/ids/people.json",
            ],
            folder,
        )
        self.issuer = f"http://{address(self.container)}:{OIDC_PORT}"
        wait(lambda: requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5).ok, self.container)

    def set_claims(self, sub: str, claims: dict) -> None:
        """Replace a person's claims (e.g. their groups), as the provider's admin would."""
        requests.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()

    def remove(self) -> None:
        self.container.remove(force=True)


class LDAPServer:
    """slapd with StartTLS (a certificate for its address, under a CA made here: bundle), people and groups."""

    def __init__(self, folder: Path, people: dict[str, str], groups: dict[str, list[str]]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "people.ldif").write_text(ldif(people, groups))
        (folder / "tls.ldif").write_text(
            "dn: cn=config\nchangetype: modify\n"
            "replace: olcTLSCACertificateFile\nolcTLSCACertificateFile: /etc/ldap/tls/ca.pem\n-\n"
            "replace: olcTLSCertificateFile\nolcTLSCertificateFile: /etc/ldap/tls/server.pem\n-\n"
            "replace: olcTLSCertificateKeyFile\nolcTLSCertificateKeyFile: /etc/ldap/tls/server.key\n"
        )
        self.folder = folder
        script = (
            "set -e; install -d -o openldap -g openldap -m 700 /etc/ldap/tls; "
            "install -d -o openldap -g openldap /run/slapd; "  # made by an init script elsewhere: ldapi's socket
            "slapd -h 'ldap:/// ldapi:///' -u openldap -g openldap; "
            "until ldapsearch -Q -Y EXTERNAL -H ldapi:/// -b cn=config -s base >/dev/null 2>&1; do sleep 0.2; done; "
            f"ldapadd -x -H ldapi:/// -D {ADMIN_DN} -w {ADMIN_PASSWORD} -f /ids/people.ldif >/dev/null; "
            "until [ -f /ids/server.key ]; do sleep 0.2; done; "
            "install -o openldap -g openldap -m 600 /ids/ca.pem /ids/server.pem /ids/server.key /etc/ldap/tls/; "
            "ldapmodify -Q -Y EXTERNAL -H ldapi:/// -f /ids/tls.ldif >/dev/null; touch /tmp/ready; sleep infinity"
        )
        self.container = run("quickjh-test-ldap", ["sh", "-c", script], folder)
        self.address = address(self.container)
        self.bundle = issue(folder, "quickjh test LDAP CA", "server", self.address)  # for its address
        self.url = f"ldap://{self.address}"
        wait(lambda: self.container.exec_run(["test", "-f", "/tmp/ready"]).exit_code == 0, self.container)

    def remove_member(self, group: str, uid: str) -> None:
        change = f"dn: cn={group},ou=groups,{SUFFIX}\nchangetype: modify\ndelete: member\nmember: {person(uid)}\n"
        ran = self.container.exec_run(
            ["sh", "-c", f"printf '%s' '{change}' | ldapmodify -x -H ldapi:/// -D {ADMIN_DN} -w {ADMIN_PASSWORD}"]
        )
        assert ran.exit_code == 0, ran.output

    def remove(self) -> None:
        self.container.remove(force=True)


def person(uid: str) -> str:
    return f"uid={uid},ou=people,{SUFFIX}"


def ldif(people: dict[str, str], groups: dict[str, list[str]]) -> str:
    """People (uid -> password) and groups (cn -> uids) under SUFFIX."""
    out = [f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n" for ou in ("people", "groups")]
    for uid, password in people.items():
        out.append(  # a clear-text userPassword: slapd compares it at the bind (a test directory)
            f"dn: {person(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\nsn: {uid.title()}\n"
            f"userPassword: {password}\n"
        )
    for cn, members in groups.items():
        lines = "".join(f"member: {person(uid)}\n" for uid in members)
        out.append(
            f"dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\nmember: {PLACEHOLDER}\n{lines}"
        )
    return "\n".join(out)


def wait(ready, container, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (OSError, requests.RequestException):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(container.logs(tail=30).decode(errors="replace"))
        time.sleep(0.5)


class SSHTarget:
    """sshd with a user `keeper` (Debian's base already has `backup`) who logs in with the given public key alone and
    keeps what is copied to them in ~/archives; known_hosts() is the line a client needs to trust this server."""

    def __init__(self, folder: Path, public_key: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "authorized_keys").write_text(public_key)
        script = (
            "set -e; ssh-keygen -A >/dev/null; install -d /run/sshd; useradd -m keeper; "
            "install -d -o keeper -m 700 /home/keeper/.ssh /home/keeper/archives; "
            "install -o keeper -m 600 /ids/authorized_keys /home/keeper/.ssh/authorized_keys; "
            "exec /usr/sbin/sshd -D -e -o PasswordAuthentication=no"
        )
        self.container = run("quickjh-test-ssh", ["sh", "-c", script], folder)
        try:
            self.address = address(self.container)
            ready = ["test", "-d", "/home/keeper/archives"]
            wait(lambda: self.container.exec_run(ready).exit_code == 0, self.container)
        except BaseException:
            self.remove()  # a server that did not start leaves nothing (the image stays removable)
            raise

    def known_hosts(self) -> str:
        key = self.container.exec_run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).output.decode().split()[:2]
        return f"{self.address} {' '.join(key)}\n"

    def files(self) -> dict[str, int]:
        listed = self.container.exec_run(["sh", "-c", "cd /home/keeper/archives && stat -c '%n %s' * 2>/dev/null"])
        return {name: int(size) for name, size in (line.split() for line in listed.output.decode().splitlines())}

    def remove(self) -> None:
        self.container.remove(force=True)
