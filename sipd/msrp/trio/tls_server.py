"""The passive side of a direct MSRP TLS connection asks the peer for its certificate without
judging it, so that it can be held against the a=fingerprint of the peer's SDP once the first
request names the session (RFC 4975 §14.1, RFC 8122 §5).

Python's ssl cannot: a server that asks for a client certificate verifies it against its CAs,
and a self-signed one (what every MSRP peer has) fails the handshake. pyOpenSSL can (a
verification callback that accepts any certificate). `PassiveContext` is the listener's context:
it makes, through `wrap_bio` as ssl.SSLContext does, an object with the part of ssl.SSLObject's
interface that tls_stream.TlsStream uses, so the one TLS stream serves both sides:

    stream = TlsStream(tcp, passive_context(identity), server_side=True)
    await stream.do_handshake()
    der = stream.getpeercert(binary_form=True)  # None: the peer showed no certificate

The object moves the ciphertext between the stream's memory BIOs and pyOpenSSL's own, and
answers OpenSSL's conditions as Python's ssl names them (SSLWantReadError, SSLZeroReturnError,
SSLError).
"""

from __future__ import annotations

import ssl
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

BIO_READ = 262144  # bytes taken from pyOpenSSL's outgoing BIO at once
# The suites Python's ssl offers by default (CPython's own cipher string): no more than the
# rest of sipd's TLS, where OpenSSL's default would add CBC with SHA-1, static RSA (no forward
# secrecy), PSK and SRP.
CIPHERS = (b"@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES"
           b":!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM")


def _accept_any(connection: SSL.Connection, certificate: Any, error: int, depth: int,
                ok: int) -> bool:
    """Any certificate is taken here: it is compared with a=fingerprint afterwards."""
    return True


class PassiveContext:
    """TLS 1.2 or later, our certificate, and a request for the peer's (never refused for want
    of a CA: the fingerprint check is the caller's)."""

    def __init__(self, cert_path: str, key_path: str) -> None:
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_cipher_list(CIPHERS)
        context.set_options(SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_RENEGOTIATION)
        context.use_certificate_chain_file(cert_path)
        context.use_privatekey_file(key_path)
        context.check_privatekey()
        context.set_verify(SSL.VERIFY_PEER, _accept_any)
        context.set_session_id(b"sipd-msrp")
        self.context = context

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, *,
                 server_side: bool = False, server_hostname: str | None = None) -> _PassiveTls:
        if not server_side:
            raise ValueError("a PassiveContext serves the passive (server) side only")
        return _PassiveTls(SSL.Connection(self.context, None), incoming, outgoing)


class _PassiveTls:
    """The server side of one connection, as ssl.SSLObject (the part TlsStream uses)."""

    server_side = True

    def __init__(self, connection: SSL.Connection, incoming: ssl.MemoryBIO,
                 outgoing: ssl.MemoryBIO) -> None:
        self._tls = connection
        self._tls.set_accept_state()
        self._incoming = incoming
        self._outgoing = outgoing
        self._eof_passed = False

    def do_handshake(self) -> None:
        self._run(self._tls.do_handshake)

    def read(self, size: int) -> bytes:
        data: bytes = self._run(self._tls.recv, size)
        return data

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._run(self._tls.sendall, data)
        return len(data)

    def unwrap(self) -> None:
        self._run(self._tls.shutdown)

    def version(self) -> str | None:
        return self._tls.get_protocol_version_name()

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        """The peer's certificate, DER (the only form given); None if it showed none."""
        certificate = self._tls.get_peer_certificate(as_cryptography=True)
        return None if certificate is None else certificate.public_bytes(Encoding.DER)

    def _run(self, operation: Any, *args: Any) -> Any:
        """`operation` on OpenSSL, with the stream's ciphertext passed in first and what it
        made passed out after; its conditions as Python's ssl raises them."""
        if self._incoming.pending:
            self._tls.bio_write(self._incoming.read())
        if self._incoming.eof and not self._eof_passed:
            self._eof_passed = True
            self._tls.bio_shutdown()
        try:
            return operation(*args)
        except SSL.WantReadError:
            raise ssl.SSLWantReadError("the TLS peer's next bytes are needed") from None
        except SSL.ZeroReturnError:
            raise ssl.SSLZeroReturnError("the TLS peer closed the session") from None
        except SSL.Error as exc:
            raise ssl.SSLError(f"TLS failed: {_describe(exc)}") from exc
        finally:
            self._pass_out()

    def _pass_out(self) -> None:
        while True:
            try:
                records = self._tls.bio_read(BIO_READ)
            except SSL.WantReadError:
                return
            if not records:
                return
            self._outgoing.write(records)


def _describe(exc: SSL.Error) -> str:
    """OpenSSL's reason, without the tuple layout pyOpenSSL gives it."""
    reasons = [entry[2] for entry in exc.args[0] if isinstance(entry, tuple) and len(entry) > 2] \
        if exc.args and isinstance(exc.args[0], list) else []
    return ", ".join(str(reason) for reason in reasons if reason) or str(exc) or type(exc).__name__
