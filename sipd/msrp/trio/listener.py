"""The MSRP listener (RFC 4975 §5.4, RFC 6135 passive side): one port for every session that
waits for its peer to connect. A connection belongs to the session its first request names
in To-Path (by session-id); a request for no waiting session gets 481 and the connection
closes. The first request must come within `first_frame_timeout` seconds.

Connections are bounded like SIP's (docs/decisions.md, File descriptors): one is taken only
while `may_accept()` (the daemon's descriptor budget) says so, and at most `max_pending` may
wait for their first request at once; past that a new one takes the place of the oldest
waiting (a flood of silent connections cannot lock out a real peer, which names its session
in its first request and is then no longer waiting)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import trio

from ..message import MsrpRequest, MsrpResponse, make_response
from ..parser import FrameError, FrameParser
from .connection import MsrpConnectError
from .tls_server import PassiveContext
from .tls_stream import TlsStream

log = logging.getLogger(__name__)

MAX_PENDING = 100  # connections that have not named their session yet
LOG_EVERY = 10.0   # seconds between log lines about refused connections


@dataclass
class IncomingConnection:
    """A connection handed to the session it asked for: the stream, the parser that read its
    first request (holding a partial frame that came after), and the frames read so far (the
    first request, and any that arrived with it)."""

    stream: trio.abc.Stream
    parser: FrameParser
    frames: list[MsrpRequest | MsrpResponse | FrameError]
    peer: str


class MsrpListener:
    def __init__(self, host: str, port: int = 0, *, tls: PassiveContext | None = None,
                 first_frame_timeout: float = 30.0, max_header_bytes: int = 16384,
                 may_accept: Callable[[], bool] = lambda: True,
                 max_pending: int = MAX_PENDING) -> None:
        self.host = host
        self.may_accept = may_accept
        self.max_pending = max_pending
        self._pending: OrderedDict[int, trio.CancelScope] = OrderedDict()
        self._serial = 0
        self.refused = 0  # connections closed at once, out of descriptors
        self.displaced = 0  # waiting connections closed for a newer one
        self._logged_at = -LOG_EVERY
        self.port = port
        self.tls = tls
        self.first_frame_timeout = first_frame_timeout
        self.max_header_bytes = max_header_bytes
        self._waiting: dict[str, trio.MemorySendChannel[IncomingConnection]] = {}

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listens until cancelled; `task_status.started(port)` once bound."""
        try:
            listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        except OSError as exc:
            raise MsrpConnectError(f"cannot listen for MSRP on {self.host}:{self.port}: "
                                   f"{exc.strerror or exc}") from exc
        self.port = listeners[0].socket.getsockname()[1]
        log.info("MSRP listening on %s:%s (%s)", self.host, self.port,
                 "tls" if self.tls else "tcp")
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener, nursery)
            task_status.started(self.port)

    async def _accept_loop(self, listener: trio.SocketListener,
                           nursery: trio.Nursery) -> None:
        # not trio.serve_listeners: it closes each stream when its handler returns, and a
        # stream handed to a session must outlive the handler
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:  # EMFILE and the like: wait, do not spin
                    log.warning("MSRP accept failed: %s", exc)
                    await trio.sleep(0.1)
                    continue
                if not self.may_accept():
                    stream.socket.close()
                    self.refused += 1
                    self._log_refusals()
                    continue
                if len(self._pending) >= self.max_pending:
                    _oldest, scope = self._pending.popitem(last=False)
                    scope.cancel()
                    self.displaced += 1
                    self._log_refusals()
                self._serial += 1
                scope = self._pending[self._serial] = trio.CancelScope()
                nursery.start_soon(self._handle, stream, self._serial, scope)

    def _log_refusals(self) -> None:
        now = trio.current_time()
        if now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.warning("MSRP connections: %d refused (file descriptors are kept for RPC and "
                        "the daemon's own files), %d closed for newer ones (more than %d had "
                        "not named their session)", self.refused, self.displaced,
                        self.max_pending)

    def expect(self, session_id: str) -> trio.MemoryReceiveChannel[IncomingConnection]:
        """Where the connection for `session_id` will arrive."""
        send, receive = trio.open_memory_channel[IncomingConnection](1)
        self._waiting[session_id] = send
        return receive

    def forget(self, session_id: str) -> None:
        self._waiting.pop(session_id, None)

    async def _handle(self, tcp: trio.SocketStream, serial: int,
                      scope: trio.CancelScope) -> None:
        with scope:
            try:
                await self._handle_first(tcp)
            finally:
                self._pending.pop(serial, None)

    async def _handle_first(self, tcp: trio.SocketStream) -> None:
        peer = "?"
        try:
            address = tcp.socket.getpeername()
            peer = f"{address[0]}:{address[1]}"
        except OSError:
            pass
        stream: trio.abc.Stream = tcp
        handed_over = False
        try:
            with trio.move_on_after(self.first_frame_timeout) as scope:
                if self.tls is not None:
                    # passive_context: asks for the peer's certificate (tls_server.py)
                    stream = TlsStream(tcp, self.tls, server_side=True)
                    await stream.do_handshake()
                handed_over = await self._first_request(stream, peer)
            if scope.cancelled_caught:
                log.info("MSRP connection from %s: no request within %g s", peer,
                         self.first_frame_timeout)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("MSRP connection from %s failed: %s", peer, exc)
        finally:
            if not handed_over:
                with trio.move_on_after(1) as cleanup:
                    cleanup.shield = True
                    await stream.aclose()

    async def _first_request(self, stream: trio.abc.Stream, peer: str) -> bool:
        parser = FrameParser(max_header_bytes=self.max_header_bytes)
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return False
            frames = parser.feed(data)
            if not frames:
                continue
            first = frames[0]
            if isinstance(first, FrameError) or not isinstance(first, MsrpRequest):
                log.info("MSRP connection from %s: its first frame is no request (%s)", peer,
                         getattr(first, "detail", first))
                return False
            try:
                to_path = first.to_path
                session_id = to_path[-1].session_id if to_path else None
            except ValueError:
                session_id = None
            waiter = self._waiting.pop(session_id or "", None)
            if waiter is None:
                try:
                    response = make_response(first, 481, "no such session here")
                    await stream.send_all(response.serialize())
                except ValueError:
                    pass
                log.info("MSRP connection from %s: no session %s waits here", peer, session_id)
                return False
            waiter.send_nowait(IncomingConnection(stream, parser, frames, peer))
            return True
