"""The hub's TLS front (quickjh.front): the Caddyfile each setting gives, and what the report says of a certificate."""

from __future__ import annotations

import copy
import datetime

import pytest

from quickjh import front

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
