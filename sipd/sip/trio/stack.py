"""The SIP stack: the trio side that runs the transports and the transaction layer.

    async with open_sip_stack(StackConfig(listen_address="127.0.0.1")) as stack:
        stack.set_request_handler(on_request)          # async on_request(incoming)
        stack.set_local_uri_check(accounts.is_local)   # unknown users get 404
        response = await stack.send_request(request, target)   # a non-INVITE, to its final

What it does beneath the UA: fills the top Via of what it sends (transport, sent-by = the
local address of the socket used, `rport`; `alias` on streams), opens or reuses the TCP/TLS
connection to a target, stamps `received`/`rport` on requests it receives (RFC 3581) and
sends responses back where the request came from, learns from `received`/`rport` on the
responses it gets what the peers see as our address (`learned_address`), drives the timers
of every transaction (one task sleeping until `TransactionLayer.next_deadline()`), rejects
what a UAS cannot take (`validate_request_for_uas`: 400/405/415/416/420/501), answers 404 to
requests for users `is_local_uri` does not know, answers OPTIONS and CANCEL itself, and
answers 500 for a handler that fails or leaves a request unanswered.

SipStack is made of objects it holds, each with its own state: `transports` (sockets and
connections, transport.py), `addresses` (our address as bound and as peers see it,
addresses.py), `outbound` (puts what the transaction layer transmits on the wire) and `kept`
(connections dialogs use, connections.py), `clients` (client transactions and their handles,
client.py), `servers` (new requests to the UA and their answers, server.py), and `layer`, the
sans-I/O transaction layer. The stack itself routes: what the network delivers goes to the
layer, and each event the layer returns goes to the object it concerns; one task sleeps until
the layer's next deadline. handles.py and config.py hold what the UA gets and gives.
"""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import trio

from ..builder import stamp_received
from ..message import AnyMessage, Request, Response
from ..transaction import (
    CancelReceived,
    Event,
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    Transmit,
)
from ..transaction_layer import TransactionLayer
from ..uri import Uri
from .addresses import StackAddresses
from .client import ClientTransactions
from .config import DEFAULT_CONTENT_TYPES, DEFAULT_METHODS, StackConfig  # noqa: F401
from .connections import KeptConnections, Outbound
from .handles import (  # noqa: F401 - Hop and ProvisionalCallback: imported from here too
    ClientTransactionHandle,
    Hop,
    IncomingRequest,
    ProvisionalCallback,
    TransactionTimeout,
)
from .server import RequestHandler, ServerTransactions
from .stream import Connection
from .tls import TlsConfig
from .transport import Source, TargetLike, Transports, TransportError, TransportSettings

__all__ = [
    "ClientTransactionHandle", "IncomingRequest", "SipStack", "StackConfig", "TlsConfig",
    "TransactionTimeout", "TransportError", "open_sip_stack",
]

log = logging.getLogger("sipd.sip.trio.stack")


