"""Running it for a team: HTTPS, idle culling, per-user memory limits, container limits and log rotation."""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509

from hubfixtures import converge, wait_healthy


def certificate(settings) -> x509.Certificate:
    pem = ssl.get_server_certificate((settings["quickjh_bind_address"], settings["quickjh_port"]))
    return x509.load_pem_x509_certificate(pem.encode())


def test_users_log_in_and_run_code_over_verified_https(login, hub_url):
    assert hub_url.startswith("https://")
    assert login("user1").whoami()[0] == "user1"  # every request verified against the hub's cert


def test_plain_http_is_not_served_on_the_port(hub_url):
    url = hub_url.replace("https://", "http://") + "/hub/health"
    try:
        reply = requests.get(url, timeout=10)
    except requests.RequestException:
        return
    assert reply.status_code != 200, reply.text[:200]


def test_a_new_certificate_reaches_the_proxy_alone_and_a_kernel_keeps_its_state(settings, hub, hub_url, login):
    before = hub()

    def names() -> list[str]:
        sans = certificate(settings).extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return sans.value.get_values_for_type(x509.DNSName)

    assert "hub.example.test" not in names()
    user1 = login("user1")
    with user1.kernel() as execute:
        execute("kept = 'before the new certificate'")
        result = converge("-e", json.dumps({"quickjh_tls_names": ["hub.example.test"]}))
        assert "RUNNING HANDLER [quickjh : Give the proxy the new certificate]" in result.stdout
        assert "RUNNING HANDLER [quickjh : Restart the hub]" not in result.stdout
        wait_healthy(hub_url)
        deadline = time.monotonic() + 30
        while "hub.example.test" not in names() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "hub.example.test" in names()
        assert execute("print(kept)").strip() == "before the new certificate"  # the same kernel, a new websocket
    after = hub()
    assert (after.id, after.attrs["State"]["StartedAt"]) == (before.id, before.attrs["State"]["StartedAt"])


def test_a_certificate_due_within_30_days_is_renewed_by_the_next_run(settings, hub_url):
    import datetime
    from pathlib import Path

    from cryptography.hazmat.primitives import hashes, serialization

    tls = Path(settings["quickjh_config_dir"]) / "tls"
    key = serialization.load_pem_private_key((tls / "hub.key").read_bytes(), None)
    current = x509.load_pem_x509_certificate((tls / "hub.crt").read_bytes())
    now = datetime.datetime.now(datetime.UTC)
    due = (
        x509.CertificateBuilder()
        .subject_name(current.subject)
        .issuer_name(current.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=10))
        .add_extension(current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, False)
        .sign(key, hashes.SHA256())
    )
    (tls / "hub.crt").write_bytes(due.public_bytes(serialization.Encoding.PEM))  # same key and names, 10 days left
    converge()
    wait_healthy(hub_url)
    assert certificate(settings).not_valid_after_utc > now + datetime.timedelta(days=800)


def test_bad_certificate_files_are_refused_before_anything_changes(settings, hub, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other_key = tmp_path / "other.key"
    other_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert = tmp_path / "hub.crt"
    cert.write_text(ssl.get_server_certificate((settings["quickjh_bind_address"], settings["quickjh_port"])))
    before = hub().attrs["State"]["StartedAt"]
    config = Path(settings["quickjh_config_dir"])
    certificate_before, settings_before = (config / "tls/hub.crt").read_bytes(), (config / "settings.json").read_bytes()
    for key, message in (
        (other_key, "not the certificate of quickjh_tls_key"),
        (tmp_path / "missing.key", "missing.key"),
    ):
        result = converge(
            "-e",
            json.dumps({"quickjh_tls": "files", "quickjh_tls_cert": str(cert), "quickjh_tls_key": str(key)}),
            ok=False,
        )
        assert message in " ".join((result.stdout + result.stderr).split())
    assert hub().attrs["State"]["StartedAt"] == before
    assert (config / "tls/hub.crt").read_bytes() == certificate_before
    assert (config / "settings.json").read_bytes() == settings_before


def test_an_idle_server_is_stopped_and_a_busy_one_is_not(login, settings):
    idle, busy = login("user1"), login("admin")
    timeout = settings["quickjh_cull_idle_timeout"]
    # busy: a cell running until the test is done with it (at most as long as the test waits, and a minute)
    busy_cell = (
        f"import os, time\nend = time.time() + {timeout * 3 + 60}\n"
        "while time.time() < end and not os.path.exists('done'): time.sleep(1)"
    )
    worker = threading.Thread(target=busy.run, args=(busy_cell,), kwargs={"timeout": timeout * 3 + 120})
    worker.start()
    deadline = time.monotonic() + timeout * 3
    while idle.model().get("servers") and time.monotonic() < deadline:
        time.sleep(5)
    assert not idle.model().get("servers"), "the idle server was not stopped"
    assert busy.model()["servers"][""]["ready"], "the busy server was stopped"
    busy.run("open('done', 'w').close()", path="other.ipynb")  # another notebook: its own kernel
    worker.join()
    busy.run("import os; os.remove('done')", path="other.ipynb")


def test_a_user_past_their_memory_limit_gets_memory_error_and_others_keep_working(login):
    user1 = login("user1")
    printed = user1.run("x = bytearray(1024 ** 3)\nprint('allocated')")
    assert "MemoryError" in printed and "allocated" not in printed
    assert user1.run("x = bytearray(64 * 1024 ** 2); print('small is fine')").strip() == "small is fine"
    assert login("admin").whoami()[0] == "admin"
    # JupyterLab's status bar shows the user's memory against that limit (jupyter-resource-usage)
    memory = user1.server_api("GET", "/metrics/v1").json()["limits"]["memory"]
    assert memory["rss"] == 600 * 1024**2, memory


def test_container_limits_and_log_rotation(hub):
    config = hub().attrs["HostConfig"]
    assert config["Memory"] == 3 * 1024**3
    assert config["NanoCpus"] == int(1.5e9)
    assert config["PidsLimit"] == 8192  # quickjh_pids_limit's default
    assert config["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "2", "max-size": "1m"}}


@pytest.fixture(autouse=True, scope="module")
def _hub_is_up(hub_url):
    wait_healthy(hub_url)
