"""quickjh-front: the hub's TLS front, Caddy, where quickjh_tls acme or quickjh_http_port asks for one.

  quickjh-front needed     exit 0 when this deployment has a front (the entry point then keeps one running)
  quickjh-front run        write the Caddyfile from the settings and run Caddy in its place

With acme, Caddy answers HTTPS on 443 with certificates it gets from the ACME CA for quickjh_tls_names (HTTP-01 on
80), keeps them and its account key on the state volume (acme/, root's alone, in backups), renews each at a third of
its lifetime left, looking every quickjh_acme_renew_interval, and swaps it in without dropping a connection; it
passes requests to the proxy on 127.0.0.1:444 (HTTPS, the role's own certificate). On 80 it answers the challenges
and redirects everything else to HTTPS with the same path. Without acme, a front on 80 only redirects.
"""

from __future__ import annotations

import datetime
import os
import ssl
import sys
from pathlib import Path

from quickjh import settings as deployment
from quickjh.settings import state_dir

CADDYFILE = Path("/run/quickjh/Caddyfile")
HUB_CERT = Path("/etc/quickjh/tls/hub.crt")


def storage() -> Path:
    return state_dir() / "acme"


def redirect(front: dict) -> str:
    """Where plain HTTP goes: the same host and path over HTTPS, on the port users open."""
    port = "" if front["public_port"] == 443 else f":{front['public_port']}"
    return f"redir https://{{host}}{port}{{uri}} permanent"


def caddyfile(settings: dict) -> str:
    front = settings["front"]
    options = [
        "admin off",
        f"storage file_system {{\n\t\troot {storage()}\n\t}}",
        "http_port 80",
        "https_port 443",
    ]
    sites = []
    if front["acme"]:
        names = front["names"]
        options += [
            f"acme_ca {front['directory']}",
            f"renew_interval {front['renew_interval']}",
            "ocsp_stapling off",
            f"default_sni {names[0]}",
        ]
        if front["email"]:
            options.append(f"email {front['email']}")
        if front["ca_bundle"]:
            options.append(f"acme_ca_root {front['ca_bundle']}")
        upstream = settings["proxy_listen"]
        sites.append(
            f"{', '.join(names)} {{\n"
            f"\treverse_proxy https://{upstream} {{\n"
            "\t\tflush_interval -1\n"
            f"\t\ttransport http {{\n\t\t\ttls_trusted_ca_certs {HUB_CERT}\n\t\t\ttls_server_name localhost\n\t\t}}\n"
            "\t}\n}"
        )
        sites.append(f"{', '.join(f'http://{name}' for name in names)} {{\n\t{redirect(front)}\n}}")
    if front["http"]:
        sites.append(f"http:// {{\n\t{redirect(front)}\n}}")
    return "{\n" + "".join(f"\t{option}\n" for option in options) + "}\n\n" + "\n\n".join(sites) + "\n"


def needed(settings: dict) -> bool:
    return bool(settings["front"]["acme"] or settings["front"]["http"])


def certificates(settings: dict) -> list[dict]:
    """The certificates the hub serves, each with its end, who renews it and whether that is due."""
    found = []
    if settings["front"]["acme"]:
        for name in settings["front"]["names"]:
            paths = sorted(storage().glob(f"certificates/*/{name}/{name}.crt"))
            if not paths:
                found.append({"name": name, "renewed by": "the hub", "missing": True})
                continue
            # due at a third of its lifetime left: the hub renews it then
            found.append(
                {"name": name, "renewed by": "the hub", **read(paths[-1], lambda start, end: (end - start) / 3)}
            )
    elif settings["https"] and HUB_CERT.exists():
        # due 30 days before its end: the next run makes it anew (self-signed); the inventory's (files)
        found.append(
            {
                "name": "quickjh_tls",
                "renewed by": "the role's runs",
                **read(HUB_CERT, lambda start, end: datetime.timedelta(days=30)),
            }
        )
    return found


def read(path: Path, ahead) -> dict:
    """A certificate's start and end, and whether it is within ahead(start, end) of its end (due)."""
    decoded = ssl._ssl._test_decode_cert(str(path))  # the standard library's own reader of a PEM certificate
    start, end = (
        datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded[key]), datetime.UTC)
        for key in ("notBefore", "notAfter")
    )
    due = datetime.datetime.now(datetime.UTC) > end - ahead(start, end)
    return {"not_before": start.isoformat(), "not_after": end.isoformat(), "due": due}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    settings = deployment.load()
    if argv == ["needed"]:
        return 0 if needed(settings) else 1
    if argv == ["run"] and needed(settings):
        CADDYFILE.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        CADDYFILE.write_text(caddyfile(settings))
        storage().mkdir(mode=0o700, exist_ok=True)
        os.execvp("caddy", ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"])  # noqa: S606
    print(__doc__, file=sys.stderr)
    return 2