class SipStack:
    """One SIP stack: the objects it holds (see this module's docstring) and the routing of
    messages and transaction events between them."""

    def __init__(self, config: StackConfig = StackConfig(), *,
                 may_accept: Callable[[], bool] = lambda: True) -> None:
        """`may_accept()` is asked before a connection a peer opened is taken: the daemon's
        descriptor budget (sipd.limits) says no when only its reserve is left."""
        self.config = config
        self.layer = TransactionLayer(config.timers)
        self.transports = Transports(
            TransportSettings(
                listen_address=config.listen_address,
                ports={"udp": config.udp_port, "tcp": config.tcp_port, "tls": config.tls_port},
                transports=tuple(t.lower() for t in config.transports),
                max_message_bytes=config.max_message_bytes, tls=config.tls,
                idle_timeout=config.idle_timeout, keepalive_interval=config.keepalive_interval,
                connect_timeout=config.connect_timeout,
                max_connections=config.max_connections,
                max_connections_per_address=config.max_connections_per_address,
                message_timeout=config.message_timeout,
                udp_receive_buffer=config.udp_receive_buffer),
            self._receive, in_use=self._connection_in_use,
            on_connection_closed=self._connection_closed, may_accept=may_accept)
        self.addresses = StackAddresses(config.listen_address, self.transports)
        self.kept = KeptConnections()
        self.outbound = Outbound(self.transports, spawn=self._spawn,
                                 on_failed=self._transport_failed)
        self.clients = ClientTransactions(config, self.layer, self.transports, self.addresses,
                                          self.outbound, self._dispatch)
        self.servers = ServerTransactions(config, self.layer, self._dispatch, self._spawn)
        self._stray_response_handler: Callable[[Response, Source], None] | None = None
        self._receiving_from: Source | None = None  # source of the message being processed
        self._nursery: trio.Nursery | None = None
        self._timer_wakeup = trio.Event()
        self._sleeping_until = math.inf

    # -- configuration by the UA -------------------------------------------------------------
    def set_request_handler(self, handler: RequestHandler | None) -> None:
        """`async handler(incoming: IncomingRequest)`, run in a task of its own per request."""
        self.servers.set_request_handler(handler)

    def set_local_uri_check(self, is_local_uri: Callable[[Uri], bool] | None) -> None:
        """`is_local_uri(request_uri) -> bool`: False gets 404 (None: every URI is ours)."""
        self.servers.set_local_uri_check(is_local_uri)

    def set_stray_response_handler(self, handler: Callable[[Response, Source], None] | None
                                   ) -> None:
        """Responses that match no transaction: retransmitted 2xx to an INVITE whose
        transaction has ended (the UA sends the ACK again)."""
        self._stray_response_handler = handler

    # -- what the UA calls (held objects do the work) ----------------------------------------
    async def send_request(self, request: Request, target: TargetLike, *,
                           on_provisional: ProvisionalCallback | None = None) -> Response:
        """Sends `request` (not ACK) in a client transaction to `target` and returns the final
        response; provisional ones go to `on_provisional` (sync or async). The top Via of
        `request` is filled in place. Raises TransactionTimeout or TransportError."""
        return await self.clients.send_request(request, target, on_provisional=on_provisional)

    async def start_client_transaction(self, request: Request, target: TargetLike
                                       ) -> ClientTransactionHandle:
        """Connects if needed, fills the top Via, starts the transaction and returns its
        handle (iterate it for every response: what an INVITE needs)."""
        return await self.clients.start_client_transaction(request, target)

    async def send_stateless(self, message: AnyMessage, target: TargetLike, *,
                             fill_via: bool = True) -> None:
        """Sends a message outside any transaction (the ACK to a 2xx, RFC 3261 §13.2.2.4)."""
        await self.clients.send_stateless(message, target, fill_via=fill_via)

    def cancel(self, handle: ClientTransactionHandle) -> None:
        """CANCELs a pending INVITE (see ClientTransactions.cancel)."""
        self.clients.cancel(handle)

    def keep_connection(self, connection: Connection | None) -> None:
        """A dialog (a call) uses this connection: the idle timeout must not close it, however
        long nothing crosses it. Pair with release_connection."""
        if connection is not None:
            self.kept.keep(connection)

    def release_connection(self, connection: Connection | None) -> None:
        if connection is not None:
            self.kept.release(connection)

    @property
    def ports(self) -> dict[str, int]:
        """{"udp": n, "tcp": n, "tls": n}: the ports actually bound (no "tls" without a
        server certificate)."""
        return self.addresses.ports

    def local_contact(self, transport: str, toward: TargetLike | None = None, *,
                      learned: bool = True) -> tuple[str, int | None]:
        """The (host, port) to put in a Contact (see StackAddresses.local_contact)."""
        return self.addresses.local_contact(transport, toward, learned=learned)

    def learned_address(self, transport: str, toward: TargetLike | None = None
                        ) -> tuple[str, int] | None:
        """(received, rport) as a peer saw us (see StackAddresses.learned_address)."""
        return self.addresses.learned_address(transport, toward)

    def local_address(self, toward: TargetLike | None = None) -> str:
        """The local address toward a peer (see StackAddresses.local_address)."""
        return self.addresses.local_address(toward)

    # -- the network delivers ----------------------------------------------------------------
    def _receive(self, message: AnyMessage, source: Source) -> None:
        now = trio.current_time()
        if isinstance(message, Request):
            log.debug("received %s %s from %r", message.method, message.uri, source)
            stamp_received(message, source.address, source.port)
            if source.connection is not None:
                self.addresses.note_alias(message, source)
        else:
            log.debug("received %d %s from %r", message.status, message.reason, source)
            self.addresses.learn(message, source)
        self._receiving_from = source
        try:
            self._dispatch(self.layer.receive(message, source=source,
                                              reliable=source.transport != "udp", now=now))
        finally:
            self._receiving_from = None

    def _connection_in_use(self, connection: Connection) -> bool:
        if connection in self.kept:
            return True
        return any(getattr(transaction.destination, "connection", None) is connection
                   for transaction in self.layer.transactions)

    def _connection_closed(self, connection: Connection) -> None:
        self.clients.connection_closed(connection)

    def _transport_failed(self, transaction: Any, reason: str) -> None:
        self.clients.note_failure(transaction, reason)
        self._dispatch(self.layer.transport_error(transaction, trio.current_time()))

    # -- events of the transaction layer -----------------------------------------------------
    def _dispatch(self, events: list[Event]) -> None:
        # What goes on the wire first: the layer reports a new INVITE before the Transmit of
        # its 100 Trying, and a TU that answers at once (a rejection) must not see its final
        # response overtaken by that 100.
        events = sorted(events, key=lambda e: not isinstance(e, Transmit))
        for event in events:
            try:
                self._route(event)
            except Exception:  # noqa: BLE001 - one event must not stop the others
                log.exception("error handling %r", event)
        self._wake_timers()

    def _route(self, event: Event) -> None:
        if isinstance(event, Transmit):
            self.outbound.transmit(event)
        elif isinstance(event, ResponseReceived):
            if self.clients.response_received(event):
                return
            if self._stray_response_handler is not None and self._receiving_from is not None:
                self._stray_response_handler(event.response, self._receiving_from)
            else:
                log.debug("response %d matches no transaction; dropped", event.response.status)
        elif isinstance(event, RequestReceived):
            if event.request.method == "ACK":
                self.servers.ack_received(event.request, event.source)
            else:
                self.servers.new_request(event.transaction, event.request, event.source)
        elif isinstance(event, CancelReceived):
            self.servers.cancel_received(event)
        elif isinstance(event, TransactionTimedOut):
            self.clients.timed_out(event)
        elif isinstance(event, TransportFailed):
            self.clients.transport_failed(event)
        elif isinstance(event, TransactionTerminated):
            self.clients.terminated(event.transaction)
            self.servers.terminated(event.transaction)
        elif isinstance(event, MessageDropped):
            log.debug("dropped %r: %s", event.message, event.reason)

    # -- tasks, timers and lifecycle ---------------------------------------------------------
    def _spawn(self, async_fn: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Starts a task in the stack's nursery (not at all when the stack is not running)."""
        if self._nursery is None:
            log.debug("the SIP stack is not running: %r not started", async_fn)
            return
        self._nursery.start_soon(async_fn, *args)

    def _wake_timers(self) -> None:
        deadline = self.layer.next_deadline()
        if deadline is not None and deadline < self._sleeping_until:
            self._timer_wakeup.set()

    async def _timer_loop(self) -> None:
        while True:
            deadline = self.layer.next_deadline()
            self._sleeping_until = math.inf if deadline is None else deadline
            self._timer_wakeup = trio.Event()
            with trio.move_on_at(self._sleeping_until):
                await self._timer_wakeup.wait()
            self._sleeping_until = -math.inf  # awake: no wake-ups needed
            now = trio.current_time()
            deadline = self.layer.next_deadline()
            if deadline is not None and deadline <= now:
                try:
                    events = self.layer.handle_timeout(now)
                except Exception:  # noqa: BLE001 - the timers must keep running
                    log.exception("transaction timers failed")
                    continue
                self._dispatch(events)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Binds the transports and serves until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await nursery.start(self.transports.run)
                nursery.start_soon(self._timer_loop)
                log.info("SIP listening on %s: %s", self.config.listen_address,
                         ", ".join(f"{t} {p}" for t, p in self.ports.items()))
                task_status.started()
            except BaseException:
                nursery.cancel_scope.cancel()
                raise


@asynccontextmanager
async def open_sip_stack(config: StackConfig = StackConfig(), *,
                         may_accept: Callable[[], bool] = lambda: True
                         ) -> AsyncIterator[SipStack]:
    """Runs a SipStack for the body of the `async with`; bind errors raise OSError here."""
    stack = SipStack(config, may_accept=may_accept)
    stack.transports.bind()
    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(stack.run)
        try:
            yield stack
        except Exception as exc:  # noqa: BLE001 - raised below, not wrapped in a group
            failure = exc
        finally:
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
