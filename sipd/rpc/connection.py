"""One RPC client: its authentication, its requests in flight and what is written to it.

Replies and live events share one outbox (outbox.py), bounded in frames and in bytes, drained
by a writer task. Replies wait for room (back-pressure lands on this client's own reader);
events never wait: the event bus must not be slowed by anyone. A client whose outbox passes
three quarters of either bound gets one warning notification; a client whose outbox would
overflow is disconnected with a reason. Replayed events (events.subscribe with `since`) are
not queued: the writer takes them from the replay buffer, in turn with the outbox, whenever it
is ready to write (feed.py).
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from ..events import Event, EventBus, Resume
from .feed import EventFeed
from .outbox import Frame, Outbox, notification

log = logging.getLogger(__name__)

_ids = itertools.count(1)

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013

MAX_IN_FLIGHT = 32  # requests answered at once for one client (batch members count one each)

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogates(text: str) -> str:
    """JSON text with its lone surrogates written as \\uXXXX escapes: the same JSON value, now
    encodable as UTF-8 (a lone surrogate can only occur inside a JSON string)."""
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


class Connection:
    def __init__(self, ws: WebSocketConnection, bus: EventBus, queue_size: int,
                 authenticated: bool, queue_bytes: int = 4 * 1024 * 1024,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.id = next(_ids)
        self.ws = ws
        self.authenticated = authenticated
        self.failed_logins = 0
        self.outbox = Outbox(queue_size, queue_bytes)
        self.feed = EventFeed(bus, self._deliver_live, self._wake_writer)
        # Requests being answered: a frame takes one slot while it is read and answered, and
        # batch members take more (dispatch.py).
        self.limiter = trio.CapacityLimiter(max_in_flight)
        self._warned = False
        self._closing: tuple[int, str] | None = None
        self._cancel = trio.CancelScope()
        self._close_requested = trio.Event()
        self._work = trio.Event()          # set when there may be something to write
        self._room = trio.Event()          # set (and replaced) when the outbox shrinks
        self._finished = False
        self._writing = False
        self._replay_turn = False
        self.frames_in_flight = 0
        try:
            self.remote = str(ws.remote)
        except OSError:  # gone already
            self.remote = "a client that left"

    @property
    def closing(self) -> str | None:
        """Why the connection is closing, or None while it is not."""
        return self._closing[1] if self._closing else None

    @property
    def in_flight(self) -> int:
        return self.limiter.borrowed_tokens

    # -- outgoing -------------------------------------------------------------------------

    async def send_reply(self, text: str, on_written: list[Any] | None = None) -> None:
        """Queue a reply, waiting for room; `on_written` callbacks run once the writer has
        taken it."""
        while not self.outbox.has_room():
            if self._finished:
                return  # the client is gone; its reply has no one to go to
            await self._room.wait()
        if self._finished:
            return
        self.outbox.push(Frame(text=text, on_written=list(on_written or ())))
        self._wake_writer()

    def _deliver_live(self, event: Event, sub_id: int) -> None:
        """Queue without waiting; a client that does not read is warned, then dropped."""
        if self._finished or (self._closing and self._closing[0] == CLOSE_TRY_AGAIN):
            return
        frame = Frame(event=event, subscription=sub_id)
        outbox = self.outbox
        if not outbox.fits(frame.size):
            log.warning("client %d at %s did not read %d events (%d bytes): disconnecting it",
                        self.id, self.remote, len(outbox), outbox.bytes)
            self.close(CLOSE_TRY_AGAIN, f"event queue overflow: more than "
                                        f"{outbox.max_frames} events or {outbox.max_bytes} "
                                        "bytes unread; reconnect and subscribe with since")
            return
        filled = outbox.filled()
        if not self._warned and filled >= 0.75:
            self._warned = True
            outbox.push(Frame(text=notification("rpc.warning", {
                "reason": f"you are {len(outbox)} events ({outbox.bytes} bytes) behind; at "
                          f"{outbox.max_frames} events or {outbox.max_bytes} bytes you will "
                          "be disconnected"})))
        elif self._warned and filled <= 0.25:
            self._warned = False
        outbox.push(frame)
        self._wake_writer()

    def _wake_writer(self) -> None:
        self._work.set()

    def close(self, code: int, reason: str) -> None:
        """Ask the connection to end: what is queued is flushed (briefly), then the WebSocket
        closes with this code and reason."""
        if not self._closing:
            self._closing = (code, reason)
        self._close_requested.set()

    async def _closer(self) -> None:
        await self._close_requested.wait()
        await self.drain(0.5)
        self._cancel.cancel()

    # -- events ---------------------------------------------------------------------------

    def subscribe(self, topics: list[str] | None, since: int | None,
                  boot: str | None = None) -> tuple[int, Resume]:
        return self.feed.subscribe(topics, since, boot)

    def release(self, sub_id: int) -> None:
        """After the subscribe reply: the replay, then live events."""
        self.feed.start_replay(sub_id)

    def unsubscribe(self, sub_id: int) -> bool:
        return self.feed.unsubscribe(sub_id)

    # -- life -----------------------------------------------------------------------------

    async def run(self, handle_frame: Any, auth_timeout: float = 30.0) -> None:
        """Read frames and answer them until the client leaves or close() is called."""
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    nursery.start_soon(self._closer)
                    if not self.authenticated:
                        nursery.start_soon(self._auth_deadline, auth_timeout)
                    await self._reader(nursery, handle_frame)
                    if self._close_requested.is_set():
                        await trio.sleep_forever()  # the closer flushes, then cancels
                    nursery.cancel_scope.cancel()
        finally:
            self._finished = True
            self._room.set()
            self.feed.close()
            code, reason = self._closing or (1000, "")
            with trio.move_on_after(1) as scope:
                scope.shield = True
                await self.ws.aclose(code, reason)

    async def _reader(self, nursery: trio.Nursery, handle_frame: Any) -> None:
        while True:
            try:
                frame = await self.ws.get_message()
            except ConnectionClosed:
                return
            if self._close_requested.is_set():
                return  # closing (too many wrong tokens, say): what comes now is not read
            borrower = object()
            await self.limiter.acquire_on_behalf_of(borrower)
            nursery.start_soon(self._answer, handle_frame, frame, borrower)

    async def _answer(self, handle_frame: Any, frame: str | bytes, borrower: object) -> None:
        self.frames_in_flight += 1
        try:
            await handle_frame(frame, self)
        except ConnectionClosed:
            pass
        except Exception:  # a bug must cost this request, never the daemon
            log.exception("client %d: request failed", self.id)
        finally:
            self.frames_in_flight -= 1
            self.limiter.release_on_behalf_of(borrower)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until the requests under way are answered and everything queued
        for this client has been written (a replay still under way is not waited for)."""
        with trio.move_on_after(timeout):
            # Polled: three counters, and only once, at shutdown.
            while self.frames_in_flight or len(self.outbox) or self._writing:  # noqa: ASYNC110
                await trio.sleep(0.01)

    def _next_frame(self) -> str | None:
        """What to write next: the outbox and the replay take turns, so neither a long
        replay nor a busy outbox holds the other back."""
        if self._replay_turn:
            self._replay_turn = False
            text = self.feed.next_replayed()
            if text is not None:
                return text
        self._replay_turn = self.feed.replaying
        frame = self.outbox.pop()
        if frame is None:
            return self.feed.next_replayed()
        self._room.set()
        self._room = trio.Event()
        for callback in frame.on_written:
            callback()
        return frame.render()

    async def _writer(self) -> None:
        try:
            while True:
                text = self._next_frame()
                if text is None:
                    await self._work.wait()
                    self._work = trio.Event()
                    continue
                self._writing = True
                try:
                    await self._send(text)
                finally:
                    self._writing = False
        except ConnectionClosed:
            self._cancel.cancel()

    async def _send(self, text: str) -> None:
        try:
            await self.ws.send_message(text)
        except UnicodeEncodeError:  # a lone surrogate in data from elsewhere (the SIP side)
            await self.ws.send_message(_escape_surrogates(text))

    async def _auth_deadline(self, seconds: float) -> None:
        await trio.sleep(seconds)
        if not self.authenticated:
            self.close(CLOSE_POLICY, f"not authenticated within {seconds:g} s")
