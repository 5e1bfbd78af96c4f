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

SipStack is put together from parts, one job each: this module has its state, the receive
path (transports -> transaction layer), the handling of the layer's events and the timers;
stack_client.py sends requests, stack_server.py takes new requests to the UA,
stack_connections.py puts bytes on the wire and keeps connections, stack_addresses.py knows
our address. stack_handles.py and stack_config.py hold what the UA gets and gives.
"""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import trio

from ..builder import stamp_received
from ..message import AnyMessage, Request, Response
from .addresses import StackAddresses
from .client import StackClient
from .config import DEFAULT_CONTENT_TYPES, DEFAULT_METHODS, StackConfig  # noqa: F401
from .connections import StackConnections
from .handles import (  # noqa: F401 - Hop and ProvisionalCallback: imported from here too
    ClientTransactionHandle,
    Hop,
    IncomingRequest,
    ProvisionalCallback,
    TransactionTimeout,
)
from .server import RequestHandler, StackServer
from .tls import TlsConfig
from ..transaction import (
    CancelReceived,
    ClientTransaction,
    Event,
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
    Transmit,
)
from ..transaction_layer import TransactionLayer
from .transport import Source, Transports, TransportError, TransportSettings
from .stream import Connection
from ..uri import Uri

__all__ = [
    "ClientTransactionHandle", "IncomingRequest", "SipStack", "StackConfig", "TlsConfig",
    "TransactionTimeout", "TransportError", "open_sip_stack",
]

log = logging.getLogger("sipd.sip.trio.stack")


class SipStack(StackClient, StackServer, StackConnections, StackAddresses):
    """One SIP stack: the state of every part lives here (__init__); the methods are in the
    parts' modules (see this module's docstring)."""

    def __init__(self, config: StackConfig = StackConfig()) -> None:
        self.config = config
        self.layer = TransactionLayer(config.timers)
        self.transports = Transports(
            TransportSettings(
                listen_address=config.listen_address,
                ports={"udp": config.udp_port, "tcp": config.tcp_port, "tls": config.tls_port},
                transports=tuple(t.lower() for t in config.transports),
                max_message_bytes=config.max_message_bytes, tls=config.tls,
                idle_timeout=config.idle_timeout, keepalive_interval=config.keepalive_interval,
                connect_timeout=config.connect_timeout),
            self._receive, in_use=self._connection_in_use,
            on_connection_closed=self._connection_closed)
        self._request_handler: RequestHandler | None = None
        self._is_local_uri: Callable[[Uri], bool] | None = None
        self._stray_response_handler: Callable[[Response, Source], None] | None = None
        self._clients: dict[ClientTransaction, ClientTransactionHandle] = {}
        self._servers: dict[ServerTransaction, IncomingRequest] = {}
        self._learned: dict[tuple[str, str, int], tuple[str, int]] = {}
        self._kept: dict[Connection, int] = {}  # connections dialogs use -> how many
        self._learned_last: dict[str, tuple[str, int]] = {}
        self._routes: dict[str, str] = {}
        self._failures: dict[Any, str] = {}  # transaction -> why its transport failed
        self._receiving_from: Source | None = None  # source of the message being processed
        self._nursery: trio.Nursery | None = None
        self._timer_wakeup = trio.Event()
        self._sleeping_until = math.inf

    # -- configuration by the UA -------------------------------------------------------------
    def set_request_handler(self, handler: RequestHandler | None) -> None:
        """`async handler(incoming: IncomingRequest)`, run in a task of its own per request."""
        self._request_handler = handler

    def set_local_uri_check(self, is_local_uri: Callable[[Uri], bool] | None) -> None:
        """`is_local_uri(request_uri) -> bool`: False gets 404 (None: every URI is ours)."""
        self._is_local_uri = is_local_uri

    def set_stray_response_handler(self, handler: Callable[[Response, Source], None] | None
                                   ) -> None:
        """Responses that match no transaction: retransmitted 2xx to an INVITE whose
        transaction has ended (the UA sends the ACK again)."""
        self._stray_response_handler = handler

    # -- the network delivers ----------------------------------------------------------------
    def _receive(self, message: AnyMessage, source: Source) -> None:
        now = trio.current_time()
        if isinstance(message, Request):
            log.debug("received %s %s from %r", message.method, message.uri, source)
            stamp_received(message, source.address, source.port)
            if source.connection is not None:
                self._note_alias(message, source)
        else:
            log.debug("received %d %s from %r", message.status, message.reason, source)
            self._learn(message, source)
        self._receiving_from = source
        try:
            self._dispatch(self.layer.receive(message, source=source,
                                              reliable=source.transport != "udp", now=now))
        finally:
            self._receiving_from = None

    # -- events of the transaction layer -----------------------------------------------------
    def _dispatch(self, events: list[Event]) -> None:
        # What goes on the wire first: the layer reports a new INVITE before the Transmit of
        # its 100 Trying, and a TU that answers at once (a rejection) must not see its final
        # response overtaken by that 100.
        events = sorted(events, key=lambda e: not isinstance(e, Transmit))
        for event in events:
            try:
                self._handle_event(event)
            except Exception:  # noqa: BLE001 - one event must not stop the others
                log.exception("error handling %r", event)
        self._wake_timers()

    def _handle_event(self, event: Event) -> None:
        if isinstance(event, Transmit):
            self._transmit(event)
        elif isinstance(event, ResponseReceived):
            handle = self._clients.get(event.transaction) if event.transaction else None
            if handle is not None:
                handle._deliver(event.response)
            elif self._stray_response_handler is not None and self._receiving_from is not None:
                self._stray_response_handler(event.response, self._receiving_from)
            else:
                log.debug("response %d matches no transaction; dropped", event.response.status)
        elif isinstance(event, RequestReceived):
            if event.request.method == "ACK":
                self._spawn_handler(IncomingRequest(self, event.request, event.source, None))
            else:
                self._new_request(event.transaction, event.request, event.source)
        elif isinstance(event, CancelReceived):
            self._cancel_received(event)
        elif isinstance(event, TransactionTimedOut):
            handle = self._clients.get(event.transaction)
            if handle is not None:
                handle._fail(TransactionTimeout(
                    f"no final response to {handle.request.method} from {handle.hop.transport} "
                    f"{handle.hop.address}:{handle.hop.port} within "
                    f"{self.config.timers.transaction_timeout:g} s"))
            else:
                log.debug("%r timed out", event.transaction)
        elif isinstance(event, TransportFailed):
            handle = self._clients.get(event.transaction)
            if handle is not None:
                handle._fail(TransportError(
                    self._failures.pop(event.transaction, None)
                    or f"cannot send {handle.request.method} to {handle.hop.transport} "
                       f"{handle.hop.address}:{handle.hop.port}"))
        elif isinstance(event, TransactionTerminated):
            handle = self._clients.pop(event.transaction, None)
            if handle is not None:
                handle._end()
            self._servers.pop(event.transaction, None)
            self._failures.pop(event.transaction, None)
        elif isinstance(event, MessageDropped):
            log.debug("dropped %r: %s", event.message, event.reason)

    # -- timers and lifecycle ----------------------------------------------------------------
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

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
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
async def open_sip_stack(config: StackConfig = StackConfig()) -> AsyncIterator[SipStack]:
    """Runs a SipStack for the body of the `async with`; bind errors raise OSError here."""
    stack = SipStack(config)
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
