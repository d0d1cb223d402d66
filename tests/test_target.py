"""The role's look at a target (library/quickjh_target.py): Python modules, the OS, files' checksums."""

from __future__ import annotations

import hashlib

import quickjh_target


def test_modules_that_do_not_import_are_named():
    assert quickjh_target.missing(["json", "quickjh_no_such_module", "os"]) == ["quickjh_no_such_module"]


def test_a_files_checksum_and_none_for_what_is_not_a_file(tmp_path):
    pem = b"-----BEGIN CERTIFICATE-----\n"
    (tmp_path / "ca.crt").write_bytes(pem)
    assert quickjh_target.checksum(str(tmp_path / "ca.crt")) == hashlib.sha1(pem).hexdigest()
    assert quickjh_target.checksum(str(tmp_path)) is None
    assert quickjh_target.checksum(str(tmp_path / "none")) is None


def test_this_machine_is_debian_like():
    release = quickjh_target.os_release()
    assert release["ID"] == "debian" or "debian" in release.get("ID_LIKE", "")


def test_a_port_another_program_listens_on_is_named_and_the_containers_own_is_not():
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert quickjh_target.ports_taken([port], "0.0.0.0", {"exists": False, "container": None}) == [port]
        assert quickjh_target.ports_taken([port], "127.0.0.1", {"exists": False, "container": None}) == [port]
        published = {"HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": str(port)}]}}}
        assert quickjh_target.ports_taken([port], "0.0.0.0", {"exists": True, "container": published}) == []
    assert quickjh_target.ports_taken([port], "0.0.0.0", {"exists": False, "container": None}) == []  # let go


def test_an_ipv6_address_in_dockers_brackets_is_probed_and_nothing_is_said_when_docker_did_not_answer():
    import socket

    with socket.socket(socket.AF_INET6) as other:
        other.bind(("::1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert quickjh_target.ports_taken([port], "[::1]", {"exists": False, "container": None}) == [port]
        unknown = {"exists": False, "container": None, "unknown": True}  # the hub's own ports may be the ones held
        assert quickjh_target.ports_taken([port], "[::1]", unknown) == []


def test_a_certificates_end_and_names_are_read_as_x509_certificate_info_gives_them(tmp_path):
    from test_checks import certificate

    cert, _ = certificate(tmp_path, days=10, names=("hub.example.org", "127.0.0.1"))
    found = quickjh_target.certificate(cert)
    assert found["sans"] == ["DNS:hub.example.org", "IP:127.0.0.1"]
    assert 9 * 86400 < found["seconds_left"] <= 10 * 86400
    (tmp_path / "bad.crt").write_bytes(b"not a certificate")
    assert quickjh_target.certificate(str(tmp_path / "bad.crt")) == {"exists": False}
    assert quickjh_target.certificate(str(tmp_path / "none.crt")) == {"exists": False}
    assert quickjh_target.certificate("") == {"exists": False}


def test_a_file_is_as_expected_only_with_that_content_and_its_owners_alone(tmp_path):
    secrets = tmp_path / "secrets.json"
    secrets.write_text('{"ldap_search_password": "x"}\n')
    secrets.chmod(0o600)
    sha1 = hashlib.sha1(secrets.read_bytes()).hexdigest()
    assert quickjh_target.as_expected(str(secrets), sha1)
    assert not quickjh_target.as_expected(str(secrets), hashlib.sha1(b"other").hexdigest())
    secrets.chmod(0o644)
    assert not quickjh_target.as_expected(str(secrets), sha1)
    assert not quickjh_target.as_expected(str(tmp_path / "none"), sha1)


def test_a_small_files_text_is_read_and_nothing_is_said_of_what_cannot_be_read(tmp_path):
    (tmp_path / "container.stamp").write_text("0123abcd 5e1f")
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    assert quickjh_target.text(str(tmp_path / "container.stamp")) == "0123abcd 5e1f"
    assert quickjh_target.text(str(tmp_path / "binary")) == ""
    assert quickjh_target.text(str(tmp_path / "none")) == ""
    assert quickjh_target.text(str(tmp_path)) == ""
