"""quickjh_problems: every rule of the role's variables, checked on the controller before anything is touched.

argument_specs has already checked types, choices and unknown keys; these are the rules types cannot say. The
users list's rules are the package's own (files/quickjh/rules.py, which the container runs again before a sync).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import sys
import tarfile
from pathlib import Path

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.utils.display import Display

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "files"))  # the role's package, as in the image
from quickjh.rules import shared_problems, user_problems

SIZE = re.compile(r"[0-9]+[bkmgBKMG]?")
URL = re.compile(r"https?://\S+")
PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*([\[<>=!~;@ ].*)?")
PAGE = re.compile(r"/[A-Za-z0-9._~/-]*")  # a URL path: it goes into the hub's config as it is
LOOPBACK = re.compile(r"127\.[0-9.]+|::1|localhost")
# Settings a quickjh_spawner has no use for (the run warns when they are set).
IGNORED_BY_MODE = {"local": ("quickjh_user_cpus", "quickjh_profiles"), "docker": (), "swarm": ()}
# quickjh_subdomain_host: the hub's address, a DNS name users' names go in front of (no IP address, no path).
SUBDOMAIN_HOST = re.compile(r"https?://(?=[^:/]*[a-zA-Z])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?::[0-9]+)?/?")
DNS_NAME = re.compile(r"(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*")
EMAIL = re.compile(r"[^@\s:]+@[^@\s:]+\.[A-Za-z]+")
INTERVAL = re.compile(r"[0-9]+(s|m|h)")
LOCKS = Path(__file__).resolve().parents[1] / "files" / "locks"  # the image's pinned Python packages, by version
# An image reference as Docker reads one (registry[:port]/path[:tag][@digest]): it goes into the Dockerfile's FROM.
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?"
IMAGE = re.compile(rf"(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?")
PROFILE = re.compile(r"[a-z0-9][a-z0-9_-]{0,30}")  # goes into an image's name


def text(value: object) -> str:
    """A value as the inventory wrote it (YAML may give an int where a string is meant, or null)."""
    return "" if value is None else str(value)


def archive_images(path: str) -> list[str]:
    """The image names (REPO:TAG) a `docker save` archive on the controller holds, read from its manifest.json;
    ValueError naming the path when it is not such an archive."""
    hint = (
        f"quickjh_image_archives: {path!r} is not a `docker save` archive of named images "
        "(docker save -o FILE NAME:TAG)"
    )
    if not path.startswith("/"):
        raise ValueError(f"quickjh_image_archives: {path!r} is not an absolute path on the controller")
    try:
        with tarfile.open(path) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
        names = [name for image in manifest for name in image.get("RepoTags") or []]
    except (OSError, KeyError, tarfile.TarError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{hint}: {error}") from None
    if not names:
        raise ValueError(hint)
    return names


def archives_lacking(paths: list[str], present: list[str]) -> list[str]:
    """The archives holding an image that is not among the present ones (names as Docker lists them)."""
    return [path for path in paths if set(archive_images(path)) - set(present)]


def docker_mode_problems(v: dict) -> list[str]:
    """Settings of users' own containers (quickjh_spawner: docker)."""
    out = []
    if float(v["quickjh_user_cpus"]) < 0:
        out.append(f"quickjh_user_cpus must be 0 (no limit) or more; got {v['quickjh_user_cpus']}")
    names = [text(profile.get("name")) for profile in v["quickjh_profiles"]]
    for index, name in enumerate(names):
        if not PROFILE.fullmatch(name):
            out.append(
                f"quickjh_profiles: {name!r} is not a profile name (lower-case letters, digits, - and _; at most 31)"
            )
        elif name in names[:index]:
            out.append(f"quickjh_profiles: {name!r} is listed more than once")
    for profile in v["quickjh_profiles"]:
        packages = [text(package) for key in ("apt_packages", "pip_packages") for package in profile.get(key) or []]
        out += [
            f"quickjh_profiles: {text(profile.get('name'))!r}: not a package name: {package}"
            for package in packages
            if not PACKAGE.fullmatch(package)
        ]
    return out


def hub_address(subnet: str) -> str:
    """Swarm mode: the hub's fixed address on the overlay network, the subnet's last. A restarted hub keeps it, so
    users' servers on other nodes, which hold connections and neighbour entries to it, reach it again at once."""
    return str(ipaddress.ip_network(subnet).broadcast_address - 1)


