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
"""

from __future__ import annotations

import logging
import math
import socket
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import trio

from .builder import build_response, new_via, response_destination, stamp_received
from .errors import SipParseError
from .header_values import parse_via
from .message import AnyMessage, Request, Response
from .stack_config import DEFAULT_CONTENT_TYPES, DEFAULT_METHODS, StackConfig  # noqa: F401
from .stack_handles import (
    ClientTransactionHandle,
    Hop,
    IncomingRequest,
    ProvisionalCallback,
    TransactionTimeout,
)
from .tls import TlsConfig
from .transaction import (
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
    has_rfc3261_branch,
)
from .transaction_layer import TransactionLayer
from .transport import (
    DEFAULT_PORTS,
    STREAM_TRANSPORTS,
    Source,
    TargetLike,
    Transports,
    TransportError,
    TransportSettings,
    is_ip_address,
)
from .transport_stream import Connection
from .uri import SipUri, Uri
from .validation import validate_request_for_uas

__all__ = [
    "ClientTransactionHandle", "IncomingRequest", "SipStack", "StackConfig", "TlsConfig",
    "TransactionTimeout", "TransportError", "open_sip_stack",
]

log = logging.getLogger("sipd.sip.stack")

RequestHandler = Callable[[IncomingRequest], Awaitable[None]]


class SipStack:
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

    # -- addresses ---------------------------------------------------------------------------
    @property
    def ports(self) -> dict[str, int]:
        """{"udp": n, "tcp": n, "tls": n}: the ports actually bound (no "tls" without a
        server certificate)."""
        return dict(self.transports.ports)

    def local_contact(self, transport: str, toward: TargetLike | None = None, *,
                      learned: bool = True) -> tuple[str, int | None]:
        """The (host, port) to put in a Contact for `transport`: the bound address, or when
        bound to a wildcard the local address that routes to `toward`. With `learned`, what
        the peer (`toward`, else the last one answering over that transport) saw as our
        address in received/rport (for TCP/TLS only its host: the port seen is the
        connection's). The port is None when we neither listen on `transport` nor have a
        connection to `toward`."""
        transport = transport.lower()
        host = self.local_address(toward)
        port = self.transports.ports.get(transport)
        if port is None and toward is not None and transport in STREAM_TRANSPORTS:
            connection = self.transports.find_connection(transport, toward.address, toward.port)
            if connection is not None:
                host, port = connection.local
        if learned:
            seen = self.learned_address(transport, toward)
            if seen is not None:
                if transport == "udp":
                    return seen
                return seen[0], port
        return host, port

    def learned_address(self, transport: str, toward: TargetLike | None = None
                        ) -> tuple[str, int] | None:
        """(received, rport) of the last response from `toward` (or from anyone over
        `transport` when `toward` is None), as that peer saw us (RFC 3581)."""
        transport = transport.lower()
        if toward is not None:
            return self._learned.get((transport, toward.address, toward.port))
        return self._learned_last.get(transport)

    def local_address(self, toward: TargetLike | None = None) -> str:
        """The bound address, or for a wildcard bind the local address the kernel routes
        `toward` from (a connected UDP socket tells it; nothing is sent)."""
        bound = self.config.listen_address
        if bound not in ("0.0.0.0", "::", ""):
            return bound
        destination = toward.address if toward is not None else (
            "2001:db8::1" if bound == "::" else "192.0.2.1")
        cached = self._routes.get(destination)
        if cached is not None:
            return cached
        family = socket.AF_INET6 if ":" in destination else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((destination, 9))
                address = probe.getsockname()[0]
        except OSError:
            address = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self._routes[destination] = address
        return address

    # -- sending -----------------------------------------------------------------------------
    async def send_request(self, request: Request, target: TargetLike, *,
                           on_provisional: ProvisionalCallback | None = None) -> Response:
        """Sends `request` (not ACK) in a client transaction to `target` and returns the final
        response; provisional ones go to `on_provisional` (sync or async). The top Via of
        `request` is filled in place. Raises TransactionTimeout or TransportError."""
        handle = await self.start_client_transaction(request, target)
        return await handle.final_response(on_provisional)

    async def start_client_transaction(self, request: Request, target: TargetLike
                                       ) -> ClientTransactionHandle:
        """Connects if needed, fills the top Via, starts the transaction and returns its
        handle (iterate it for every response: what an INVITE needs)."""
        hop = await self._prepare(request, target)
        handle = ClientTransactionHandle(request, target, hop)
        transaction, events = self.layer.send_request(
            request, destination=hop, reliable=hop.transport != "udp", now=trio.current_time())
        handle.transaction = transaction
        self._clients[transaction] = handle
        log.debug("sending %s %s to %r", request.method, request.uri, hop)
        self._dispatch(events)
        return handle

    async def send_stateless(self, message: AnyMessage, target: TargetLike, *,
                             fill_via: bool = True) -> None:
        """Sends a message outside any transaction (the ACK to a 2xx, RFC 3261 §13.2.2.4).
        With `fill_via` a request's top Via is filled like `send_request` does."""
        if isinstance(message, Request) and fill_via:
            hop = await self._prepare(message, target)
        else:
            hop = await self._hop(target)
        self._send_now(message.to_bytes(), hop)

    def cancel(self, handle: ClientTransactionHandle) -> None:
        """CANCELs a pending INVITE (when a provisional response has come, or as soon as one
        comes; nothing once it has a final response)."""
        transaction = handle.transaction
        if transaction is None or handle.request.method != "INVITE":
            raise ValueError("only a started INVITE can be cancelled")
        self._dispatch(self.layer.cancel(transaction, trio.current_time()))  # type: ignore[arg-type]

    async def _hop(self, target: TargetLike) -> Hop:
        transport = target.transport.lower()
        if transport not in self.transports.enabled:
            raise TransportError(f"SIP over {transport.upper()} is not enabled (enabled: "
                                 f"{', '.join(self.transports.enabled) or 'none'})")
        # TLS verifies the name of the URI's domain (RFC 5922 §4: Target.server_name), not
        # the SRV target a DNS answer named (Target.host).
        name = (getattr(target, "server_name", None) or getattr(target, "host", None)
                or target.address)
        connection = None
        if transport in STREAM_TRANSPORTS:
            connection = getattr(target, "connection", None)
            if connection is None or connection.closed:
                connection = await self.transports.connect(
                    transport, target.address, target.port, name)
        return Hop(transport, name, target.address, target.port, connection)

    async def _prepare(self, request: Request, target: TargetLike) -> Hop:
        hop = await self._hop(target)
        if hop.connection is not None:
            host = hop.connection.local[0]
            port = self.transports.ports.get(hop.transport, hop.connection.local[1])
        else:
            host, port = self.local_address(target), self.transports.ports["udp"]
        values = request.headers.values("Via")
        branch = None
        if values:
            try:
                top = parse_via(values[0])
                branch = top.branch if has_rfc3261_branch(top.branch) else None
            except SipParseError:
                pass
        via = new_via(hop.transport, host, port, rport=True, branch=branch)
        if hop.connection is not None:
            via.params.set("alias")  # RFC 5923: reuse this connection toward us
        if values:
            request.headers.replace_first_value("Via", str(via))
        else:
            request.headers.add_first("Via", str(via))
        if "Max-Forwards" not in request.headers:
            request.headers.add("Max-Forwards", "70")
        if "User-Agent" not in request.headers and self.config.user_agent:
            request.headers.add("User-Agent", self.config.user_agent)
        return hop

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

    def _note_alias(self, request: Request, source: Source) -> None:
        via = request.top_via
        if via is not None and "alias" in via.params and source.connection is not None:
            port = via.port or DEFAULT_PORTS[source.transport]
            self.transports.add_alias(source.connection, source.address, port)

    def _learn(self, response: Response, source: Source) -> None:
        try:
            via = response.top_via
        except SipParseError:
            return
        if via is None or (via.received is None and via.rport is None):
            return
        seen = (via.received or via.host, via.rport or via.port or DEFAULT_PORTS[source.transport])
        key = (source.transport, source.address, source.port)
        if self._learned.get(key) != seen:
            log.debug("%r sees us as %s:%d", source, *seen)
        self._learned[key] = seen
        self._learned_last[source.transport] = seen

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

    def _transmit(self, event: Transmit) -> None:
        try:
            if isinstance(event.message, Response):
                self._send_response_data(event.data, event.message, event.destination,
                                         event.transaction)
            else:
                self._send_now(event.data, event.destination)
        except TransportError as exc:
            log.debug("send failed: %s", exc)
            if event.transaction is not None and not event.transaction.terminated:
                self._failures[event.transaction] = str(exc)  # for the TU's error text
                self._dispatch(self.layer.transport_error(event.transaction,
                                                          trio.current_time()))

    def _send_now(self, data: bytes, hop: Any) -> None:
        self.transports.send(data, hop.transport, hop.address, hop.port,
                             getattr(hop, "connection", None))

    def _send_response_data(self, data: bytes, response: Response, source: Source,
                            transaction: Any) -> None:
        """Over the request's connection while it lives; else where the Via says (received,
        rport: RFC 3261 §18.2.2, RFC 3581), opening a connection if needed."""
        connection = source.connection
        if connection is not None and not connection.closed:
            self.transports.send(data, source.transport, source.address, source.port,
                                 connection)
            return
        host, port, _ = response_destination(response)
        if not is_ip_address(host):
            host = source.address  # no DNS here: the request came from there
        port = port or DEFAULT_PORTS[source.transport]
        if source.transport == "udp":
            self.transports.send_datagram(data, host, port)
            return
        connection = (self.transports.find_connection(source.transport, host, port)
                      or self.transports.find_connection(source.transport, source.address,
                                                         source.port))
        if connection is not None:
            self.transports.send(data, source.transport, host, port, connection)
        elif self._nursery is not None:
            self._nursery.start_soon(self._connect_and_send, data, source.transport, host, port,
                                     transaction)

    async def _connect_and_send(self, data: bytes, transport: str, host: str, port: int,
                                transaction: Any) -> None:
        try:
            connection = await self.transports.connect(transport, host, port)
            self.transports.send(data, transport, host, port, connection)
        except Exception as exc:  # noqa: BLE001 - TransportError, or worse: logged either way
            if not isinstance(exc, TransportError):
                log.exception("sending a response to %s %s:%d failed", transport, host, port)
            log.debug("cannot send a response: %s", exc)
            if transaction is not None and not transaction.terminated:
                self._dispatch(self.layer.transport_error(transaction, trio.current_time()))

    # -- incoming requests -------------------------------------------------------------------
    def _new_request(self, transaction: ServerTransaction, request: Request,
                     source: Source) -> None:
        incoming = IncomingRequest(self, request, source, transaction)
        self._servers[transaction] = incoming
        config = self.config
        rejection = validate_request_for_uas(
            request, supported_methods=config.supported_methods,
            supported_extensions=config.supported_extensions,
            accepted_types=config.accepted_types)
        if rejection is not None:
            log.debug("rejecting %r: %d %s", incoming, rejection.status, rejection.reason)
            incoming.respond_nowait(rejection.status, rejection.reason, headers=rejection.headers)
            return
        if not self._addressed_to_us(request):
            incoming.respond_nowait(404, "Not Found")
            return
        if self._request_handler is None:
            if request.method == "OPTIONS":
                self._answer_options(incoming)
            else:
                incoming.respond_nowait(480, "No Handler")
            return
        self._spawn_handler(incoming)

    def _addressed_to_us(self, request: Request) -> bool:
        if self._is_local_uri is None:
            return True
        uri = request.uri
        if request.method == "OPTIONS" and isinstance(uri, SipUri) and uri.user is None:
            return True  # to the UA itself (a keep-alive, a capability query)
        try:
            return bool(self._is_local_uri(uri))
        except Exception:  # noqa: BLE001
            log.exception("is_local_uri failed for %s", uri)
            return True

    def _answer_options(self, incoming: IncomingRequest) -> None:
        config = self.config
        headers = [("Allow", ", ".join(sorted(config.supported_methods))),
                   ("Accept", ", ".join(config.accepted_types)),
                   ("Accept-Encoding", "identity"),
                   ("Supported", ", ".join(config.supported_extensions))]
        incoming.respond_nowait(200, "OK", headers=headers)

    def _spawn_handler(self, incoming: IncomingRequest) -> None:
        if self._request_handler is None or self._nursery is None:
            log.debug("no handler for %r", incoming)
            return
        self._nursery.start_soon(self._run_handler, self._request_handler, incoming)

    async def _run_handler(self, handler: RequestHandler, incoming: IncomingRequest) -> None:
        try:
            await handler(incoming)
        except Exception:  # noqa: BLE001 - answered 500, logged, the stack goes on
            log.exception("request handler failed on %r", incoming)
            self._answer_leftover(incoming, 500, "Server Internal Error")
            return
        if incoming.transaction is None or incoming.answered or incoming.detached:
            return
        if incoming.method == "OPTIONS":
            self._answer_options(incoming)
        else:
            log.warning("request handler left %r unanswered: 500", incoming)
            self._answer_leftover(incoming, 500, "Request Not Handled")

    def _answer_leftover(self, incoming: IncomingRequest, status: int, reason: str) -> None:
        if incoming.transaction is None or incoming.answered:
            return
        try:
            incoming.respond_nowait(status, reason)
        except Exception:  # noqa: BLE001 - the transaction may have ended meanwhile
            log.debug("could not answer %r with %d", incoming, status, exc_info=True)

    def _cancel_received(self, event: CancelReceived) -> None:
        invite = event.invite_transaction
        cancel = IncomingRequest(self, event.request, event.source, event.transaction)
        if invite is None:
            cancel.respond_nowait(481, "Call/Transaction Does Not Exist")
            return
        cancel.respond_nowait(200, "OK", to_tag=invite.to_tag)
        incoming = self._servers.get(invite)
        if incoming is not None and not incoming.answered:
            incoming.respond_nowait(487, "Request Terminated")
            incoming.cancelled.set()

    def _respond(self, incoming: IncomingRequest, status: int, reason: str | None, *,
                 headers: Iterable[tuple[str, str]], body: bytes, content_type: str | None,
                 to_tag: str | None) -> Response:
        transaction = incoming.transaction
        assert transaction is not None
        response = build_response(incoming.request, status, reason,
                                  to_tag=to_tag or transaction.to_tag, headers=headers,
                                  body=body, content_type=content_type)
        if "Server" not in response.headers and self.config.user_agent:
            response.headers.add("Server", self.config.user_agent)
        self._dispatch(self.layer.send_response(transaction, response, trio.current_time()))
        return response

    # -- connections -------------------------------------------------------------------------
    def keep_connection(self, connection: Connection | None) -> None:
        """A dialog (a call) uses this connection: the idle timeout must not close it, however
        long nothing crosses it. Pair with release_connection."""
        if connection is not None:
            self._kept[connection] = self._kept.get(connection, 0) + 1

    def release_connection(self, connection: Connection | None) -> None:
        count = self._kept.get(connection, 0) if connection is not None else 0
        if count > 1:
            self._kept[connection] = count - 1
        elif count:
            del self._kept[connection]

    def _connection_in_use(self, connection: Connection) -> bool:
        if connection in self._kept:
            return True
        for transaction in self.layer.transactions:
            if getattr(transaction.destination, "connection", None) is connection:
                return True
        return False

    def _connection_closed(self, connection: Connection) -> None:
        """Client transactions waiting on a connection that closed fail now rather than at
        their timeout (the response cannot come over it)."""
        now = trio.current_time()
        for transaction, handle in list(self._clients.items()):
            if (handle.hop.connection is connection and handle.final is None
                    and not transaction.terminated):
                self._failures[transaction] = (
                    f"the {connection.transport.upper()} connection to "
                    f"{connection.remote[0]}:{connection.remote[1]} closed before a final "
                    f"response to {handle.request.method}")
                self._dispatch(self.layer.transport_error(transaction, now))

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
