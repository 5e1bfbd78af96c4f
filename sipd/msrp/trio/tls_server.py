"""The passive side of a direct MSRP TLS connection: a TLS server stream that asks the peer
for its certificate without judging it, so that it can be held against the a=fingerprint of
the peer's SDP once the first request names the session (RFC 4975 §14.1, RFC 8122 §5).

Python's ssl cannot do that: a server that asks for a client certificate verifies it against
its CAs, and a self-signed one (what every MSRP peer has) fails the handshake. pyOpenSSL can
(a verification callback that accepts any certificate), over memory BIOs, so the bytes still
travel on trio's socket stream: `receive_some` feeds what the socket brings to OpenSSL and
hands over every byte of plaintext it has, `send_all` writes the records OpenSSL makes.

    stream = ServerTlsStream(tcp, context)      # context: server_context(identity)
    await stream.do_handshake()
    der = stream.getpeercert(binary_form=True)  # None: the peer sent no certificate
"""

from __future__ import annotations

from typing import Any

import trio
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

READ_SIZE = 262144  # bytes asked of the socket at once
WRITE_SIZE = 262144  # bytes of records handed to the socket at once (at most)
# The suites Python's ssl offers by default (CPython's own cipher string): no more than the
# rest of sipd's TLS, where OpenSSL's default would add CBC with SHA-1, static RSA (no forward
# secrecy), PSK and SRP.
CIPHERS = (b"@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES"
           b":!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM")


def _accept_any(connection: SSL.Connection, certificate: Any, error: int, depth: int,
                ok: int) -> bool:
    """Any certificate is taken here: it is compared with a=fingerprint afterwards."""
    return True


def server_context(cert_path: str, key_path: str) -> SSL.Context:
    """TLS 1.2 or later, our certificate, and a request for the peer's (never refused for want
    of a CA: the fingerprint check is the caller's)."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_cipher_list(CIPHERS)
    context.set_options(SSL.OP_CIPHER_SERVER_PREFERENCE)
    context.use_certificate_chain_file(cert_path)
    context.use_privatekey_file(key_path)
    context.check_privatekey()
    context.set_verify(SSL.VERIFY_PEER, _accept_any)
    context.set_session_id(b"sipd-msrp")
    return context


class ServerTlsStream(trio.abc.Stream):
    """A TLS server over `transport`. One task may receive while another sends; what the
    receiving side must write (alerts, key updates) goes under the same lock as the sends."""

    def __init__(self, transport: trio.SocketStream, context: SSL.Context) -> None:
        self.transport_stream = transport
        self._tls = SSL.Connection(context, None)
        self._tls.set_accept_state()
        self._write_lock = trio.StrictFIFOLock()
        self._closed = False
        self._eof = False

    # -- handshake, and the peer's certificate ------------------------------------------------

    async def do_handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
            except SSL.WantReadError:
                await self._flush()
                await self._feed("during the TLS handshake")
                continue
            except SSL.Error as exc:
                await self._flush_quietly()  # the alert says why, if the peer still listens
                raise trio.BrokenResourceError(f"TLS handshake failed: {_describe(exc)}") \
                    from exc
            await self._flush()
            return

    def getpeercert(self, binary_form: bool = True) -> bytes | None:
        """The peer's certificate, DER (the only form given); None if it sent none."""
        certificate = self._tls.get_peer_certificate(as_cryptography=True)
        return None if certificate is None else certificate.public_bytes(Encoding.DER)

    # -- trio.abc.Stream ----------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Every byte of plaintext OpenSSL can give now (up to `max_bytes`), reading the socket
        only when it has none; b"" at the peer's close_notify or the socket's end."""
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        limit = max_bytes or READ_SIZE
        while True:
            if self._eof:
                await trio.lowlevel.checkpoint()
                return b""
            pieces: list[bytes] = []
            size = 0
            try:
                while size < limit:
                    piece = self._tls.recv(limit - size)
                    pieces.append(piece)
                    size += len(piece)
            except SSL.WantReadError:
                pass
            except SSL.ZeroReturnError:  # close_notify
                self._eof = True
            except SSL.Error as exc:  # the socket's end is _feed's to see, never OpenSSL's
                raise trio.BrokenResourceError(f"TLS failed: {_describe(exc)}") from exc
            await self._flush_if_free()
            if pieces:
                await trio.lowlevel.checkpoint()
                return b"".join(pieces)
            if not self._eof and not await self._feed(None):
                self._eof = True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        if not data:
            await trio.lowlevel.checkpoint()
            return
        try:
            self._tls.sendall(data)  # every record into the BIO, then out in order
        except SSL.Error as exc:
            raise trio.BrokenResourceError(f"TLS failed: {_describe(exc)}") from exc
        await self._flush()

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            try:
                self._tls.shutdown()  # our close_notify; the peer's is not waited for
            except SSL.Error:
                pass
            with trio.move_on_after(1):
                await self._flush_quietly()
        finally:
            await self.transport_stream.aclose()

    # -- the socket side ----------------------------------------------------------------------

    async def _feed(self, during: str | None) -> bool:
        """Hands OpenSSL the socket's next bytes; False at the socket's end (raised instead
        `during` a step that cannot end there)."""
        data = await self.transport_stream.receive_some(READ_SIZE)
        if not data:
            if during is not None:
                raise trio.BrokenResourceError(f"the peer closed the connection {during}")
            return False
        self._tls.bio_write(data)
        return True

    async def _flush(self) -> None:
        """Writes every record OpenSSL has made, in order. Only the lock's holder takes
        records out, and it takes them until there are none before it lets go (no schedule
        point between), so nothing overtakes what was made before it."""
        async with self._write_lock:
            await self._write_records()

    async def _flush_if_free(self) -> None:
        """What reading made (an alert, a key update; mostly nothing), with no schedule point
        when there is nothing: a sender holding the lock takes it out with its own."""
        if self._write_lock.locked():
            return
        self._write_lock.acquire_nowait()
        try:
            await self._write_records()
        finally:
            self._write_lock.release()

    async def _write_records(self) -> None:
        while True:
            try:
                records = self._tls.bio_read(WRITE_SIZE)
            except SSL.WantReadError:
                return
            if not records:
                return
            await self.transport_stream.send_all(records)

    async def _flush_quietly(self) -> None:
        try:
            await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


def _describe(exc: SSL.Error) -> str:
    """OpenSSL's reason, without the tuple layout pyOpenSSL gives it."""
    reasons = [entry[2] for entry in exc.args[0] if isinstance(entry, tuple) and len(entry) > 2] \
        if exc.args and isinstance(exc.args[0], list) else []
    return ", ".join(str(reason) for reason in reasons if reason) or str(exc) or type(exc).__name__
