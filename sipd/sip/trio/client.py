"""The client side of a SipStack (sipd.sip.trio.stack): sending requests in client
transactions or statelessly, and CANCEL. Picks the connection for a target (opening it if
needed) and fills in the top Via the way RFC 3261 §18.1.1 and RFC 3581 want it. Holds the
handle of every client transaction and passes it what the transaction layer reports."""

from __future__ import annotations

import logging
from typing import Any, Callable

import trio

from ..builder import new_via
from ..errors import SipParseError
from ..message import AnyMessage, Request, Response
from ..transaction import (
    ClientTransaction,
    Event,
    InviteClientTransaction,
    ResponseReceived,
    TransactionTimedOut,
    TransportFailed,
    has_rfc3261_branch,
)
from ..transaction_layer import TransactionLayer
from .addresses import StackAddresses
from .config import StackConfig
from .connections import Outbound
from .handles import ClientTransactionHandle, Hop, ProvisionalCallback, TransactionTimeout
from .stream import Connection
from .transport import STREAM_TRANSPORTS, TargetLike, Transports, TransportError

log = logging.getLogger("sipd.sip.trio.stack")  # one logger for the whole stack


class ClientTransactions:
    """Starts client transactions and feeds their handles; `dispatch(events)` is the stack's
    way of acting on what the transaction layer returns."""

    def __init__(self, config: StackConfig, layer: TransactionLayer, transports: Transports,
                 addresses: StackAddresses, outbound: Outbound,
                 dispatch: Callable[[list[Event]], None]) -> None:
        self.config = config
        self.layer = layer
        self.transports = transports
        self.addresses = addresses
        self.outbound = outbound
        self._dispatch = dispatch
        self._handles: dict[ClientTransaction, ClientTransactionHandle] = {}
        self._failures: dict[Any, str] = {}  # transaction -> why its transport failed

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
        self._handles[transaction] = handle
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
        self.outbound.send_to_hop(message.to_bytes(), hop)

    def cancel(self, handle: ClientTransactionHandle) -> None:
        """CANCELs a pending INVITE (when a provisional response has come, or as soon as one
        comes; nothing once it has a final response)."""
        transaction = handle.transaction
        if not isinstance(transaction, InviteClientTransaction):
            raise ValueError("only a started INVITE can be cancelled")
        self._dispatch(self.layer.cancel(transaction, trio.current_time()))

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
            host, port = self.addresses.local_address(target), self.transports.ports["udp"]
        values = request.headers.values("Via")
        branch = None
        if values:
            try:
                top = request.top_via  # parse of values[0], kept if the message was read
                if top is not None and has_rfc3261_branch(top.branch):
                    branch = top.branch
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

    # -- what the transaction layer reports --------------------------------------------------
    def response_received(self, event: ResponseReceived) -> bool:
        """Passes a response to its handle; False when no transaction of ours has it."""
        transaction = event.transaction
        handle = self._handles.get(transaction) if transaction is not None else None
        if handle is None:
            return False
        handle._deliver(event.response)
        return True

    def timed_out(self, event: TransactionTimedOut) -> None:
        handle = self._handles.get(event.transaction)
        if handle is None:
            log.debug("%r timed out", event.transaction)
            return
        handle._fail(TransactionTimeout(
            f"no final response to {handle.request.method} from {handle.hop.transport} "
            f"{handle.hop.address}:{handle.hop.port} within "
            f"{self.config.timers.transaction_timeout:g} s"))

    def transport_failed(self, event: TransportFailed) -> None:
        handle = self._handles.get(event.transaction)
        if handle is not None:
            handle._fail(TransportError(
                self._failures.pop(event.transaction, None)
                or f"cannot send {handle.request.method} to {handle.hop.transport} "
                   f"{handle.hop.address}:{handle.hop.port}"))

    def terminated(self, transaction: Any) -> None:
        handle = self._handles.pop(transaction, None)
        if handle is not None:
            handle._end()
        self._failures.pop(transaction, None)

    def note_failure(self, transaction: Any, reason: str) -> None:
        """Why the transport failed `transaction`, for the error its handle raises."""
        if transaction in self._handles:
            self._failures[transaction] = reason

    def connection_closed(self, connection: Connection) -> None:
        """Transactions waiting on a connection that closed fail now rather than at their
        timeout (the response cannot come over it)."""
        now = trio.current_time()
        for transaction, handle in list(self._handles.items()):
            if (handle.hop.connection is connection and handle.final is None
                    and not transaction.terminated):
                self._failures[transaction] = (
                    f"the {connection.transport.upper()} connection to "
                    f"{connection.remote[0]}:{connection.remote[1]} closed before a final "
                    f"response to {handle.request.method}")
                self._dispatch(self.layer.transport_error(transaction, now))
