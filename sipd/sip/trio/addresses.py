"""Our own address as a SipStack (sipd.sip.trio.stack) knows it: the bound one, the one the
kernel routes from toward a peer, and what peers saw in `received`/`rport` (RFC 3581) and
`alias` (RFC 5923). An object of its own because the UA asks these questions (what to put in a
Contact) apart from sending or receiving anything."""

from __future__ import annotations

import logging
import socket

from ..errors import SipParseError
from ..message import Request, Response
from .transport import DEFAULT_PORTS, STREAM_TRANSPORTS, Source, TargetLike, Transports

log = logging.getLogger("sipd.sip.trio.stack")  # one logger for the whole stack


class StackAddresses:
    """What we know of our own address: bound, routed, and as the peers see it."""

    def __init__(self, listen_address: str, transports: Transports) -> None:
        self.listen_address = listen_address
        self.transports = transports
        self._learned: dict[tuple[str, str, int], tuple[str, int]] = {}  # (transport, peer)
        self._learned_last: dict[str, tuple[str, int]] = {}  # transport -> as last seen
        self._routes: dict[str, str] = {}  # destination -> our local address toward it

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
        bound = self.listen_address
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
                address = str(probe.getsockname()[0])
        except OSError:
            address = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        self._routes[destination] = address
        return address

    def note_alias(self, request: Request, source: Source) -> None:
        """A request over a connection whose Via has `alias`: the peer is reached over it
        at its sent-by too (RFC 5923)."""
        via = request.top_via
        if via is not None and "alias" in via.params and source.connection is not None:
            port = via.port or DEFAULT_PORTS[source.transport]
            self.transports.add_alias(source.connection, source.address, port)

    def learn(self, response: Response, source: Source) -> None:
        """Notes our address as the peer saw it (received/rport of a response's top Via)."""
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
