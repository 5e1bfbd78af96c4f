"""TLS for MSRP: our certificate (made on first start, or configured), its a=fingerprint, the
contexts of our connections, and the check of a peer's certificate against the fingerprint of
its SDP (RFC 4975 §14.1, RFC 8122).

Direct connections carry self-signed certificates, so the CA system plays no part: each side
compares the other's certificate with the a=fingerprint of its SDP and drops the connection on
a mismatch. The active side (TLS client, Python's ssl) does it after its handshake; the passive
side asks for the client's certificate in its handshake (tls_server.py: pyOpenSSL, for Python's
ssl cannot take a self-signed client certificate) and checks it once the first request has
named the session, and with it the SDP. Relays are TLS servers with ordinary certificates,
verified against the CA bundle and their name unless verification is turned off.
"""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from ...sip.trio.tls import TlsConfig, client_context
from ..sdp import Fingerprint
from . import tls_server

CERT_NAME = "msrp-cert.pem"
KEY_NAME = "msrp-key.pem"
VALIDITY = datetime.timedelta(days=3650)


class MsrpTlsError(Exception):
    """A TLS identity that cannot be used, or a peer certificate that does not match."""


@dataclass(frozen=True)
class TlsIdentity:
    cert_path: Path
    key_path: Path
    fingerprint: Fingerprint


def load_identity(cert_path: str | Path, key_path: str | Path) -> TlsIdentity:
    """A configured certificate and key (PEM)."""
    cert_path, key_path = Path(cert_path), Path(key_path)
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise MsrpTlsError(f"cannot read the MSRP certificate {cert_path}: {exc}") from exc
    der = certificate.public_bytes(serialization.Encoding.DER)
    identity = TlsIdentity(cert_path, key_path, Fingerprint.of_certificate(der))
    server_context(identity)  # the key must load and match
    return identity


def ensure_identity(state_dir: str | Path) -> TlsIdentity:
    """Our self-signed certificate in `state_dir`, made on first use (the key mode 0600) and
    made again when it has expired or cannot be read."""
    directory = Path(state_dir)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    if cert_path.exists() and key_path.exists():
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if certificate.not_valid_after_utc > datetime.datetime.now(datetime.UTC):
                return load_identity(cert_path, key_path)
        except (OSError, ValueError, MsrpTlsError):
            pass
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sipd MSRP")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + VALIDITY)
                   .sign(key, hashes.SHA256()))
    key_bytes = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    temporary = key_path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(key_bytes)
    os.replace(temporary, key_path)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return load_identity(cert_path, key_path)


def server_context(identity: TlsIdentity) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION  # tls_stream.TlsStream writes without waiting
    try:
        context.load_cert_chain(str(identity.cert_path), str(identity.key_path))
    except (OSError, ssl.SSLError) as exc:
        raise MsrpTlsError(f"cannot load the MSRP certificate {identity.cert_path} with key "
                           f"{identity.key_path}: {exc}") from exc
    return context


def passive_context(identity: TlsIdentity) -> tls_server.PassiveContext:
    """The listener's (tls_server.py): asks the active side for its certificate, to be held
    against the a=fingerprint of its SDP."""
    try:
        return tls_server.PassiveContext(str(identity.cert_path), str(identity.key_path))
    except (OSError, SSL.Error) as exc:
        raise MsrpTlsError(f"cannot load the MSRP certificate {identity.cert_path} with key "
                           f"{identity.key_path}: {exc}") from exc


def peer_context(identity: TlsIdentity | None) -> ssl.SSLContext:
    """To a peer: its certificate is checked against a=fingerprint afterwards, not by a CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.options |= ssl.OP_NO_RENEGOTIATION  # tls_stream.TlsStream writes without waiting
    if identity is not None:
        context.load_cert_chain(str(identity.cert_path), str(identity.key_path))
    return context


def relay_context(identity: TlsIdentity | None, *, ca_file: str | Path | None,
                  verify: bool) -> ssl.SSLContext:
    """To a relay: an ordinary server certificate, verified unless `verify` is off."""
    return client_context(TlsConfig(
        ca_file=ca_file, verify_server=verify,
        cert_file=identity.cert_path if identity else None,
        key_file=identity.key_path if identity else None))


def fingerprint_mismatch(der: bytes | None, expected: list[Fingerprint]) -> str | None:
    """Why a peer certificate `der` is refused for the fingerprints of its SDP, or None."""
    if not expected:
        return "the peer's SDP has no a=fingerprint for its TLS certificate"
    if der is None:
        return "the peer presented no TLS certificate"
    if any(fingerprint.matches(der) for fingerprint in expected):
        return None
    got = Fingerprint.of_certificate(der, expected[0].algorithm)
    return (f"the peer's TLS certificate ({got}) does not match the a=fingerprint of its SDP "
            f"({expected[0]})")