def swarm_problems(v: dict) -> list[str]:
    """quickjh_spawner swarm: nodes that can be named, and no shared folder without network storage."""
    swarm = v["quickjh_spawner"] == "swarm"
    out = []
    if not swarm:
        given = [text(u.get("name")) for u in v["quickjh_users"] if u.get("node")]
        if given:
            out.append(f"node: is for quickjh_spawner swarm; given for {', '.join(given)}")
        return out
    nodes = [text(v.get("inventory_hostname"))] + [text(node) for node in v["quickjh_swarm_workers"]]
    out += [
        f"quickjh_users: {text(u.get('name'))!r}: node {text(u['node'])!r} is not the hub's host or one of "
        f"quickjh_swarm_workers ({', '.join(nodes)})"
        for u in v["quickjh_users"]
        if u.get("node") and text(u["node"]) not in nodes
    ]
    if v["quickjh_shared_folders"]:
        out.append(
            "quickjh_shared_folders: swarm mode keeps each home on its user's node, and a folder shared by people "
            "on different nodes needs network storage, which quickjh does not set up yet: use docker mode for them"
        )
    try:
        network = ipaddress.ip_network(text(v["quickjh_swarm_subnet"]))
        if network.version != 4 or network.num_addresses < 16:
            raise ValueError
    except ValueError:
        out.append(f"quickjh_swarm_subnet: {v['quickjh_swarm_subnet']!r} is not an IPv4 subnet like 10.213.0.0/24")
    nfs = v["quickjh_homes_nfs"]
    if v["quickjh_backup_schedule"] and not nfs:
        out.append(
            "quickjh_backup_schedule: the hub's scheduled backups cannot reach homes kept on the swarm's nodes: "
            "schedule backup.yml on the controller instead, which gathers them from every node (docs/swarm.md)"
        )
    if nfs and not (text(nfs.get("server")) and text(nfs.get("export")).startswith("/")):
        out.append(f"quickjh_homes_nfs: needs server (a name or address) and export (an absolute path); got {nfs}")
    return out


def settings_problems(v: dict) -> list[str]:
    """The settings other than the users list."""
    urls = [
        text(url)
        for url in (
            v["quickjh_pip_index_url"],
            v["quickjh_http_proxy"],
            v["quickjh_https_proxy"],
            *v["quickjh_pip_extra_index_urls"],
        )
    ]
    out = [f"not an http(s):// URL: {url}" for url in urls if url and not URL.fullmatch(url)]
    out += [
        f"not a package name: {package}"
        for package in map(text, v["quickjh_pip_packages"] + v["quickjh_apt_packages"])
        if not PACKAGE.fullmatch(package)
    ]
    if v["quickjh_tls"] == "files":
        out += certificate_problems(text(v["quickjh_tls_cert"]), text(v["quickjh_tls_key"]))
    if v["quickjh_tls"] == "acme":
        out += acme_problems(v)
    out += auth_problems(v)
    if v["quickjh_tls"] == "off" and int(v["quickjh_http_port"]):
        out.append("quickjh_http_port redirects plain HTTP to HTTPS: with quickjh_tls off there is none (set it to 0)")
    sizes = (("quickjh_mem_limit", "8g"), ("quickjh_user_mem_limit", "2g"), ("quickjh_log_max_size", "10m"))
    for name, example in sizes:
        if (v[name] or name == "quickjh_log_max_size") and not SIZE.fullmatch(text(v[name])):
            out.append(f"{name}: {v[name]} is not a size like {example}")
    number = {
        name: float(v[name])
        for name in ("quickjh_cull_idle_timeout", "quickjh_cull_every", "quickjh_cpus", "quickjh_log_max_files")
    }  # `-e name=1` passes a string
    if (
        number["quickjh_cull_idle_timeout"] < 0
        or number["quickjh_cull_every"] < 1
        or number["quickjh_cpus"] < 0
        or number["quickjh_log_max_files"] < 1
    ):
        out.append(
            "quickjh_cull_idle_timeout and quickjh_cull_every must be 0 or more, quickjh_cpus and "
            "quickjh_log_max_files more than 0"
        )
    subdomain = text(v["quickjh_subdomain_host"])
    if subdomain and not SUBDOMAIN_HOST.fullmatch(subdomain):
        out.append(
            f"quickjh_subdomain_host: {subdomain!r} is not the hub's address like https://hub.example.org or "
            "https://hub.example.org:8000 (a DNS name, no path)"
        )
    version = text(v["quickjh_jupyterhub_version"])
    if not (LOCKS / f"jupyterhub-{version}.txt").is_file():
        have = ", ".join(
            sorted(p.stem.removeprefix("jupyterhub-") for p in LOCKS.glob("jupyterhub-*.txt") if p.stem[-1].isdigit())
        )
        out.append(
            f"quickjh_jupyterhub_version: {version!r} has no lock file of the image's Python packages (there "
            f"are: {have}); make one with: make lock VERSIONS={version}"
        )
    if v["quickjh_collaboration"] and not version.startswith(tuple("012345")):
        if not (LOCKS / f"jupyterhub-{version}-collaboration.txt").is_file():
            out.append(
                f"quickjh_collaboration: no lock file of jupyter-collaboration for JupyterHub {version} "
                f"(jupyterhub-{version}-collaboration.txt); make one with: make lock VERSIONS={version}"
            )
    elif v["quickjh_collaboration"]:
        out.append(
            f"quickjh_collaboration needs JupyterHub 6 or later (its users' sharing scopes): quickjh_jupyterhub_version"
            f" is {version!r}"
        )
    if not IMAGE.fullmatch(text(v["quickjh_base_image"])):
        out.append(
            f"quickjh_base_image: {v['quickjh_base_image']!r} is not an image reference like debian:trixie-slim "
            "or registry.example.org/team/base:1.0"
        )
    if not PAGE.fullmatch(text(v["quickjh_default_url"])):
        out.append(
            f"quickjh_default_url: {v['quickjh_default_url']!r} is not a page of the user's server like /lab "
            "or /tree (letters, digits, / . _ ~ -)"
        )
    base_url = text(v["quickjh_base_url"])
    if not PAGE.fullmatch(base_url) or "//" in base_url or {".", ".."} & set(base_url.split("/")):
        out.append(
            f"quickjh_base_url: {v['quickjh_base_url']!r} is not a path like / or /jupyter/ (a slash first; "
            "letters, digits, / . _ ~ -; no . or .. folder)"
        )
    if any(int(v[name]) < 0 for name in ("quickjh_user_max_processes", "quickjh_pids_limit")):
        out.append("quickjh_user_max_processes and quickjh_pids_limit must be 0 (no limit) or more")
    if v["quickjh_restore_archive"] and not text(v["quickjh_restore_archive"]).startswith("/"):
        out.append(
            "quickjh_restore_archive must be the absolute path, on the target, of an archive made by "
            f"backup.yml; got {v['quickjh_restore_archive']!r}"
        )
    for path in map(text, v["quickjh_image_archives"] if v["quickjh_state"] == "present" else []):
        try:
            archive_images(path)
        except ValueError as error:
            out.append(str(error))
    return out


