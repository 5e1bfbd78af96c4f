"""TLS for SIP (RFC 3261 §26.2, RFC 5922): the `ssl` contexts of the client and server side.

Client side: TLS 1.2 at least, the server's certificate verified against the configured CA
bundle (or the system's trust store when none is given) and its name checked against the host
the request is for (`Target.host`, RFC 5922 §7.2); both can be turned off for lab setups.
Server side: needs a certificate and key; without one there is no TLS listener (client TLS
works all the same). A client certificate is optional and offered when the server asks.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


class TlsConfigError(ValueError):
    """A TLS setting cannot be used (unreadable file, key not matching the certificate...)."""


@dataclass(frozen=True)
class TlsConfig:
    ca_file: str | Path | None = None  # PEM bundle of trusted CAs; None: the system's store
    cert_file: str | Path | None = None  # PEM certificate (chain), for our server and client side
    key_file: str | Path | None = None  # PEM key; None: the key is in cert_file
    verify_server: bool = True  # verify the server's certificate and its name
    verify_client: bool = False  # our TLS listener requires a certificate from clients

    @property
    def has_certificate(self) -> bool:
        return self.cert_file is not None


def client_context(config: TlsConfig) -> ssl.SSLContext:
    """The context for the connections we open."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.verify_server:
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        _load_trust(context, config)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.cert_file is not None:
        _load_certificate(context, config)
    return context


def server_context(config: TlsConfig) -> ssl.SSLContext | None:
    """The context of our TLS listener, or None when no certificate is configured."""
    if config.cert_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_certificate(context, config)
    if config.verify_client:
        context.verify_mode = ssl.CERT_REQUIRED
        _load_trust(context, config)
    return context


def _load_trust(context: ssl.SSLContext, config: TlsConfig) -> None:
    if config.ca_file is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return
    try:
        context.load_verify_locations(cafile=str(config.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load the TLS CA file {config.ca_file}: {exc}") from exc


def _load_certificate(context: ssl.SSLContext, config: TlsConfig) -> None:
    key = str(config.key_file) if config.key_file is not None else None
    try:
        context.load_cert_chain(str(config.cert_file), key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(
            f"cannot load the TLS certificate {config.cert_file}"
            f"{f' with key {config.key_file}' if key else ''}: {exc}") from exc


def describe_tls_failure(exc: BaseException, *, host: str, address: str, port: int) -> str:
    """A message a user can act on for a failed TLS handshake (`exc` or its cause)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    where = f"{address}:{port}" + (f" ({host})" if host != address else "")
    if isinstance(cause, ssl.SSLCertVerificationError):
        detail = cause.verify_message or str(cause)
        return (f"TLS certificate verification failed for {where}: {detail}; configure the CA "
                f"that signed the server's certificate (tls.ca_list), or turn server "
                f"verification off")
    if cause is not None:
        return f"TLS handshake with {where} failed: {cause.reason or cause}"
    return f"TLS handshake with {where} failed: {exc!r}"
