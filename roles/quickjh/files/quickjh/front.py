"""quickjh-front: the hub's TLS front, Caddy, where quickjh_tls acme or quickjh_http_port asks for one.

  quickjh-front needed     exit 0 when this deployment has a front (the entry point then keeps one running)
  quickjh-front run        write the Caddyfile from the settings and run Caddy in its place

With acme, Caddy answers HTTPS on 443 with certificates it gets from the ACME CA for quickjh_tls_names (HTTP-01 on
80), keeps them and its account key on the state volume (acme/, root's alone, in backups), renews each at a third of
its lifetime left, looking every quickjh_acme_renew_interval, and swaps it in without dropping a connection; it
passes requests to the proxy on 127.0.0.1:444 (HTTPS, the role's own certificate). On 80 it answers the challenges
and redirects everything else to HTTPS with the same path. Without acme, a front on 80 only redirects.
Caddy's certificate lines go to docker logs; its errors also to acme/problems.log, from which the run's report says,
for a name without a certificate or whose renewal failed, which check failed and what to do.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import ssl
import sys
from pathlib import Path

from quickjh import settings as deployment
from quickjh.settings import state_dir

CADDYFILE = Path("/run/quickjh/Caddyfile")
HUB_CERT = Path("/etc/quickjh/tls/hub.crt")


PROBLEMS = "problems.log"  # Caddy's errors of getting and renewing certificates, in storage()
LOGGERS = "tls http.acme_client"  # Caddy's loggers of certificates and of its ACME client


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
        options += [  # certificates' lines on stderr (docker logs) too: a named logger takes them from the default
            f"log certificates {{\n\t\toutput stderr\n\t\tinclude {LOGGERS}\n\t}}",
            f"log problems {{\n\t\toutput file {storage() / PROBLEMS} {{\n\t\t\troll_size 1MiB\n\t\t\troll_keep 1\n"
            f"\t\t}}\n\t\tlevel ERROR\n\t\tinclude {LOGGERS}\n\t}}",
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


# What a failed check of the CA means, by the problem it names (RFC 8555's error types), and what to do.
CA_CHECK_FAILED = {
    "connection": (
        "the CA could not connect to {name} on port {port}",
        "point {name} at this host and open ports 80 and 443 to the internet (firewall, router, cloud security group)",
    ),
    "dns": ("the CA found no DNS record for {name}", "point {name}'s A (or AAAA) record at this host"),
    "caa": ("{name}'s CAA record does not allow this CA", "add the CA to the CAA record, or remove the record"),
}
REACHED_ELSEWHERE = (
    "the CA reached {name} on port {port} but did not get this hub's answer",
    "point {name} at this host, and send its ports 80 and 443 here (not to another server or proxy)",
)
RATE_LIMITED = (
    "the CA's rate limit",
    "wait until the time the CA names (docker logs); try changes against the CA's staging directory first",
)
CA_SILENT = (
    "the ACME CA did not answer, or its certificate was not trusted",
    "check quickjh_acme_directory, that this host reaches it over HTTPS, and (a private CA) quickjh_acme_ca_bundle",
)
UNREACHABLE = re.compile(r"[Ff]ailed to connect|connection refused|[Tt]imeout|timed out|no route to host")


def advice(entry: dict) -> dict:
    """The check that failed and what to do, from one of Caddy's error lines about a name (Caddy 2.6's fields, or
    the "problem" object of later versions)."""
    problem = entry.get("problem") if isinstance(entry.get("problem"), dict) else {}
    error = f"{entry.get('error', '')} {problem.get('detail', '')}"
    urn = (
        entry.get("problem_type")
        or problem.get("type")
        or (re.findall(r"urn:ietf:params:acme:error:\w+", error) or [""])[-1]
    )
    kind = str(urn).rsplit(":", 1)[-1]
    challenge = entry.get("challenge_type")
    port = 443 if challenge == "tls-alpn-01" else 80
    if kind in CA_CHECK_FAILED:  # what the CA says it found, before what the words around it suggest
        check, todo = CA_CHECK_FAILED[kind]
    elif challenge:  # the CA's own look at this host, for the name
        check, todo = CA_CHECK_FAILED["connection"] if UNREACHABLE.search(error) else REACHED_ELSEWHERE
    elif kind == "rateLimited":
        check, todo = RATE_LIMITED
    elif kind:
        check, todo = (
            "the CA refused (an ACME error of its own kind, see docker logs)",
            "docker logs has the CA's words",
        )
    else:
        check, todo = CA_SILENT
    name = str(entry.get("identifier", ""))
    return {
        "check": check.replace("{name}", name).replace("{port}", str(port)),
        "todo": todo.replace("{name}", name),
        "at": entry.get("ts", 0),
    }


def last_problems() -> dict[str, dict]:
    """Each name's last failure to get or renew its certificate (Caddy's problems.log): when, the check, the advice.
    A failure that only follows from an earlier one (no way left to prove the name) is not one of its own."""
    try:
        lines = (storage() / PROBLEMS).read_text(errors="replace").splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("identifier")
            and entry.get("msg") in ("challenge failed", "could not get certificate from issuer")
            and "no solvers available" not in str(entry.get("error", ""))
        ):
            out[entry["identifier"]] = advice(entry)
    return out


def needed(settings: dict) -> bool:
    return bool(settings["front"]["acme"] or settings["front"]["http"])


def certificates(settings: dict) -> list[dict]:
    """The certificates the hub serves, each with its end, who renews it and whether that is due."""
    found = []
    if settings["front"]["acme"]:
        problems = last_problems()
        for name in settings["front"]["names"]:
            # oldest first, whichever CA issued them: the last is the one served
            paths = sorted(storage().glob(f"certificates/*/{name}/{name}.crt"), key=lambda path: path.stat().st_mtime)
            problem = {"problem": problems[name]} if name in problems else {}
            if not paths:
                found.append({"name": name, "renewed by": "the hub", "missing": True, **problem})
                continue
            newest = paths[-1]
            if problem and problem["problem"]["at"] < newest.stat().st_mtime:
                problem = {}  # a certificate came after it
            # due at a third of its lifetime left: the hub renews it then
            found.append(
                {
                    "name": name,
                    "renewed by": "the hub",
                    **read(newest, lambda start, end: (end - start) / 3),
                    **problem,
                }
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
