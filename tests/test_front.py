"""The hub's TLS front (quickjh.front): the Caddyfile each setting gives, and what the report says of a certificate."""

from __future__ import annotations

import copy
import datetime
import json

import pytest

from quickjh import front, sync

SETTINGS = {
    "https": True,
    "proxy_listen": "127.0.0.1:444",
    "front": {
        "acme": True,
        "names": ["hub.example.org", "jupyter.example.org"],
        "email": "it@example.org",
        "directory": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "ca_bundle": "",
        "renew_interval": "10m",
        "http": True,
        "public_port": 443,
    },
}


def settings(**front_changes) -> dict:
    out = copy.deepcopy(SETTINGS)
    out["front"].update(front_changes)
    return out


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKJH_STATE", str(tmp_path))
    return tmp_path


def test_acme_certifies_the_names_passes_to_the_proxy_over_tls_and_redirects_plain_http(state):
    text = front.caddyfile(settings())
    assert "acme_ca https://acme-staging-v02.api.letsencrypt.org/directory" in text
    assert "email it@example.org" in text and "renew_interval 10m" in text and "admin off" in text
    assert f"root {state}/acme" in text  # the account key and certificates on the state volume
    assert "hub.example.org, jupyter.example.org {" in text
    assert "reverse_proxy https://127.0.0.1:444" in text and "tls_trusted_ca_certs /etc/quickjh/tls/hub.crt" in text
    assert "http://hub.example.org, http://jupyter.example.org {\n\tredir https://{host}{uri} permanent" in text
    assert "acme_ca_root" not in text
    text = front.caddyfile(settings(ca_bundle="/etc/quickjh/tls/acme-ca.pem", public_port=8443, email=""))
    assert "acme_ca_root /etc/quickjh/tls/acme-ca.pem" in text and "email" not in text
    assert "redir https://{host}:8443{uri} permanent" in text  # the port users open, the same path


def test_without_acme_a_front_only_redirects_and_none_is_needed_without_a_port():
    text = front.caddyfile(settings(acme=False, public_port=8000))
    assert "acme_ca" not in text and "reverse_proxy" not in text
    assert "http:// {\n\tredir https://{host}:8000{uri} permanent\n}" in text
    assert front.needed(settings(acme=False)) and not front.needed(settings(acme=False, http=False))


def test_the_report_gives_each_certificates_end_and_whether_it_is_due(state, tmp_path, monkeypatch):
    from test_checks import certificate

    folder = state / "acme/certificates/acme-staging/hub.example.org"
    folder.mkdir(parents=True)
    certificate(folder, days=3)  # 60 days old, 3 left: past a third of its lifetime
    (folder / "hub.crt").rename(folder / "hub.example.org.crt")
    found = {c["name"]: c for c in front.certificates(settings())}
    assert found["hub.example.org"]["due"] is True and found["jupyter.example.org"] == {
        "name": "jupyter.example.org",
        "renewed by": "the hub",
        "missing": True,
    }
    end = datetime.datetime.fromisoformat(found["hub.example.org"]["not_after"])
    assert 2 <= (end - datetime.datetime.now(datetime.UTC)).days < 3
    tls = tmp_path / "tls"
    tls.mkdir()
    certificate(tls, days=300)
    monkeypatch.setattr(front, "HUB_CERT", tls / "hub.crt")
    (own,) = front.certificates(settings(acme=False))
    assert own["name"] == "quickjh_tls" and own["due"] is False  # the role's runs renew it 30 days before its end


# Caddy's own error lines (2.6.2 against pebble, in this repository's tests; the rate limit as Let's Encrypt words it)
REFUSED_HTTP = {
    "level": "error",
    "ts": 1796623050.5,
    "logger": "http.acme_client",
    "msg": "challenge failed",
    "identifier": "hub.example.org",
    "challenge_type": "http-01",
    "status_code": 400,
    "problem_type": "urn:ietf:params:acme:error:connection",
    "error": "Connection refused",
}
ELSEWHERE_ALPN = dict(
    REFUSED_HTTP,
    challenge_type="tls-alpn-01",
    problem_type="urn:ietf:params:acme:error:unauthorized",
    error="Failed to connect to 10.255.255.1:5001 for the tls-alpn-01 challenge",
)
WRONG_ANSWER = dict(
    REFUSED_HTTP,
    problem_type="urn:ietf:params:acme:error:unauthorized",
    error="Non-200 status code from HTTP: http://hub.example.org/.well-known/acme-challenge/x returned 404",
)
NO_SOLVERS = {
    "level": "error",
    "ts": 1796623052.8,
    "logger": "tls.renew",
    "msg": "could not get certificate from issuer",
    "identifier": "hub.example.org",
    "error": "[hub.example.org] solving challenges: hub.example.org: no solvers available for remaining challenges",
}
RATE_LIMITED = dict(
    NO_SOLVERS,
    logger="tls.obtain",
    error="HTTP 429 urn:ietf:params:acme:error:rateLimited - too many certificates (5) already issued for this exact "
    "set of identifiers in the last 168h0m0s, retry after 2026-12-08 10:00:00 UTC",
)
CA_SILENT = dict(
    NO_SOLVERS,
    error="registering account [mailto:it@example.org] with server: provisioning client: performing request: Get "
    '"https://172.17.0.1:14000/dir": dial tcp 172.17.0.1:14000: connect: connection refused',
)


