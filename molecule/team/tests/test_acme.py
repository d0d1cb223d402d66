"""quickjh_tls acme against a real ACME CA on this machine (pebble, molecule/shared/acmeserver.py): the hub gets its
certificate for a DNS name and renews it by itself, without a playbook run, while a kernel keeps its state; port 80
redirects; a client and Chromium that trust only pebble's root connect; a failing challenge leaves the hub serving
the certificate it had, and so does a CA that does not answer, and the run says which check failed and what to do;
a name that does not point here is named by the run, and no other certificate is served in its place. The
scenario's hub goes back to its self-signed certificate at the end."""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509

from acmeserver import Pebble
from browser_check import round_trip
from hubclient import HubUser
from hubfixtures import converge

NAME = "hub.acme.test"  # pebble's DNS answers it with this machine's bridge address; so does this test's resolver
HTTP_PORT = 18080
VALIDITY = 90  # seconds: the hub renews with a third left, every 60 s
ROOT = Path(__file__).resolve().parents[3]
BASE_IMAGE = yaml.safe_load((ROOT / "roles/quickjh/defaults/main.yml").read_text())["quickjh_base_image"]


@pytest.fixture(scope="module")
def pebble(settings, tmp_path_factory):
    ca = Pebble(BASE_IMAGE, tmp_path_factory.mktemp("pebble"), HTTP_PORT, VALIDITY)
    print(f"\npebble's image: {ca.build_seconds:.1f} s")
    yield ca
    print(ca.container.logs(tail=15).decode(errors="replace"))
    ca.remove()


@pytest.fixture(scope="module")
def acme(settings, pebble, hub):
    """The team's hub in acme mode for NAME (published on the bridge's address, where pebble checks port 80); this
    test process resolves NAME there too. Back to the scenario's settings at the end. An earlier run's ACME state
    goes first: each pebble is a new CA, which knows none of the accounts and roots of the last."""
    hub().exec_run(["rm", "-rf", "/srv/jupyterhub/acme"])
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        return real(pebble.address if host == NAME else host, *args, **kwargs)

    socket.getaddrinfo = resolve
    extra = {
        "quickjh_tls": "acme",
        "quickjh_tls_names": [NAME],
        "quickjh_acme_directory": pebble.directory,
        "quickjh_acme_ca_bundle": str(pebble.bundle),
        "quickjh_acme_email": "team@acme.test",
        "quickjh_acme_renew_interval": "5s",
        "quickjh_http_port": HTTP_PORT,
        "quickjh_bind_address": pebble.address,
    }
    started = time.monotonic()
    result = converge("-e", json.dumps(extra))
    print(f"\nfrom self-signed to acme, certificate included: {time.monotonic() - started:.0f} s")
    root = Path(pebble.bundle).parent / "root.pem"
    root.write_text(pebble.root())  # what clients trust: the root pebble issues under
    url = f"https://{NAME}:{settings['quickjh_port']}{settings['quickjh_base_url'].rstrip('/')}"
    try:
        # The hub answers before its certificate is there: until it is.
        deadline = time.monotonic() + VALIDITY
        while True:
            try:
                served(url, root)
                break
            except OSError:  # ssl.SSLError too
                assert time.monotonic() < deadline, "no certificate from pebble"
                time.sleep(2)
        print(f"certificate served after {time.monotonic() - started:.0f} s")
        # And the hub's login page through it: once, in a rehearsal, the proxy answered 404 for over a minute after
        # the switch (its routes not yet back); the tests start from a hub that serves its page.
        while requests.get(f"{url}/hub/login", timeout=10, verify=str(root)).status_code != 200:
            assert time.monotonic() < deadline + 180, "the hub's login page did not answer through the front"
            time.sleep(2)
        print(f"login page served after {time.monotonic() - started:.0f} s")
        yield {"run": " ".join(result.stdout.split()), "extra": extra, "root": root, "url": url}
    finally:
        socket.getaddrinfo = real
        converge()


