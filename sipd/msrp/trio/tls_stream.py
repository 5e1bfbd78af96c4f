"""TLS over a trio socket stream for MSRP, giving a reader every record it can decrypt at once.

trio's SSLStream hands over one TLS record (16 KiB at most) per `receive_some`, so a reader
loop (parser, session, events) ran once per record. Here the stream reads the socket in large
reads into an ssl.SSLObject through memory BIOs and `receive_some` returns all the records
those reads completed (up to `max_bytes`): one pass of the reader per read of the socket, as
over plain TCP. It behaves as SSLStream does (https_compatible=False) where MSRP depends on it:

- errors of TLS (handshake, certificate, a bad record) and an EOF of the transport without
  close_notify raise trio.BrokenResourceError from the ssl error, and the stream stays broken;
- the peer's close_notify makes `receive_some` return b"";
- `aclose` sends our close_notify (after a completed handshake) without waiting for the
  peer's, then closes the transport; a receive or send waiting meanwhile gets
  trio.ClosedResourceError;
- one task may receive and one send at a time (trio.BusyResourceError otherwise).
"""

from __future__ import annotations

import ssl
from typing import Any

import trio

from .tls_server import PassiveContext

TRANSPORT_READ = 256 * 1024  # a read of the socket
RECORD = 16384  # the most plaintext a TLS record carries


class TlsStream(trio.abc.Stream):
    def __init__(self, transport: trio.SocketStream, context: ssl.SSLContext | PassiveContext, *,
                 server_side: bool = False, server_hostname: str | None = None) -> None:
        self.transport_stream = transport
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self._handshook = False
        self._handshake_lock = trio.Lock()
        self._transport_lock = trio.StrictFIFOLock()  # ciphertext leaves in the order made
        self._receiving = False
        self._sending = False
        self._broken = False
        self._closed = False
        self._eof = False  # the peer's close_notify came
        self._error: ssl.SSLError | None = None  # after plaintext still to hand over
        self._delayed = b""  # a TLS 1.3 server's session tickets, sent with its first data
        self._kept = b""  # plaintext taken out whose hand-over a cancellation interrupted

    # -- state -------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError
        if self._broken:
            raise trio.BrokenResourceError

    def _fail(self, exc: BaseException) -> trio.BrokenResourceError:
        self._broken = True
        error = trio.BrokenResourceError()
        error.__cause__ = exc
        return error

    def getpeercert(self, binary_form: bool = False) -> Any:
        """As ssl.SSLObject.getpeercert: the DER bytes with binary_form."""
        return self._ssl.getpeercert(binary_form)

    # -- handshake ---------------------------------------------------------------------------

    async def do_handshake(self) -> None:
        self._check()
        async with self._handshake_lock:
            if self._handshook:
                await trio.lowlevel.checkpoint()
                return
            while True:
                try:
                    self._ssl.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    await self._flush()
                    await self._feed()
                except ssl.SSLError as exc:
                    raise self._fail(exc) from exc
            self._handshook = True
            if self._ssl.server_side and self._ssl.version() == "TLSv1.3":
                # Session tickets go with the next bytes we send, as trio's SSLStream sends
                # them: a client that closes without reading would otherwise reset the
                # connection.
                self._delayed = self._outgoing.read()
            await self._flush()

    async def _feed(self) -> None:
        """One read of the transport into the TLS object (its EOF as such)."""
        try:
            data = await self.transport_stream.receive_some(TRANSPORT_READ)
        except trio.BrokenResourceError:
            self._broken = True
            raise
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    async def _flush(self) -> None:
        """Sends what the TLS object made (records, alerts, handshake messages), after the
        session tickets held back (the records are numbered: they go first)."""
        if not self._outgoing.pending:
            return
        async with self._transport_lock:
            data = self._outgoing.read()
            if self._delayed:
                data = self._delayed + data
                self._delayed = b""
            if data:
                try:
                    await self.transport_stream.send_all(data)
                except BaseException:
                    # A cancellation too: some unknown part of the records went, the rest is
                    # lost, and a record after them would be garbage to the peer (trio's
                    # SSLStream breaks the same way).
                    self._broken = True
                    raise

    # -- receiving ---------------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self._check()
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        self._receiving = True
        try:
            if not self._handshook:
                await self.do_handshake()
            limit = TRANSPORT_READ if max_bytes is None else max_bytes
            if limit < 1:
                raise ValueError("max_bytes must be >= 1")
            # Plaintext taken out of the TLS object is never lost to a cancellation: the one
            # cancellable wait after it (sending what the read made) keeps it for the next call.
            await trio.lowlevel.checkpoint_if_cancelled()
            waited = False
            while True:
                data = self._kept if self._kept else self._decrypted(limit)
                self._kept = b""
                if data is not None and len(data) > limit:
                    data, self._kept = data[:limit], data[limit:]
                if self._outgoing.pending:  # a TLS 1.3 key update answered, an alert
                    rest = self._kept
                    self._kept = (data or b"") + rest
                    await self._flush()
                    self._kept = rest
                    waited = True
                if data is not None:
                    if not waited:
                        await trio.lowlevel.cancel_shielded_checkpoint()
                    return data
                await self._feed()
                waited = True
        finally:
            self._receiving = False

    def _decrypted(self, limit: int) -> bytes | None:
        """All the plaintext the TLS object can give now, up to `limit` bytes; b"" after the
        peer's close_notify; None when it needs more from the transport."""
        if self._eof:
            return b""
        if self._error is not None:
            raise self._fail(self._error) from self._error
        pieces: list[bytes] = []
        total = 0
        read = self._ssl.read
        try:
            while total < limit:
                piece = read(min(RECORD, limit - total))
                if not piece:  # the peer's close_notify (SSLObject says so this way)
                    self._eof = True
                    break
                pieces.append(piece)
                total += len(piece)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            self._eof = True
            if not pieces:
                return b""
        except ssl.SSLError as exc:
            if not pieces:
                raise self._fail(exc) from exc
            self._error = exc  # told by the next call, after what came before it
        if not pieces:
            return b"" if self._eof else None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    # -- sending -----------------------------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check()
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            if not self._handshook:
                await self.do_handshake()
            if data:
                try:
                    self._ssl.write(data)
                except ssl.SSLError as exc:
                    raise self._fail(exc) from exc
            await self._flush()
            await trio.lowlevel.checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        self._check()
        await self.transport_stream.wait_send_all_might_not_block()

    # -- closing -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._handshook and not self._broken:
                try:
                    self._ssl.unwrap()  # close_notify into the outgoing BIO
                except ssl.SSLError:
                    pass  # SSLWantReadError: the peer's close_notify is not awaited
                try:
                    await self._flush()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        finally:
            await self.transport_stream.aclose()
