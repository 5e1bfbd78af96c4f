"""Putting what a SipStack (sipd.sip.trio.stack) sends on the wire, and keeping connections.

`Outbound` sends what the transaction layer transmits: requests to their hop, responses back
over the request's connection while it lives, else where the top Via says (RFC 3261 §18.2.2,
RFC 3581), connecting if needed. A send that fails is reported to `on_failed(transaction,
reason)`, which tells the transaction layer. `KeptConnections` counts the connections dialogs
use, which the idle timeout must leave open however idle they are.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..builder import response_destination
from ..message import Response
from ..transaction import Transmit
from .stream import Connection
from .transport import DEFAULT_PORTS, Source, Transports, TransportError, is_ip_address

log = logging.getLogger("sipd.sip.trio.stack")  # one logger for the whole stack

Spawn = Callable[..., None]  # start_soon(async_fn, *args) in the stack's nursery
SendFailed = Callable[[Any, str], None]  # (transaction, why) -> None


class Outbound:
    """Sends messages where the transaction layer says, over the transports."""

    def __init__(self, transports: Transports, *, spawn: Spawn, on_failed: SendFailed) -> None:
        self.transports = transports
        self._spawn = spawn
        self._on_failed = on_failed

    def transmit(self, event: Transmit) -> None:
        try:
            if isinstance(event.message, Response):
                self._send_response(event.data, event.message, event.destination,
                                    event.transaction)
            else:
                self.send_to_hop(event.data, event.destination)
        except TransportError as exc:
            log.debug("send failed: %s", exc)
            if event.transaction is not None and not event.transaction.terminated:
                self._on_failed(event.transaction, str(exc))

    def send_to_hop(self, data: bytes, hop: Any) -> None:
        """Sends over the hop's connection (a Hop or a Source), else to its address."""
        self.transports.send(data, hop.transport, hop.address, hop.port,
                             getattr(hop, "connection", None))

    def _send_response(self, data: bytes, response: Response, source: Source,
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
        else:
            self._spawn(self._connect_and_send, data, source.transport, host, port, transaction)

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
                self._on_failed(transaction, f"cannot send a response: {exc}")


class KeptConnections:
    """Connections dialogs (calls) use, with how many use each."""

    def __init__(self) -> None:
        self._uses: dict[Connection, int] = {}

    def keep(self, connection: Connection) -> None:
        self._uses[connection] = self._uses.get(connection, 0) + 1

    def release(self, connection: Connection) -> None:
        count = self._uses.get(connection, 0)
        if count > 1:
            self._uses[connection] = count - 1
        elif count:
            del self._uses[connection]

    def __contains__(self, connection: object) -> bool:
        return connection in self._uses