def acme_problems(v: dict) -> list[str]:
    """quickjh_tls acme: DNS names to certify, the CA's directory, a mail address, an interval."""
    names = [text(name) for name in v["quickjh_tls_names"]]
    out = [] if names else ["quickjh_tls is acme: list the hub's DNS names in quickjh_tls_names"]
    out += [
        f"quickjh_tls_names: {name!r} is not a DNS name an ACME CA certifies (letters, digits, - and dots)"
        for name in names
        if not DNS_NAME.fullmatch(name)
    ]
    if not text(v["quickjh_acme_directory"]).startswith("https://") or not URL.fullmatch(
        text(v["quickjh_acme_directory"])
    ):
        out.append(f"quickjh_acme_directory: {v['quickjh_acme_directory']!r} is not an https:// URL")
    email = text(v["quickjh_acme_email"])
    if email and not EMAIL.fullmatch(email):
        out.append(f"quickjh_acme_email: {email!r} is not a mail address")
    if not INTERVAL.fullmatch(text(v["quickjh_acme_renew_interval"])):
        out.append(f"quickjh_acme_renew_interval: {v['quickjh_acme_renew_interval']!r} is not like 10m, 1h or 30s")
    bundle = text(v["quickjh_acme_ca_bundle"])
    if bundle and not Path(bundle).is_file():
        out.append(f"quickjh_acme_ca_bundle: {bundle} is not a file on the controller")
    if text(v["quickjh_subdomain_host"]):
        out.append(
            "quickjh_subdomain_host with quickjh_tls acme: each user's NAME.host would need a certificate of its "
            "own, and the HTTP-01 challenge cannot give the wildcard *.host; bring a wildcard certificate "
            "(quickjh_tls files) or leave quickjh_subdomain_host empty"
        )
    return out


