"""The trio driver of one INVITE session (sipd.sessions.invite.session): it carries out, over the
SIP stack, the actions the sans-I/O session hands back, and feeds the session what comes in.

    leg = LegDriver("outside", InviteSession(), stack, route=route, on_event=handle)
    nursery.start_soon(leg.run)                        # its sender and timer tasks
    leg.feed(leg.session.start(invite, leg.now()))     # actions out, events to `on_event`
    leg.on_request(incoming)                           # a request in its dialog

What it does with each action (invite_events lists them):
- SendRequest: `stack.start_client_transaction` to the request's target (the initial request
  goes to `initial_target`, the others where `route(request)` says), then every response goes
  to `session.response`; a 401/407 is answered with the account's credentials through
  `session.resend`; a timeout or transport error goes to `session.timeout` /
  `session.transport_error`;
- SendAck: `stack.send_stateless` to the route of the ACK;
- SendCancel: `stack.cancel` on the INVITE's transaction;
- SendResponse: `ref.respond_nowait(...)` on the IncomingRequest the request came with;
- everything else (states, SDP, DTMF, in-dialog requests) goes to `on_event(leg, action)`.

Requests leave in the order the session produced them (one sender task); each client
transaction is read by a task of its own. Session timers (2xx retransmission, glare retries)
run in a timer task that sleeps until `session.next_deadline()`.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any, Awaitable, Callable

import trio

from sipd.accounts.outbound import fresh_copy
from sipd.sip.auth import DigestAuthenticator
from sipd.sip.trio.locator import LocationError, Target
from sipd.sip.message import Request
from sipd.sip.trio.handles import ClientTransactionHandle, IncomingRequest, TransactionTimeout
from sipd.sip.trio.transport import Source, TransportError

from .invite.session import InviteSession
from .invite.events import Action, SendAck, SendCancel, SendRequest, SendResponse

log = logging.getLogger(__name__)

# Where a request goes: a located target, or where a request of the dialog came from.
Hop = Target | Source
Route = Callable[[Request], Awaitable[Hop]]
OnEvent = Callable[["LegDriver", Action], None]


class LegDriver:
    """Drives one InviteSession (one leg of a call) over a SipStack."""

    def __init__(self, name: str, session: InviteSession, stack: Any, *, route: Route,
                 on_event: OnEvent, initial_target: Hop | None = None,
                 authenticator: DigestAuthenticator | None = None,
                 on_fed: Callable[[], None] | None = None) -> None:
        self.name = name
        self.session = session
        self.stack = stack
        self.initial_target = initial_target
        self._route = route
        self._on_event = on_event
        self._authenticator = authenticator
        self._on_fed = on_fed  # told after each input: the session's state may have moved
        self._handles: dict[str, ClientTransactionHandle] = {}
        self._outbox_send, self._outbox = trio.open_memory_channel[Action](math.inf)
        self._pending: deque[Action] = deque()
        self._feeding = False
        self._timer_changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._connections: set[Any] = set()  # kept open for the dialog (stack.keep_connection)
        self.closed = False

    def __repr__(self) -> str:
        return f"<LegDriver {self.name} {self.session!r}>"

    @staticmethod
    def now() -> float:
        return trio.current_time()

    # -- running ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Sends what the session wants sent and runs its timers, until `close()`."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.closed:
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._timer_loop)
                # In this task, not a new one: a leg's first request (a call's INVITE) is
                # queued before this runs, and a task started here would wait another turn
                # of the scheduler before sending it (call setup latency).
                await self._send_loop()
        finally:
            self.closed = True
            for connection in self._connections:
                self.stack.release_connection(connection)
            self._connections.clear()

    def uses(self, connection: Any) -> None:
        """The dialog runs over this TCP/TLS connection: keep it open while the leg lives."""
        if connection is not None and connection not in self._connections and not self.closed:
            self._connections.add(connection)
            self.stack.keep_connection(connection)

    def close(self) -> None:
        """Stops sending and reading (a leg whose peer is gone)."""
        self.closed = True
        self._outbox_send.close()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # -- input --------------------------------------------------------------------------------
    def feed(self, actions: list[Action]) -> None:
        """Carries out the actions of one session input, in order. An event handler that
        feeds this same leg again gets its actions queued behind the current ones."""
        self._pending.extend(actions)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._pending:
                self._carry_out(self._pending.popleft())
        finally:
            self._feeding = False
            self._timer_changed.set()
            if self._on_fed is not None:
                self._on_fed()

    def on_request(self, incoming: IncomingRequest) -> None:
        """A request in this leg's dialog (ACK, BYE, re-INVITE, INFO...)."""
        if self.closed:
            if incoming.transaction is not None and not incoming.answered:
                incoming.respond_nowait(481, "Call/Transaction Does Not Exist")
            return
        if incoming.method == "INVITE":
            incoming.detach()  # answered later, when the other leg has answered its offer
        self.uses(getattr(incoming.source, "connection", None))
        self.feed(self.session.request(incoming.request, self.now(), ref=incoming,
                                       reliable=incoming.transport != "udp"))

    def on_stray_response(self, response: Any) -> None:
        """A 2xx retransmission that came after the INVITE transaction ended: ACK again."""
        if not self.closed:
            self.feed(self.session.response(response, self.now()))

    # -- actions ------------------------------------------------------------------------------
    def _carry_out(self, action: Action) -> None:
        if isinstance(action, (SendRequest, SendAck, SendCancel)):
            if self.closed:
                return
            try:
                self._outbox_send.send_nowait(action)
            except trio.ClosedResourceError:
                pass
        elif isinstance(action, SendResponse):
            self._respond(action)
        else:
            try:
                self._on_event(self, action)
            except Exception:  # noqa: BLE001 - one failing handler must not stop the call
                log.exception("%r: handling %r failed", self, action)

    def _respond(self, action: SendResponse) -> None:
        ref = action.ref
        if not isinstance(ref, IncomingRequest) or ref.transaction is None:
            log.debug("%r: no transaction to send %d on", self, action.status)
            return
        try:
            ref.respond_nowait(action.status, action.reason, headers=action.headers,
                               body=action.body, content_type=action.content_type,
                               to_tag=action.to_tag)
        except Exception as exc:  # noqa: BLE001 - the transaction may have ended meanwhile
            log.debug("%r: cannot send %d: %s", self, action.status, exc)

    async def _send_loop(self) -> None:
        while True:
            try:
                # What is queued already goes out now: `receive()` would first yield to
                # every other runnable task (call setup latency).
                action = self._outbox.receive_nowait()
            except trio.WouldBlock:
                try:
                    action = await self._outbox.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
            if isinstance(action, SendRequest):
                await self._start(action.request, action.key)
            elif isinstance(action, SendAck):
                await self._send_ack(action.ack)
            elif isinstance(action, SendCancel):
                handle = self._handles.get(action.key)
                if handle is not None:
                    try:
                        self.stack.cancel(handle)
                    except ValueError as exc:
                        log.debug("%r: cannot cancel: %s", self, exc)

    async def _target(self, request: Request) -> Hop:
        to = request.to
        if self.initial_target is not None and (to is None or not to.tag):
            return self.initial_target
        return await self._route(request)

    async def _start(self, request: Request, key: str) -> None:
        try:
            target = await self._target(request)
            handle = await self.stack.start_client_transaction(request, target)
        except (TransportError, LocationError) as exc:
            log.info("%r: cannot send %s: %s", self, request.method, exc)
            self.feed(self.session.transport_error(self.now(), key, str(exc)))
            return
        self._handles[key] = handle
        self.uses(handle.hop.connection)
        # Responses are fed from the stack's task as they come (a task reading the handle
        # would wake a scheduler turn later: the 2xx of a call waits that long to be passed
        # on); the task only learns how the transaction ended.
        handle.listen(lambda response: self._on_response(key, handle, response))
        assert self._nursery is not None
        self._nursery.start_soon(self._read_responses, key, handle)

    async def _send_ack(self, ack: Request) -> None:
        try:
            await self.stack.send_stateless(ack, await self._target(ack))
        except (TransportError, LocationError) as exc:
            log.info("%r: cannot send ACK: %s", self, exc)

    def _on_response(self, key: str, handle: ClientTransactionHandle, response: Any) -> None:
        if self.closed:
            handle.stop()
            return
        if response.status in (401, 407) and self._authenticator is not None:
            retry = self._authenticator.authenticate(handle.request, response)
            if retry.request is not None:
                handle.stop()  # the retry is a new transaction; this one is over for us
                self.feed(self.session.resend(key, fresh_copy(retry.request), self.now()))
                return
            log.info("%r: %d %s not answered: %s", self, response.status,
                     response.reason, retry.reason)
        self.feed(self.session.response(response, self.now()))

    async def _read_responses(self, key: str, handle: ClientTransactionHandle) -> None:
        try:
            async for response in handle:  # none: `_on_response` has them (listen)
                self._on_response(key, handle, response)
        except TransactionTimeout:
            self.feed(self.session.timeout(self.now(), key))
        except TransportError as exc:
            self.feed(self.session.transport_error(self.now(), key, str(exc)))
        finally:
            handle.close()
            if self._handles.get(key) is handle:
                del self._handles[key]

    async def _timer_loop(self) -> None:
        while True:
            deadline = self.session.next_deadline()
            self._timer_changed = trio.Event()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._timer_changed.wait()
            now = self.now()
            deadline = self.session.next_deadline()
            if deadline is not None and deadline <= now:
                self.feed(self.session.timer(now))
