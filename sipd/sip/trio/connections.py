"""Putting what a SipStack (sipd/sip/stack.py) sends on the wire, and keeping its
connections: responses go back over the request's connection while it lives, else where the
top Via says (RFC 3261 §18.2.2, RFC 3581), connecting if needed; a connection a dialog uses is
kept open however idle; client transactions waiting on a connection that closed fail at once."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from ..builder import response_destination
from ..message import Response
from .handles import ClientTransactionHandle
from ..transaction import ClientTransaction, Event, Transmit
from ..transaction_layer import TransactionLayer
from .transport import DEFAULT_PORTS, Source, Transports, TransportError, is_ip_address
from .stream import Connection

log = logging.getLogger("sipd.sip.trio.stack")  # one logger for the whole stack, as before the split


class StackConnections:
    """Mixed into SipStack, whose __init__ creates the state used here."""

    layer: TransactionLayer
    transports: Transports
    _clients: dict[ClientTransaction, ClientTransactionHandle]
    _kept: dict[Connection, int]  # connections dialogs use -> how many
    _failures: dict[Any, str]  # transaction -> why its transport failed
    _nursery: trio.Nursery | None

    if TYPE_CHECKING:  # defined in sipd/sip/stack.py
        def _dispatch(self, events: list[Event]) -> None: ...

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