@pytest.mark.parametrize(
    ("entry", "check", "todo"),
    [
        (REFUSED_HTTP, "the CA could not connect to hub.example.org on port 80", "open ports 80 and 443"),
        (ELSEWHERE_ALPN, "the CA could not connect to hub.example.org on port 443", "point hub.example.org at"),
        (WRONG_ANSWER, "the CA reached hub.example.org on port 80 but did not get this hub's answer", "not to"),
        (RATE_LIMITED, "the CA's rate limit", "staging directory"),
        (CA_SILENT, "the ACME CA did not answer", "quickjh_acme_directory"),
        (dict(NO_SOLVERS, error="HTTP 403 urn:ietf:params:acme:error:rejectedIdentifier - no"), "the CA refused", ""),
        (  # Let's Encrypt's DNS problem: its words say "timed out", its kind says DNS
            dict(
                REFUSED_HTTP,
                problem_type="urn:ietf:params:acme:error:dns",
                error="DNS problem: query timed out looking up A for hub.example.org",
            ),
            "the CA found no DNS record for hub.example.org",
            "A (or AAAA) record",
        ),
        (  # not retried, so it ends the order: the line without a challenge names it
            dict(NO_SOLVERS, error="HTTP 403 urn:ietf:params:acme:error:caa - CAA record forbids issuance"),
            "hub.example.org's CAA record does not allow this CA",
            "CAA record",
        ),
        (  # a later Caddy's form of the CA's problem
            {
                "ts": 1.0,
                "msg": "challenge failed",
                "identifier": "hub.example.org",
                "challenge_type": "http-01",
                "problem": {"type": "urn:ietf:params:acme:error:connection", "detail": "Timeout during connect"},
            },
            "the CA could not connect to hub.example.org on port 80",
            "open ports 80 and 443",
        ),
    ],
)
def test_a_failed_certificate_names_the_check_that_failed_and_what_to_do(entry, check, todo):
    said = front.advice(entry)
    assert said["check"].startswith(check) and todo in said["todo"] and said["at"] == entry["ts"]


def test_the_report_takes_each_names_last_failure_and_forgets_it_once_a_certificate_came(state):
    from test_checks import certificate

    (state / "acme").mkdir()
    lines = [REFUSED_HTTP, NO_SOLVERS, dict(WRONG_ANSWER, ts=1796623060.0, identifier="jupyter.example.org")]
    (state / "acme" / front.PROBLEMS).write_text("\n".join(map(json.dumps, lines)) + "\nnot json\n")
    found = {c["name"]: c for c in front.certificates(settings())}
    assert found["hub.example.org"]["problem"]["check"].startswith("the CA could not connect")  # not "no solvers"
    assert found["jupyter.example.org"]["missing"] and "did not get" in found["jupyter.example.org"]["problem"]["check"]
    line = sync.certificate_line(found["jupyter.example.org"], "hub")
    assert line.startswith(". WARNING: no certificate for jupyter.example.org yet: the CA reached jupyter.example.org")
    assert "(2026-12-07 05:57 UTC)" in line and "point jupyter.example.org at this host" in line
    folder = state / "acme/certificates/ca/hub.example.org"
    folder.mkdir(parents=True)
    certificate(folder, days=60)  # written now, after the failure: that failure is over
    (folder / "hub.crt").rename(folder / "hub.example.org.crt")
    found = {c["name"]: c for c in front.certificates(settings())}
    assert "problem" not in found["hub.example.org"]
    assert "failed" not in sync.certificate_line(found["hub.example.org"], "hub")
    (state / "acme" / front.PROBLEMS).write_text(json.dumps(dict(REFUSED_HTTP, ts=9999999999.0)) + "\n")
    (renewal,) = [c for c in front.certificates(settings()) if c["name"] == "hub.example.org"]
    assert "WARNING: its last renewal failed, the hub serves it meanwhile and tries again: the CA could not" in (
        sync.certificate_line(renewal, "hub")
    )


def test_acme_logs_certificates_to_docker_logs_and_errors_to_the_problems_file(state):
    text = front.caddyfile(settings())
    assert "log certificates {\n\t\toutput stderr\n\t\tinclude tls http.acme_client\n\t}" in text
    assert f"output file {state}/acme/problems.log" in text and "level ERROR" in text
    assert "log " not in front.caddyfile(settings(acme=False))