def auth_problems(v: dict) -> list[str]:
    """quickjh_auth and what each kind needs."""
    kind, out = v["quickjh_auth"], []
    if v["quickjh_otp"] and kind != "pam":
        out.append(f"quickjh_otp asks for a code after the password: with quickjh_auth {kind} the provider does that")
    if kind in ("oidc", "github", "gitlab"):
        out += [
            f"quickjh_auth {kind} needs {name} (what the provider gave the hub)"
            for name in ("quickjh_oauth_client_id", "quickjh_oauth_client_secret")
            if not text(v[name])
        ]
    if kind == "oidc" and not URL.fullmatch(text(v["quickjh_oidc_issuer"])):
        out.append(f"quickjh_auth oidc needs quickjh_oidc_issuer, the provider's URL: {v['quickjh_oidc_issuer']!r}")
    if kind == "gitlab" and v["quickjh_admin_groups"]:
        out.append(
            "quickjh_admin_groups: GitLab's OAuth names no groups; make admins with admin: true in quickjh_users, or "
            "use quickjh_auth oidc with quickjh_oidc_issuer https://GITLAB (its groups claim)"
        )
    if kind == "ldap":
        if not re.fullmatch(r"ldaps?://[^/\s:]+(:\d+)?/?", text(v["quickjh_ldap_url"])):
            out.append(f"quickjh_ldap_url: {v['quickjh_ldap_url']!r} is not ldap://HOST[:PORT] or ldaps://HOST[:PORT]")
        if "{username}" not in text(v["quickjh_ldap_bind_dn_template"]):
            out.append(
                f"quickjh_ldap_bind_dn_template: {v['quickjh_ldap_bind_dn_template']!r} has no {{username}}, e.g. "
                "uid={username},ou=people,dc=example,dc=org"
            )
    if (
        kind != "pam"
        and not v["quickjh_allowed_groups"]
        and not any(u.get("state", "present") == "present" for u in v["quickjh_users"])
    ):
        out.append(
            f"quickjh_auth {kind}: no one may log in; list people in quickjh_users or groups in quickjh_allowed_groups"
        )
    return out


def certificate_problems(cert: str, key: str) -> list[str]:
    """The certificate and key of quickjh_tls files (paths on the controller): there, a pair, and valid now."""
    if not (cert and key):
        return ["quickjh_tls is files: set quickjh_tls_cert and quickjh_tls_key"]
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
        private = serialization.load_pem_private_key(Path(key).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        return [f"quickjh_tls_cert {cert} and quickjh_tls_key {key}: not a PEM certificate and key ({error})"]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(serialization.Encoding.PEM, public) != private.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ):
        return [f"quickjh_tls_cert {cert}: not the certificate of quickjh_tls_key {key}"]
    if certificate.not_valid_after_utc < datetime.datetime.now(datetime.UTC):
        return [f"quickjh_tls_cert {cert}: expired on {certificate.not_valid_after_utc:%Y-%m-%d}"]
    return []


def warnings(v: dict, https: bool) -> list[str]:
    """Settings that work but that the team lead should know about."""
    out = []
    if not https and not LOOPBACK.fullmatch(text(v["quickjh_bind_address"])):
        out.append(
            f"quickjh_tls is off and the hub is published on {v['quickjh_bind_address']}:{v['quickjh_port']}: "
            "passwords and session cookies cross the network in plain HTTP. Keep it off only on a trusted "
            "network or behind a TLS proxy; quickjh_tls: self-signed (the default) or files otherwise."
        )
    ignored = [name for name in IGNORED_BY_MODE[v["quickjh_spawner"]] if v[name] and v[name] not in ("0", "0.0")]
    if ignored:
        out.append(
            f"{' and '.join(ignored)} do nothing with quickjh_spawner {v['quickjh_spawner']} (they set users' "
            "own containers; quickjh_cpus limits the whole hub)"
        )
    plain_ldap = text(v["quickjh_ldap_url"]).startswith("ldap:") and not v["quickjh_ldap_starttls"]
    if v["quickjh_auth"] == "ldap" and plain_ldap:
        out.append(
            "quickjh_ldap_starttls is false with an ldap:// URL: every login's password crosses the network in the "
            "clear to the directory; use StartTLS (the default) or ldaps://"
        )
    return out


def quickjh_problems(v: dict, https: bool = True) -> list[str]:
    """Every problem of the role's variables v (name -> value), as messages that name the bad value; what is only
    worth knowing is shown as an Ansible warning. https: whether quickjh_tls serves HTTPS (the role's vars say)."""
    for warning in warnings(v, https):
        Display().warning(warning)
    users = user_problems(
        v["quickjh_users"],
        min_password_length=int(v["quickjh_min_password_length"]),
        allow_weak_passwords=boolean(v["quickjh_allow_weak_passwords"]),
        passwords_required=v["quickjh_auth"] == "pam",
    )
    shared = shared_problems(v["quickjh_shared_folders"], v["quickjh_users"])
    return (
        [f"quickjh_users: {problem}" for problem in users]
        + [f"quickjh_shared_folders: {problem}" for problem in shared]
        + settings_problems(v)
        + docker_mode_problems(v)
        + swarm_problems(v)
    )


class FilterModule:
    def filters(self) -> dict:
        return {
            "quickjh_problems": quickjh_problems,
            "quickjh_archive_images": archive_images,
            "quickjh_archives_lacking": archives_lacking,
            "quickjh_hub_address": hub_address,
        }
