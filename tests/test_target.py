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
