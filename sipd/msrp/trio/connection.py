"""One MSRP connection running one sans-I/O session (and, through a relay, the relay client's
AUTH refreshes) over a trio stream, TCP or TLS.

    connection = MsrpConnection(stream, session, description="tcp 127.0.0.1:2855")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.run)
        message_id = connection.send_message(b"hi", "text/plain")
        async for event in connection.events:     # core events, then ConnectionClosed
            ...
        await connection.close("user hung up")

`run` returns when the connection is over: closed by us, by the peer, or failed (unusable
input, a frame left half-sent for 30 s, a relay that stopped granting our path). Its last event
is ConnectionClosed with the reason; every message still in flight has failed before it.
Events wait in a bounded queue (EventQueue): a consumer that stops reading stops the reading
of the connection, not the daemon.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

import trio

from ..events import ConnectionFailed, Event, UnmatchedResponse
from ..outgoing import BodySource
from ..relay import RelayAuthClient, RelayGranted, RelayRefused
from ..session import MsrpSession
from ..uri import MsrpUri
from .queue import EventQueue

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024  # a read while the reads come back full (a long message streaming in)
# Otherwise (chat): a buffer under malloc's mmap threshold (128 KiB). A bigger one is mapped
# and unmapped for every read, however little it brings: 12 µs against 1 µs a read.
SMALL_READ = 64 * 1024
EVENT_BUFFER = 256
CLOSE_GRACE = 5.0  # seconds what is queued may take to leave when we close
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


@dataclass
class ConnectionClosed(Event):
    """The connection is over; the last event of a connection."""

    reason: str
    by_peer: bool = False


@dataclass
class RelayPathChanged(Event):
    """A relay refresh gave a new Use-Path: our a=path is now `local_path` (a re-INVITE tells
    the peer; the old path works until the old grant runs out)."""

    local_path: list[MsrpUri]


class MsrpConnectError(Exception):
    """No MSRP connection could be opened; the message says why (for the user)."""


class MsrpConnection:
    def __init__(self, stream: trio.abc.Stream, session: MsrpSession, *,
                 relay_client: RelayAuthClient | None = None, description: str = "") -> None:
        self.stream = stream
        self.session = session
        self.relay_client = relay_client
        self.description = description
        self.events: EventQueue[Event] = EventQueue(EVENT_BUFFER)
        # Events taken from the session that the queue had no room for yet, in order; one
        # task at a time hands them over (`_publish_pending`).
        self._held: deque[Event] = deque()
        self._handing_over = False
        self._handed_over = trio.Event()
        self._wake_writer = trio.Event()
        # Bytes on their way out, in order: the rest of a frame the socket did not take, AUTH
        # refreshes; what the session makes goes after them.
        self._out: deque[bytes | memoryview] = deque()
        self._closing: str | None = None
        self._closed = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._write_failure: str | None = None
        self._drained: trio.Event | None = None  # set after a write, for wait_sendable
        # The timers task sleeps until `_timer_at`; `_timer_wake` brings it back sooner when a
        # write or a read gave the session an earlier deadline (a transaction's timeout...).
        self._timer_at = math.inf
        self._timer_wake = trio.Event()
        # A plain TCP connection's socket, which the connection reads and writes itself,
        # non-blocking, from whichever task has something for it (docs/decisions.md, MSRP);
        # None over TLS, whose stream does both.
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else None
        self._socket_empty = False  # the last read took less than asked
        self._read_size = SMALL_READ  # READ_SIZE after a read that filled SMALL_READ
        # The reader task waits for the socket to be readable, with nothing of its own in
        # hand: the owner, finding its queue empty, may read the socket itself (`_read_inline`).
        self._reader_idle = False
        self._read_error: OSError | None = None  # what such a read met, for the reader to say
        if self._fd is not None:
            self.events.refill = self._read_inline

    # -- the owner's side --------------------------------------------------------------------

    def send_message(self, body: bytes | BodySource, content_type: str | None = "text/plain", *,
                     message_id: str | None = None, success_report: bool = False,
                     failure_report: str = "yes",
                     headers: Iterable[tuple[str, str]] = ()) -> str:
        message_id = self.session.send_message(
            body, content_type, message_id=message_id, success_report=success_report,
            failure_report=failure_report, headers=headers)
        if not self._write_now():
            self._wake_writer.set()
        return message_id

    def abort_message(self, message_id: str) -> bool:
        aborted = self.session.abort_message(message_id)
        self._wake_writer.set()
        return aborted

    async def wait_sendable(self, max_pending: int) -> None:
        """Returns when fewer than `max_pending` of our messages are without an outcome (with
        Failure-Report partial or no: not yet written out), or the connection is over:
        back-pressure for an owner that sends what it reads as fast as it reads it."""
        while len(self.session.pending_messages) >= max_pending and not self._closed.is_set():
            if self._drained is None:
                self._drained = trio.Event()
            await self._drained.wait()

    def refuse_incoming(self, message_id: str, code: int, comment: str) -> None:
        """Gives up an incoming message (MsrpSession.refuse_incoming): a failure REPORT goes
        to the sender, later chunks get `code`."""
        self.session.refuse_incoming(message_id, code, comment)
        self._wake_writer.set()

    def confirm_incoming(self, message_id: str) -> bool:
        """Sends the success REPORT of a stored message (MsrpSession.confirm_incoming)."""
        confirmed = self.session.confirm_incoming(message_id)
        self._wake_writer.set()
        return confirmed

    async def close(self, reason: str = "closed") -> None:
        """Ends the session: what is queued for the wire goes (briefly), then the connection
        closes; `run` returns."""
        if self._closing is None:
            self._closing = reason
            self._wake_writer.set()
        with trio.move_on_after(CLOSE_GRACE):
            await self._closed.wait()
        if not self._closed.is_set():  # a peer that does not read: stop writing to it
            self._cancel_reader()
            await self._closed.wait()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- running -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        reason, by_peer = "closed", False
        try:
            with trio.CancelScope() as self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    nursery.start_soon(self._timers)
                    task_status.started()
                    reason, by_peer = await self._reader()
                    nursery.cancel_scope.cancel()
        finally:
            if self._write_failure is not None:
                reason, by_peer = self._write_failure, True
            elif self._closing is not None and not by_peer:
                reason = self._closing
            if by_peer:
                self.session.connection_lost(reason)
            else:
                self.session.close(reason)
            with trio.CancelScope(shield=True):
                # the owner gets the last events unless it stopped reading for seconds
                with trio.move_on_after(5):
                    self._handing_over = False  # a hand-over cancelled with the reader
                    await self._publish_pending()
                    await self.events.put(ConnectionClosed(reason, by_peer))
                self.events.close()
                try:
                    with trio.move_on_after(1):
                        await self.stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                self._closed.set()
                if self._drained is not None:
                    self._drained.set()
                self._handed_over.set()
            log.debug("MSRP connection %s closed: %s", self.description, reason)

    async def _reader(self) -> tuple[str, bool]:
        fd = self._fd
        data: bytes | bytearray
        while True:
            if self._closing is not None:
                return self._closing, False
            try:
                if fd is not None and self._socket_empty:  # the usual wait, written out
                    await self._wait_readable(fd)
                    try:
                        data = os.read(fd, self._read_size)
                    except BlockingIOError:
                        continue
                    self._tcp_read(len(data))
                else:
                    data = await (self._receive_tcp() if fd is not None
                                  else self._receive_stream())
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                return f"connection failed: {_describe(exc)}", True
            if not data:
                return "connection closed by the peer", True
            now = trio.current_time()
            self.session.receive_data(data, now)
            failed = self._take_events()  # what the owner's queue has room for, at once
            if self._held:
                self._deadline_moved(now)  # before waiting for room
                failed = await self._publish_pending() or failed
            if failed is not None:
                return failed, False
            if self._out or self.session.has_data_to_send:
                if not self._write_now(now):  # which saw to the deadlines when it wrote
                    self._wake_writer.set()  # not otherwise: a writer woken costs a switch
                    self._deadline_moved(now)
            else:
                self._deadline_moved(now)
            if self._held:  # what the bytes written now told (MessageSent...), no room yet
                failed = await self._publish_pending()
                if failed is not None:
                    return failed, False

    async def _receive_stream(self) -> bytes | bytearray:
        data = await self.stream.receive_some(self._read_size)
        self._read_size = READ_SIZE if len(data) >= SMALL_READ else SMALL_READ
        return data

    def _tcp_read(self, got: int) -> None:
        """A read of the TCP socket brought `got` bytes: whether it emptied the socket, and
        the size of the next read (big while the reads come back full)."""
        self._socket_empty = got < self._read_size
        self._read_size = READ_SIZE if got >= SMALL_READ else SMALL_READ

    async def _receive_tcp(self) -> bytes | bytearray:
        """The next bytes from the plain TCP socket (b"" at its end), after a full read (the
        reader waits for an emptied socket itself, written out): the task lets the others run
        before it reads again, and waits only if the socket has nothing after all."""
        fd = self._fd
        assert fd is not None and not self._socket_empty
        await trio.lowlevel.checkpoint()
        while True:
            try:
                data = os.read(fd, self._read_size)
                break
            except BlockingIOError:
                pass
            # Nothing after all: wait (out of the except clause, so an error the owner's read
            # met is not told as this BlockingIOError's: `_describe`).
            await self._wait_readable(fd)
        self._tcp_read(len(data))
        return data

    async def _wait_readable(self, fd: int) -> None:
        """Waits for the socket with nothing in hand, the owner free to read it meanwhile
        (`_read_inline`); raises what such a read met."""
        self._reader_idle = True
        try:
            await trio.lowlevel.wait_readable(fd)
        finally:
            self._reader_idle = False
        if self._read_error is not None:
            raise self._read_error

    def _read_inline(self) -> None:
        """The owner found its event queue empty (and let the other tasks run once): while
        the reader task waits for the socket with nothing in hand, read it here and handle
        what came as the reader would, without a wait. What a quick peer answered meanwhile,
        or what was already waiting, then reaches the owner without the reader's wake-up and
        the scheduler pass that the reader's hand-over costs (docs/decisions.md, MSRP). The
        reader stays waiting (its readiness is still registered); a read that finds nothing
        costs one failed system call."""
        fd = self._fd
        if fd is None or not self._reader_idle or self._closing is not None or \
                self._read_error is not None:
            return
        try:
            data = os.read(fd, self._read_size)
        except BlockingIOError:
            return
        except OSError as exc:  # the reader wakes (the socket is readable) and says so
            self._read_error = exc
            return
        if not data:  # the peer's end: the reader sees it too, and ends the connection
            return
        self._tcp_read(len(data))
        now = trio.current_time()
        self.session.receive_data(data, now)
        failed = self._take_events()
        if failed is not None:
            self._closing = self._closing or failed
            self._cancel_reader()
            return
        if self._out or self.session.has_data_to_send:
            if not self._write_now(now):
                self._wake_writer.set()
                self._deadline_moved(now)
        else:
            self._deadline_moved(now)
        if self._held:  # no room in the owner's queue: the writer task hands them over
            self._wake_writer.set()

    # -- events ------------------------------------------------------------------------------

    def _take_events(self) -> str | None:
        """Moves the session's (and the relay client's) events toward the owner, handing over
        at once what the queue has room for; the reason when the connection failed."""
        failed = None
        held = self._held
        session = self.session
        put = self.events.put_nowait
        if session.has_events:
            direct = not held and not self._handing_over  # nothing before them: straight in
            for event in session.take_events():
                kind = type(event)
                if kind is UnmatchedResponse:
                    self._relay_response(event)  # type: ignore[arg-type]
                    continue
                if kind is ConnectionFailed:
                    failed = event.reason  # type: ignore[attr-defined]
                if direct and put(event):
                    continue
                direct = False
                held.append(event)
        if self.relay_client is not None:
            for relay_event in self.relay_client.events():
                if isinstance(relay_event, RelayRefused):
                    failed = f"the relay {relay_event.relay} stopped: {relay_event.reason}"
                elif isinstance(relay_event, RelayGranted):
                    self._relay_granted(relay_event)
        if held and not self._handing_over:
            while held and put(held[0]):
                held.popleft()
        return failed

    async def _publish_pending(self) -> str | None:
        """Hands the session's events to the owner, waiting while its queue is full; the
        reason when the connection failed."""
        failed = self._take_events()
        while self._held:
            if self._handing_over:  # another task is at it: wait until it is done
                await self._handed_over.wait()
                continue
            self._handing_over = True
            self._handed_over = trio.Event()
            try:
                while self._held:
                    await self.events.put(self._held[0])
                    self._held.popleft()
            finally:
                self._handing_over = False
                self._handed_over.set()
        return failed

    def _relay_response(self, event: UnmatchedResponse) -> None:
        if self.relay_client is None or not self.relay_client.owns(event.response.transaction_id):
            log.debug("MSRP %s: response to an unknown transaction %s", self.description,
                      event.response.transaction_id)
            return
        refresh = self.relay_client.handle_response(event.response, trio.current_time())
        if refresh:
            self._out.append(refresh)

    def _relay_granted(self, granted: RelayGranted) -> None:
        path = granted.use_path + [self.session.local_uri]
        if [str(u) for u in path] != [str(u) for u in self.session.local_path]:
            self.session.local_path = path
            self._held.append(RelayPathChanged(path))

    # -- writing -----------------------------------------------------------------------------

    def _write_now(self, now: float | None = None) -> bool:
        """Writes what is waiting to go straight to a plain TCP socket, from the task that
        made it (the owner sending a message, the reader answering a request), and hands the
        events that told over: a chat message and its 200 then take no trip through the
        writer task at either end (docs/decisions.md, MSRP). Non-blocking: what the socket
        does not take now, and any error, is left to the writer task (True: nothing is left
        for it)."""
        if self._fd is None or self._closing is not None:
            return False
        wrote = False
        try:
            if self._out:  # what the socket did not take before goes first
                if not self._write_some():
                    return False  # still full: the session keeps the rest (back-pressure)
                wrote = True
            if self.session.has_data_to_send:
                if now is None:
                    now = trio.current_time()
                self._out.extend(self.session.output(now))
                wrote = True
                if not self._write_some():
                    self._wrote(now)
                    return False
        except OSError:  # broken: the writer task tries again and says so
            return False
        if wrote:
            self._wrote(now)
        if self._take_events() is not None or self._held:
            return False  # the writer task hands them over (or ends the connection)
        return True

    def _write_some(self) -> bool:
        """Writes what `_out` holds to the TCP socket, as much as it takes now; True when all
        of it went. OSError other than a full socket goes to the caller."""
        out = self._out
        fd = self._fd
        assert fd is not None
        while out:
            try:
                sent = os.writev(fd, out if len(out) <= _IOV_MAX else list(islice(out, _IOV_MAX)))
            except BlockingIOError:
                return False
            while sent:
                first = out[0]
                size = len(first)
                if sent >= size:
                    out.popleft()
                    sent -= size
                else:
                    out[0] = memoryview(first)[sent:]
                    break
        return True

    def _wrote(self, now: float | None = None) -> None:
        if self._drained is not None:
            self._drained.set()
            self._drained = None
        self._deadline_moved(now)

    async def _writer(self) -> None:
        fd = self._fd
        while True:
            if self.session.has_data_to_send:
                self._out.extend(self.session.output(trio.current_time()))
            if self._out:
                try:
                    if fd is not None:
                        while not self._write_some():
                            await trio.lowlevel.wait_writable(fd)
                        await trio.lowlevel.checkpoint()  # a peer that takes all: others run
                    else:
                        data = b"".join(self._out)
                        self._out.clear()
                        await self.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self._write_failure = f"connection failed: {_describe(exc)}"
                    self._cancel_reader()
                    return
                self._wrote()
                await self._publish_pending()
                continue
            if self._held or self.session.has_events:  # told by a write made elsewhere
                failed = await self._publish_pending()
                if failed is not None:
                    self._closing = self._closing or failed
            if self._closing is not None:
                self._cancel_reader()
                return
            self._wake_writer = trio.Event()
            await self._wake_writer.wait()

    def _cancel_reader(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    async def _timers(self) -> None:
        while True:
            deadline = self._next_deadline()
            self._timer_at = math.inf if deadline is None else deadline
            with trio.move_on_at(self._timer_at):
                await self._timer_wake.wait()
            if self._timer_wake.is_set():  # an earlier deadline came: sleep again until it
                self._timer_wake = trio.Event()
                continue
            now = trio.current_time()
            self.session.handle_timers(now)
            if self.relay_client is not None:
                self.relay_client.handle_timers(now)
                granted = self.relay_client.granted
                if granted is not None and now >= granted.refresh_at and \
                        self.relay_client.next_deadline() is None:
                    self.relay_client.granted = None
                    self._out.append(self.relay_client.refresh(now))
            failed = await self._publish_pending()
            if failed is not None:
                self._closing = self._closing or failed
                self._cancel_reader()
                return
            self._wake_writer.set()

    def _next_deadline(self) -> float | None:
        deadline = self.session.next_deadline()
        if self.relay_client is None:
            return deadline
        relay = self._relay_deadline()
        if deadline is None or relay is None:
            return relay if deadline is None else deadline
        return min(deadline, relay)

    def _deadline_moved(self, now: float | None = None) -> None:
        """After a write or a read: wake the timers task if the session (or the relay link)
        now has a deadline before the one it sleeps until. Only then: most messages add a
        timeout later than one already waited for, and a wake-up costs a task switch. Without
        a relay link, a deadline made since is at least the shortest of the session's timeouts
        away: when the timers task wakes before that, nothing needs computing."""
        if self.relay_client is None:
            session = self.session
            if self._timer_at <= (trio.current_time() if now is None else now) + min(
                    session.transaction_timeout, session.report_timeout, session.frame_timeout):
                return
        deadline = self._next_deadline()
        if deadline is not None and deadline < self._timer_at:
            self._timer_wake.set()

    def _relay_deadline(self) -> float | None:
        if self.relay_client is None:
            return None
        deadlines = [self.relay_client.next_deadline()]
        if self.relay_client.granted is not None:
            deadlines.append(self.relay_client.granted.refresh_at)
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if cause is not None and str(cause):
        text += f" ({cause})"
    return text
