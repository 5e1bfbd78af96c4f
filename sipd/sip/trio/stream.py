"""One SIP connection over TCP or TLS (RFC 3261 §18.3): framing, keep-alives, an outbox.

A `Connection` wraps a connected trio stream. Its `run()` task reads and frames messages
(`StreamFramer`) and hands each to `deliver(message, connection)`; a writer drains the outbox, so
`send(data)` never blocks its caller (a peer that stops reading gets its connection closed when
its outbox passes a limit, rather than stalling the stack). On plain TCP with nothing queued,
`send` writes at once what the socket takes: no wait for the writer task on each hop of a call
setup. What the framer reports is handled
here: a malformed message is answered with its error response, a CRLFCRLF ping with a CRLF
(RFC 5626 §4.4.1), lost framing with the error response and then the close.

A connection a peer opened may be given a `message_timeout`: it must bring its first message
within that time of opening, and each message it begins must end within that time of its
first octet, or it is closed. Idle connections are the transports' business (idle_timeout);
this is about connections that hold a descriptor without ever saying anything complete.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Callable

import trio

from ..builder import error_response
from ..errors import SipParseError
from ..message import AnyMessage
from ..parser import (
    KeepAlivePing,
    KeepAlivePong,
    MessageReceived,
    MessageRejected,
    StreamBroken,
    StreamFramer,
)

log = logging.getLogger("sipd.sip.trio.transport")

PING = b"\r\n\r\n"
PONG = b"\r\n"
MAX_OUTBOX_BYTES = 4 * 1024 * 1024  # queued, unsent data; past it the peer is not reading
CLOSE_GRACE = 1.0  # seconds for a TLS close_notify before the socket is simply closed
LINGER = 2.0  # seconds to drain a peer's data after a framing error (see _linger)
_READ_SIZE = 65536


class Connection:
    """A TCP or TLS connection carrying SIP messages.

    `keys` are the (transport, address, port) under which the connection table finds it: the
    peer's address, and aliases (the target we connected to, RFC 5923 `alias`).
    """

    def __init__(
        self,
        transport: str,
        stream: trio.abc.Stream,
        *,
        remote: tuple[str, int],
        local: tuple[str, int],
        outgoing: bool,
        max_message_size: int,
        deliver: Callable[[AnyMessage, "Connection"], None],
        on_closed: Callable[["Connection"], None],
        ping_interval: float | None = None,
        server_name: str | None = None,
        message_timeout: float | None = None,
    ) -> None:
        self.transport = transport
        self.stream = stream
        self.remote = remote
        self.local = local
        self.outgoing = outgoing
        self.server_name = server_name
        self.keys: set[tuple[str, str, int]] = set()
        self.framer = StreamFramer(max_message_size)
        self.last_activity = trio.current_time()
        self.closed = False  # no more sending: closing or closed
        self.pongs = 0  # CRLF answers to our pings
        self.opened_at = self.last_activity
        self.messages = 0  # complete messages received (well-formed or not)
        self.timed_out = False  # closed for not completing a message in time
        self._deliver = deliver
        self._on_closed = on_closed
        self._ping_interval = ping_interval
        self._outbox_send, self._outbox = trio.open_memory_channel[bytes | None](math.inf)
        self._queued = 0
        self._writing = False  # the writer task is in send_all
        self._done = trio.Event()
        self._linger = False  # framing lost: half-close and drain before closing
        self._message_timeout = message_timeout
        self._message_deadline = math.inf if not message_timeout else (
            self.opened_at + message_timeout)
        self._message_scope = trio.CancelScope()

    def __repr__(self) -> str:
        direction = "to" if self.outgoing else "from"
        return (f"<Connection {self.transport} {direction} {self.remote[0]}:{self.remote[1]}"
                f"{' closed' if self.closed else ''}>")

    # -- sending -----------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Queues `data` for sending; raises ConnectionClosed when the connection is closing."""
        if self.closed:
            raise ConnectionClosed(f"the {self.transport} connection to "
                                   f"{self.remote[0]}:{self.remote[1]} is closed")
        self._queued += len(data)
        if self._queued > MAX_OUTBOX_BYTES:
            log.warning("%r: peer not reading (%d octets queued); closing", self, self._queued)
            self.abort()
            raise ConnectionClosed(f"the {self.transport} connection to "
                                   f"{self.remote[0]}:{self.remote[1]} is not draining")
        if self._queued == len(data) and not self._writing:
            data = self._write_now(data)  # nothing ahead of it: no wait for the writer task
            if not data:
                self._queued = 0
                return
            self._queued = len(data)
        self._outbox_send.send_nowait(data)

    def _write_now(self, data: bytes) -> bytes:
        """Writes what the socket takes at once (plain TCP only; TLS has its own buffering);
        returns the rest, which the writer task sends. Safe: nothing else writes while the
        outbox is empty and the writer waits on it."""
        if not isinstance(self.stream, trio.SocketStream):
            return data
        try:
            sent = os.write(self.stream.socket.fileno(), data)  # non-blocking, as trio set it
        except (BlockingIOError, InterruptedError):
            return data
        except OSError:
            return data  # the writer task meets the same error and ends the connection
        self.last_activity = trio.current_time()
        return data[sent:]

    def close(self) -> None:
        """Closes after what is queued has been sent."""
        if not self.closed:
            self.closed = True
            self._outbox_send.send_nowait(None)

    def abort(self) -> None:
        """Closes now, dropping what is queued."""
        self.closed = True
        self._queued = 0
        self._outbox_send.close()

    async def wait_closed(self) -> None:
        await self._done.wait()

    # -- the task ----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop)
                await self._write_loop()
                if self._linger:
                    await self._drain()
                nursery.cancel_scope.cancel()
        except Exception:  # noqa: BLE001 - a connection's failure never reaches the stack
            log.exception("%r failed", self)
        finally:
            self.closed = True
            self._outbox_send.close()
            self._on_closed(self)  # out of the table before the peer can see the close
            await _close_stream(self.stream)
            log.debug("%r closed", self)
            self._done.set()

    async def _write_loop(self) -> None:
        while True:
            with trio.move_on_after(self._idle_ping_delay()) as scope:
                try:
                    data = await self._outbox.receive()
                except trio.EndOfChannel:
                    return  # aborted
            if scope.cancelled_caught:
                data = PING
            if data is None:
                return
            chunks = [data]
            closing = False
            while True:  # coalesce what else is queued into one write
                try:
                    more = self._outbox.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                if more is None:
                    closing = True
                    break
                chunks.append(more)
            payload = b"".join(chunks)
            self._queued = max(0, self._queued - len(payload))
            self._writing = True
            try:
                await self.stream.send_all(payload)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("%r: send failed: %r", self, exc)
                return
            finally:
                self._writing = False
            self.last_activity = trio.current_time()
            if closing:
                return

    async def _drain(self) -> None:
        """Half-closes and reads what the peer still sends, for a moment: closing a socket
        with unread data in it sends a reset, which can destroy the error response we just
        sent before the peer reads it (RFC 3261 §18.3 asks for the response, then the close)."""
        with trio.move_on_after(LINGER):
            try:
                if isinstance(self.stream, trio.SocketStream):
                    await self.stream.send_eof()
                while await self.stream.receive_some(_READ_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError,
                    OSError):
                pass

    def _idle_ping_delay(self) -> float:
        if not self.outgoing or not self._ping_interval:
            return math.inf
        return max(0.0, self.last_activity + self._ping_interval - trio.current_time())

    async def _read_loop(self) -> None:
        try:
            self._message_scope.deadline = self._message_deadline
            with self._message_scope:
                while True:
                    data = await self.stream.receive_some(_READ_SIZE)
                    if not data:
                        log.debug("%r: closed by the peer", self)
                        return
                    self.last_activity = trio.current_time()
                    if not self._handle_data(data):
                        return
                    self._move_message_deadline()
            if self._message_scope.cancelled_caught:
                self.timed_out = True
                log.info("%r: no complete SIP message within %g s: closing", self,
                         self._message_timeout)
                self.abort()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.debug("%r: receive failed: %r", self, exc)
            self.abort()
        finally:
            self.close()

    def _move_message_deadline(self) -> None:
        """Between messages there is no deadline once one came; a message begun starts one
        (more octets of the same message do not move it: a trickle is no excuse)."""
        timeout = self._message_timeout
        if not timeout:
            return
        if self.framer.buffered:
            if self._message_deadline == math.inf:
                self._message_deadline = trio.current_time() + timeout
        elif self.messages:
            self._message_deadline = math.inf
        self._message_scope.deadline = self._message_deadline

    def _handle_data(self, data: bytes | bytearray) -> bool:
        """Feeds the framer; False when the connection must close."""
        for event in self.framer.receive_data(data):
            if isinstance(event, (MessageReceived, MessageRejected)):
                self.messages += 1
                self._message_deadline = math.inf  # a next message starts its own
            if isinstance(event, MessageReceived):
                try:
                    self._deliver(event.message, self)
                except Exception:  # noqa: BLE001 - one bad message must not end the connection
                    log.exception("%r: error handling %r", self, event.message)
            elif isinstance(event, MessageRejected):
                log.debug("%r: malformed message: %s", self, event.error.detail)
                self._answer_error(event.error)
            elif isinstance(event, KeepAlivePing):
                self._send_quietly(PONG)
            elif isinstance(event, KeepAlivePong):
                self.pongs += 1
            elif isinstance(event, StreamBroken):
                log.debug("%r: framing lost: %s", self, event.error.detail)
                self._answer_error(event.error)
                self._linger = True
                return False
        return True

    def _answer_error(self, error: SipParseError) -> None:
        response = error_response(error)
        if response is not None:
            self._send_quietly(response.to_bytes())

    def _send_quietly(self, data: bytes) -> None:
        try:
            self.send(data)
        except ConnectionClosed:
            pass


class ConnectionClosed(Exception):
    """Sending on a connection that is closing or closed."""


async def _close_stream(stream: trio.abc.Stream) -> None:
    with trio.CancelScope(shield=True):
        with trio.move_on_after(CLOSE_GRACE) as scope:
            try:
                await stream.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        if scope.cancelled_caught:
            await trio.aclose_forcefully(stream)
