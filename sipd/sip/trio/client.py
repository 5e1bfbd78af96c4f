"""The client side of a SipStack (sipd/sip/stack.py): sending requests in client
transactions or statelessly, and CANCEL. Picks the connection for a target (opening it if
needed) and fills in the top Via the way RFC 3261 §18.1.1 and RFC 3581 want it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from ..builder import new_via
from ..errors import SipParseError
from ..message import AnyMessage, Request, Response
from .config import StackConfig
from .handles import ClientTransactionHandle, Hop, ProvisionalCallback
from ..transaction import ClientTransaction, Event, has_rfc3261_branch
from ..transaction_layer import TransactionLayer
from .transport import STREAM_TRANSPORTS, TargetLike, Transports, TransportError

log = logging.getLogger("sipd.sip.trio.stack")  # one logger for the whole stack, as before the split


class StackClient:
    """Mixed into SipStack, whose __init__ creates the state used here."""

    config: StackConfig
    layer: TransactionLayer
    transports: Transports
    _clients: dict[ClientTransaction, ClientTransactionHandle]

    if TYPE_CHECKING:  # defined by the other parts of SipStack
        def _dispatch(self, events: list[Event]) -> None: ...
        def _send_now(self, data: bytes, hop: Hop) -> None: ...
        def local_address(self, toward: TargetLike | None = None) -> str: ...

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
                top = request.top_via  # parse of values[0], kept if the message was read
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
