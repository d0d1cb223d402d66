"""A CA of a test's own and one server certificate under it, for the test servers that speak TLS (slapd, pebble's
API): the CA's PEM is the bundle the hub is told to trust."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def issue(folder: Path, ca: str, server: str, address: str, names: tuple[str, ...] = ()) -> Path:
    """folder/ca.pem (the CA named ca), folder/SERVER.pem and folder/SERVER.key (the server's certificate for its
    address and DNS names; the key written last: a server's start may wait for it); returns the CA's PEM."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, ca)])

    def certificate(subject: x509.Name, public_key, extension, critical: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(extension, critical=critical)
            .sign(ca_key, hashes.SHA256())
        )

    root = certificate(ca_name, ca_key.public_key(), x509.BasicConstraints(ca=True, path_length=None), True)
    sans = [x509.IPAddress(ipaddress.ip_address(address)), *map(x509.DNSName, names)]
    leaf = certificate(
        x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, names[0] if names else address)]),
        key.public_key(),
        x509.SubjectAlternativeName(sans),
        False,
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(root.public_bytes(pem))
    (folder / f"{server}.pem").write_bytes(leaf.public_bytes(pem))
    (folder / f"{server}.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "ca.pem"
