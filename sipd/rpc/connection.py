"""One RPC client: its authentication, its event subscriptions and its outgoing queue.

Replies and events share one bounded queue drained by a writer task. Replies wait for room
(back-pressure lands on this client's own reader); events never wait: the event bus must not be
slowed by anyone. A client whose queue passes three quarters gets one warning notification; a
client whose queue overflows is disconnected with a reason.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from ..events import Event, EventBus, Replay

log = logging.getLogger(__name__)

_ids = itertools.count(1)

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013


def notification(method: str, params: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params},
                      separators=(",", ":"), ensure_ascii=False)


@dataclass
class _ClientSubscription:
    """A bus subscription seen from one client. While its replay is pending (the subscribe call
    has not been answered yet) live events are held so they arrive after the replayed ones."""
    id: int
    held: list[Event] | None = field(default_factory=list)


class Connection:
    def __init__(self, ws: WebSocketConnection, bus: EventBus, queue_size: int,
                 authenticated: bool) -> None:
        self.id = next(_ids)
        self.ws = ws
        self.bus = bus
        self.authenticated = authenticated
        self.failed_logins = 0
        self.queue_size = queue_size
        self._send, self._receive = trio.open_memory_channel[str](queue_size)
        self._subscriptions: dict[int, _ClientSubscription] = {}
        self._warned = False
        self._closing: tuple[int, str] | None = None
        self._cancel = trio.CancelScope()
        self._close_requested = trio.Event()
        self.in_flight = 0
        self._unwritten = 0  # queued, or handed to the writer, and not yet on the socket
        try:
            self.remote = str(ws.remote)
        except OSError:  # gone already
            self.remote = "a client that left"

    # -- outgoing -------------------------------------------------------------------------

    async def send_reply(self, text: str) -> None:
        try:
            await self._send.send(text)
            self._unwritten += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # the client is gone; its reply has no one to go to

    def send_event_frame(self, text: str) -> None:
        """Queue without waiting; a client that does not read is warned, then dropped."""
        if self._closing and self._closing[0] == CLOSE_TRY_AGAIN:
            return
        used = self._send.statistics().current_buffer_used
        try:
            if not self._warned and used >= self.queue_size * 3 // 4:
                self._warned = True
                self._send.send_nowait(notification("rpc.warning", {
                    "reason": f"you are {used} events behind; at {self.queue_size} you will be "
                              "disconnected"}))
                self._unwritten += 1
            elif self._warned and used <= self.queue_size // 4:
                self._warned = False
            self._send.send_nowait(text)
            self._unwritten += 1
        except trio.WouldBlock:
            log.warning("client %d at %s did not read %d events: disconnecting it", self.id,
                        self.remote, self.queue_size)
            self.close(CLOSE_TRY_AGAIN, f"event queue overflow: more than {self.queue_size} "
                                        "events unread; reconnect and subscribe with since")
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

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

    def subscribe(self, topics: list[str] | None, since: int | None) -> tuple[int, Replay]:
        client_sub = _ClientSubscription(0)

        def deliver(event: Event) -> None:
            if client_sub.held is not None:
                client_sub.held.append(event)
            else:
                self._deliver(client_sub.id, event)

        sub, replay = self.bus.subscribe(topics, deliver, since)
        client_sub.id = sub.id
        self._subscriptions[sub.id] = client_sub
        return sub.id, replay

    def release(self, sub_id: int, replay: Replay) -> None:
        """After the subscribe reply: send the gap marker, the replay, then what was held."""
        client_sub = self._subscriptions.get(sub_id)
        if client_sub is None or client_sub.held is None:
            return
        if replay.gap:
            self.send_event_frame(notification("events.gap", {
                "subscription": sub_id, "first": replay.gap[0], "last": replay.gap[1]}))
        for event in replay.events:
            self._deliver(sub_id, event)
        held, client_sub.held = client_sub.held, None
        last = replay.events[-1].seq if replay.events else 0
        for event in held:
            if event.seq > last:
                self._deliver(sub_id, event)

    def unsubscribe(self, sub_id: int) -> bool:
        if self._subscriptions.pop(sub_id, None) is None:
            return False
        return self.bus.unsubscribe(sub_id)

    def _deliver(self, sub_id: int, event: Event) -> None:
        # The event's JSON is shared by every client; only the subscription id is theirs.
        self.send_event_frame(f'{{"jsonrpc":"2.0","method":"event","params":'
                              f'{event.params_json[:-1]},"subscription":{sub_id}}}}}')

    # -- life -----------------------------------------------------------------------------

    async def run(self, handle_frame: Any, max_in_flight: int = 32,
                  auth_timeout: float = 30.0) -> None:
        """Read frames and answer them until the client leaves or close() is called."""
        limiter = trio.CapacityLimiter(max_in_flight)
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    nursery.start_soon(self._closer)
                    if not self.authenticated:
                        nursery.start_soon(self._auth_deadline, auth_timeout)
                    await self._reader(nursery, limiter, handle_frame)
                    nursery.cancel_scope.cancel()
        finally:
            for sub_id in list(self._subscriptions):
                self.unsubscribe(sub_id)
            self._send.close()
            code, reason = self._closing or (1000, "")
            with trio.move_on_after(1) as scope:
                scope.shield = True
                await self.ws.aclose(code, reason)

    async def _reader(self, nursery: trio.Nursery, limiter: trio.CapacityLimiter,
                      handle_frame: Any) -> None:
        while True:
            try:
                frame = await self.ws.get_message()
            except ConnectionClosed:
                return
            borrower = object()
            await limiter.acquire_on_behalf_of(borrower)
            nursery.start_soon(self._answer, handle_frame, frame, limiter, borrower)

    async def _answer(self, handle_frame: Any, frame: str, limiter: trio.CapacityLimiter,
                      borrower: object) -> None:
        self.in_flight += 1
        try:
            await handle_frame(frame, self)
        except ConnectionClosed:
            pass
        except Exception:  # a bug must cost this request, never the daemon
            log.exception("client %d: request failed", self.id)
        finally:
            self.in_flight -= 1
            limiter.release_on_behalf_of(borrower)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until the requests under way are answered and everything queued
        for this client has been written."""
        with trio.move_on_after(timeout):
            while self.in_flight or self._unwritten:
                await trio.sleep(0.01)

    async def _writer(self) -> None:
        try:
            async for text in self._receive:
                await self.ws.send_message(text)
                self._unwritten -= 1
        except ConnectionClosed:
            self._cancel.cancel()

    async def _auth_deadline(self, seconds: float) -> None:
        await trio.sleep(seconds)
        if not self.authenticated:
            self.close(CLOSE_POLICY, f"not authenticated within {seconds:g} s")
