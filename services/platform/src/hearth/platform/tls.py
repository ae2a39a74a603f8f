"""Certificates for the front door's HTTPS: a CA of the platform's own, or the operator's files.

``ensure_generated`` keeps, in one folder (``var/tls/`` natively)::

    ca.crt        the platform's CA certificate: give it to browsers and devices (it is also
                  served at /tls/ca.crt by the front door)
    ca.key        its private key (mode 0600); never leaves the machine
    server.crt    the front door's certificate, signed by the CA, for localhost, 127.0.0.1, ::1
                  and every extra host name asked for
    server.key    its private key (mode 0600)

The CA is made once (10 years) and kept, so devices that trust it keep trusting the platform;
the server certificate is made again when the names change or when it expires within 30 days.
For production an operator brings a certificate from their own CA instead
(docs/operations.md, "TLS").
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEFAULT_NAMES", "TlsFiles", "ensure_generated", "server_names"]

DEFAULT_NAMES: Final = ("localhost", "127.0.0.1", "::1")
"""The names every generated server certificate carries."""
CA_DAYS: Final = 3650
SERVER_DAYS: Final = 825
RENEW_BEFORE: Final = datetime.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate chain and its key; ``ca`` is the CA to hand out (None: the operator's)."""

    cert: Path
    key: Path
    ca: Path | None = None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key


def server_names(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The names of the server certificate: the defaults, then ``extra`` (each once)."""
    return tuple(dict.fromkeys([*DEFAULT_NAMES, *(name.strip() for name in extra if name.strip())]))


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _make_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hearth platform CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    _write_key(folder / "ca.key", key)
    (folder / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _server_current(folder: Path, names: Sequence[str], ca: x509.Certificate) -> bool:
    try:
        cert = x509.load_pem_x509_certificate((folder / "server.crt").read_bytes())
        _load_key(folder / "server.key")
    except (OSError, ValueError):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return (
        cert.issuer == ca.subject
        and san == _san(names)
        and cert.not_valid_after_utc - RENEW_BEFORE > _now()
    )


def _make_server(
    folder: Path, names: Sequence[str], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(folder / "server.key", key)
    (folder / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_generated(folder: Path, extra_names: Sequence[str] = ()) -> TlsFiles:
    """The platform's CA and a current server certificate in ``folder`` (made when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    try:
        ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
        ca_key = _load_key(folder / "ca.key")
    except (OSError, ValueError):
        ca, ca_key = _make_ca(folder)
    names = server_names(extra_names)
    if not _server_current(folder, names, ca):
        _make_server(folder, names, ca, ca_key)
    return TlsFiles(cert=folder / "server.crt", key=folder / "server.key", ca=folder / "ca.crt")