def served(acme_url: str, root: Path) -> x509.Certificate:
    """The certificate the hub serves for NAME, verified against pebble's root alone."""
    context = ssl.create_default_context(cafile=str(root))
    port = int(acme_url.split(":")[2].split("/", maxsplit=1)[0])
    with (
        socket.create_connection((NAME, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_the_hub_gets_a_certificate_that_a_client_trusting_only_the_cas_root_verifies(acme, passwords, settings):
    certificate = served(acme["url"], acme["root"])
    assert NAME in certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime.total_seconds() <= VALIDITY + 60
    assert f"Certificate {NAME}: until" in acme["run"]  # the run says until when
    user1 = HubUser(acme["url"], "user1", verify=str(acme["root"]))  # every request verified against that root
    user1.login(passwords["user1"])
    user1.start_server()
    assert user1.whoami()[0] == "user1"  # the kernel's websocket, through the front


def test_plain_http_on_port_80_redirects_to_https_with_the_same_path(acme, settings):
    plain = f"http://{NAME}:{HTTP_PORT}{settings['quickjh_base_url']}hub/login?next=%2Fjupyter%2Fhub%2Fhome"
    reply = requests.get(plain, allow_redirects=False, timeout=10)
    assert reply.status_code in (301, 308), reply.status_code
    assert reply.headers["Location"] == plain.replace(
        f"http://{NAME}:{HTTP_PORT}", f"https://{NAME}:{settings['quickjh_port']}"
    )


def test_a_person_in_chromium_trusting_only_the_cas_root_logs_in_runs_a_cell_and_a_terminal(acme, passwords):
    times = round_trip(
        acme["url"],
        "admin",
        passwords["admin"],
        flags=[f"--host-resolver-rules=MAP {NAME} {acme['extra']['quickjh_bind_address']}"],
        trust=acme["root"].read_text(),
    )
    print("\nbrowser over the ACME certificate: " + ", ".join(f"{step} {s:.1f} s" for step, s in times.items()))


def test_the_hub_renews_its_certificate_by_itself_while_a_kernel_keeps_its_state(acme, passwords, hub):
    started_at = hub().attrs["State"]["StartedAt"]
    first = served(acme["url"], acme["root"])
    user1 = HubUser(acme["url"], "user1", verify=str(acme["root"]))
    user1.login(passwords["user1"])
    user1.start_server()
    with user1.kernel() as execute:
        execute("kept = 'before the renewal'")
        deadline = time.monotonic() + VALIDITY + 30
        while served(acme["url"], acme["root"]).serial_number == first.serial_number:
            assert time.monotonic() < deadline, "no renewal"
            time.sleep(2)
        renewed = served(acme["url"], acme["root"])
        print(
            f"\nrenewed by the hub: {first.not_valid_after_utc:%H:%M:%S} -> {renewed.not_valid_after_utc:%H:%M:%S}"
            f" (no playbook run)"
        )
        assert execute("print(kept)").strip() == "before the renewal"  # the same kernel, over the new certificate
    assert hub().attrs["State"]["StartedAt"] == started_at  # nothing restarted the hub
    assert "certificate obtained successfully" in hub().logs().decode()


def wait_for_problem(hub, name: str, since: int, what: str) -> None:
    """Until Caddy logs an error about name after since (a Unix time) whose message is what."""
    deadline = time.monotonic() + VALIDITY + 30
    while not [
        line
        for line in hub().logs(since=since).decode().splitlines()
        if '"level":"error"' in line and f'"identifier":"{name}"' in line and f'"msg":"{what}"' in line
    ]:
        assert time.monotonic() < deadline, f"no {what!r} for {name}"
        time.sleep(2)


def test_a_failing_challenge_leaves_the_hub_serving_the_certificate_it_had_and_the_run_says_why(acme, pebble, hub):
    had = served(acme["url"], acme["root"])
    since = int(time.time())
    pebble.resolve(NAME, "127.0.0.1")  # the CA now looks for NAME where nothing listens: port 80 is unreachable
    try:
        wait_for_problem(hub, NAME, since, "challenge failed")
        time.sleep(5)
        now = served(acme["url"], acme["root"])  # verified: still valid, and the same one
        assert now.serial_number == had.serial_number
        print(f"\na failed renewal: still serving the certificate valid until {now.not_valid_after_utc:%H:%M:%S}")
        said = " ".join(converge("--check", "-e", json.dumps(acme["extra"])).stdout.split())
        assert (
            f"WARNING: its last renewal failed, the hub serves it meanwhile and tries again: the CA could not "
            f"connect to {NAME} on port" in said
        ), said[-3000:]
        assert f"point {NAME} at this host and open ports 80 and 443" in said
        print("the run: " + said[said.index("Certificate " + NAME) :].split(". ", 2)[1][:400])
    finally:
        pebble.forget(NAME)


def test_a_name_that_does_not_point_here_is_named_by_the_run_and_nothing_is_served_in_its_place(acme, pebble, hub):
    pebble.resolve("broken.acme.test", "10.255.255.1")
    extra = dict(acme["extra"], quickjh_tls_names=[NAME, "broken.acme.test"])
    since = int(time.time())
    said = " ".join(converge("-e", json.dumps(extra)).stdout.split())
    assert "WARNING: no certificate for broken.acme.test yet" in said, said[-3000:]
    # NAME still served. Its certificate may have run out while the test above kept its renewals failing (90 s
    # certificates; Caddy then waits a minute or two before it tries again): the restart for the new name renews it
    # at once, a few seconds after the run (which now ends as soon as the hub answers).
    deadline = time.monotonic() + 30
    while True:
        try:
            served(acme["url"], acme["root"])
            break
        except ssl.SSLCertVerificationError as error:
            assert "expired" in str(error) and time.monotonic() < deadline, error
            time.sleep(1)
    wait_for_problem(hub, "broken.acme.test", since, "challenge failed")
    checked = " ".join(converge("--check", "-e", json.dumps(extra)).stdout.split())
    assert "WARNING: broken.acme.test resolves to nothing" in checked  # as this host sees it
    assert "WARNING: no certificate for broken.acme.test yet: the CA " in checked, checked[-3000:]
    assert "point broken.acme.test at this host" in checked  # the CA's check, and what to do
    print("\nthe run: " + checked[checked.index("WARNING: no certificate") :][:400])
    # No certificate of another kind in its place: a client that trusts the CA refuses the name.
    context = ssl.create_default_context(cafile=str(acme["root"]))
    port = int(acme["url"].split(":")[2].split("/", maxsplit=1)[0])
    with socket.create_connection((NAME, port), timeout=10) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="broken.acme.test")


def test_a_port_80_another_program_holds_stops_the_run_before_anything_changes(acme, pebble):
    with socket.socket() as other:
        other.bind((pebble.address, 0))
        other.listen()
        port = other.getsockname()[1]
        failed = converge("--check", "-e", json.dumps(dict(acme["extra"], quickjh_http_port=port)), ok=False)
    said = " ".join((failed.stdout + failed.stderr).split())
    assert failed.returncode != 0
    assert f"Port {port} at {pebble.address} on instance is held by another program" in said, said[-3000:]
    assert "the ACME CA cannot reach the hub on port 80 (quickjh_http_port)" in said


def test_a_ca_that_does_not_answer_leaves_the_hub_serving_the_certificate_it_had(acme, pebble, hub):
    """Pebble stays down (a new start would make a new root): only the first-deployment test comes after."""
    had = served(acme["url"], acme["root"])
    since = int(time.time())
    pebble.container.stop()
    wait_for_problem(hub, NAME, since, "could not get certificate from issuer")
    now = served(acme["url"], acme["root"])
    assert now.serial_number == had.serial_number
    said = " ".join(converge("--check", "-e", json.dumps(acme["extra"])).stdout.split())
    assert "its last renewal failed, the hub serves it meanwhile and tries again: the ACME CA did not answer" in said
    assert "check quickjh_acme_directory" in said, said[-3000:]
    print("\nthe run: " + said[said.index("WARNING: its last renewal") :][:300])


def test_a_first_deployment_without_a_certificate_serves_nothing_and_the_run_says_why(acme, pebble, hub):
    """After the CA went down (the test above): a hub with no ACME state yet, for a name never certified."""
    hub().exec_run(["rm", "-rf", "/srv/jupyterhub/acme"])  # as on a first deployment
    extra = dict(acme["extra"], quickjh_tls_names=["first.acme.test"], quickjh_start_timeout=20)
    failed = converge("-e", json.dumps(extra), ok=False)
    said = " ".join((failed.stdout + failed.stderr).split())
    assert failed.returncode != 0
    assert "until the ACME CA has checked every name of quickjh_tls_names, the hub serves nothing over HTTPS" in said
    print("\nthe run: " + said[said.index("The hub did not answer") :][:600])
    # Nothing in its place: even a client that accepts any certificate gets none.
    anything = ssl.create_default_context()
    anything.check_hostname, anything.verify_mode = False, ssl.CERT_NONE
    port = int(acme["url"].split(":")[2].split("/", maxsplit=1)[0])
    with socket.create_connection((pebble.address, port), timeout=10) as raw, pytest.raises(ssl.SSLError):
        anything.wrap_socket(raw, server_hostname="first.acme.test")
