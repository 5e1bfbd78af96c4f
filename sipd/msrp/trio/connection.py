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
Events wait in a bounded channel: a consumer that stops reading stops the reading of the
connection, not the daemon.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

import trio

from ..events import ConnectionFailed, Event, UnmatchedResponse
from ..outgoing import BodySource
from ..relay import RelayAuthClient, RelayGranted, RelayRefused
from ..session import MsrpSession
from ..uri import MsrpUri

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
EVENT_BUFFER = 256
CLOSE_GRACE = 5.0  # seconds what is queued may take to leave when we close


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
        self._send_events, self.events = trio.open_memory_channel[Event](EVENT_BUFFER)
        self._wake_writer = trio.Event()
        self._extra = bytearray()  # AUTH refreshes, written before anything else
        self._closing: str | None = None
        self._closed = trio.Event()
        self._cancel: trio.CancelScope | None = None
        self._write_failure: str | None = None
        self._drained: trio.Event | None = None  # set after a write, for wait_sendable
        # The timers task sleeps until `_timer_at`; `_timer_wake` brings it back sooner when a
        # write or a read gave the session an earlier deadline (a transaction's timeout...).
        self._timer_at = math.inf
        self._timer_wake = trio.Event()
        # A plain TCP connection's socket, which the task that made the bytes writes to
        # itself when nothing else is on its way (`_write_now`); None over TLS.
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else None
        self._writing = False  # the writer task is inside send_all

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
                    await self._publish_pending()
                    await self._send_events.send(ConnectionClosed(reason, by_peer))
                await self._send_events.aclose()
                try:
                    with trio.move_on_after(1):
                        await self.stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass
                self._closed.set()
                if self._drained is not None:
                    self._drained.set()
            log.debug("MSRP connection %s closed: %s", self.description, reason)

    async def _reader(self) -> tuple[str, bool]:
        while True:
            if self._closing is not None:
                return self._closing, False
            try:
                data = await self.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                return f"connection failed: {_describe(exc)}", True
            if not data:
                return "connection closed by the peer", True
            self.session.receive_data(data, trio.current_time())
            self._deadline_moved()
            failed = await self._publish_pending()
            if failed is not None:
                return failed, False
            if (self._extra or self.session.has_data_to_send) and not self._write_now():
                self._wake_writer.set()  # not otherwise: a writer woken for nothing costs a switch
            elif self.session.has_events:  # what the bytes written now told (MessageSent...)
                failed = await self._publish_pending()
                if failed is not None:
                    return failed, False

    async def _publish_pending(self) -> str | None:
        """Hands the session's events to the owner; the reason when the connection failed."""
        if not self.session.has_events and self.relay_client is None:
            return None
        failed = None
        for event in self.session.events():
            if isinstance(event, UnmatchedResponse):
                self._relay_response(event)
                continue
            if isinstance(event, ConnectionFailed):
                failed = event.reason
            await self._publish(event)
        if self.relay_client is not None:
            for relay_event in self.relay_client.events():
                if isinstance(relay_event, RelayRefused):
                    failed = f"the relay {relay_event.relay} stopped: {relay_event.reason}"
                elif isinstance(relay_event, RelayGranted):
                    await self._relay_granted(relay_event)
        return failed

    async def _publish(self, event: Event) -> None:
        try:
            self._send_events.send_nowait(event)  # no scheduling round while there is room
        except trio.WouldBlock:
            await self._send_events.send(event)

    def _relay_response(self, event: UnmatchedResponse) -> None:
        if self.relay_client is None or not self.relay_client.owns(event.response.transaction_id):
            log.debug("MSRP %s: response to an unknown transaction %s", self.description,
                      event.response.transaction_id)
            return
        self._extra += self.relay_client.handle_response(event.response, trio.current_time())

    async def _relay_granted(self, granted: RelayGranted) -> None:
        path = granted.use_path + [self.session.local_uri]
        if [str(u) for u in path] != [str(u) for u in self.session.local_path]:
            self.session.local_path = path
            await self._send_events.send(RelayPathChanged(path))

    def _write_now(self) -> bool:
        """Writes what the session has to send straight to a plain TCP socket, from the task
        that produced it (the owner sending a message, the reader answering a request), when
        the writer task has nothing on its way: a chat message and its 200 then take no trip
        through the writer task at each end (docs/decisions.md, MSRP). Non-blocking: what the
        socket does not take now, and any error, is left to the writer task (True: nothing
        is left for it)."""
        if self._fd is None or self._writing or self._extra or self._closing is not None:
            return False
        data = self.session.data_to_send(trio.current_time())
        sent = 0
        if data:
            try:
                sent = os.write(self._fd, data)
            except OSError:  # full (BlockingIOError) or broken: the writer waits or says so
                sent = 0
            if sent < len(data):
                self._extra += data[sent:]  # before anything the session makes later
                return False
            self._deadline_moved()
            if self._drained is not None:
                self._drained.set()
                self._drained = None
        return not self.session.has_events  # events to hand over: the writer task does it

    async def _writer(self) -> None:
        while True:
            data = self.session.data_to_send(trio.current_time())
            if self._extra:
                data = bytes(self._extra) + data
                self._extra.clear()
            if data:
                self._writing = True
                try:
                    await self.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self._write_failure = f"connection failed: {_describe(exc)}"
                    self._cancel_reader()
                    return
                finally:
                    self._writing = False
                if self._drained is not None:
                    self._drained.set()
                    self._drained = None
                self._deadline_moved()
                await self._publish_pending()
                continue
            if self.session.has_events:  # told by a write made elsewhere (`_write_now`)
                await self._publish_pending()
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
                    self._extra += self.relay_client.refresh(now)
            failed = await self._publish_pending()
            if failed is not None:
                self._closing = self._closing or failed
                self._cancel_reader()
                return
            self._wake_writer.set()

    def _next_deadline(self) -> float | None:
        deadlines = [d for d in (self.session.next_deadline(), self._relay_deadline())
                     if d is not None]
        return min(deadlines) if deadlines else None

    def _deadline_moved(self) -> None:
        """After a write or a read: wake the timers task if the session (or the relay link)
        now has a deadline before the one it sleeps until. Only then: most messages add a
        timeout later than one already waited for, and a wake-up costs a task switch."""
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
