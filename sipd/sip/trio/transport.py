"""The trio transports of SIP: UDP, TCP and TLS sockets, and the table of connections.

`Transports` binds the configured sockets (port 0 picks a free port; `ports` says which),
receives messages and hands them to `deliver(message, source)` (a sync callback: the stack),
and sends bytes where it is told. What it does by itself, below any transaction:

- a datagram that does not parse is answered with its error response (400, 505...) sent to
  the address it came from, or dropped when it cannot be answered; a datagram over
  `max_message_bytes` is dropped (answered 513 when its head is readable);
- stream connections (transport_stream.Connection) are kept in a table by (transport,
  address, port): the peer address of an accepted connection, the target of one we opened,
  and the `alias` sent-by of a peer's Via (RFC 5923), so responses and later requests to a
  peer go over the connection it already has with us (RFC 3261 §18.2.2);
- connections without traffic for `idle_timeout` are closed, unless `in_use(connection)`
  says a transaction still needs it; outgoing ones can be pinged with CRLFCRLF;
- connections peers open are bounded: at most `max_connections_per_address` from one address
  and `max_connections` in all, and only while `may_accept()` (the daemon's descriptor budget)
  agrees. When full, a new connection takes the place of the oldest one that has not yet
  completed a message (a peer that is doing something beats one that only holds a
  descriptor); with none such, and always past the per-address cap, it is closed at once. Each
  must complete a message within `message_timeout` (sipd.sip.trio.stream);
- the UDP socket asks for a `udp_receive_buffer` large enough for bursts, and `state()` says
  what the kernel granted and how many datagrams it dropped for want of room.

Sockets get TCP_NODELAY: without it every request/response step waits for a delayed ACK.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import trio

from ..builder import error_response
from ..errors import SipParseError
from ..message import AnyMessage, find_head_end, parse_datagram, parse_head
from .tls import TlsConfig, client_context, describe_tls_failure, server_context
from .stream import Connection, ConnectionClosed

log = logging.getLogger("sipd.sip.trio.transport")

TRANSPORTS = ("udp", "tcp", "tls")
STREAM_TRANSPORTS = frozenset({"tcp", "tls"})
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


class TransportError(Exception):
    """A message could not be sent: transport not enabled, connection refused or lost, TLS
    handshake or certificate failure, network unreachable. The text says which and where."""


class TargetLike(Protocol):
    """What the stack needs of a destination (sipd.sip.trio.locator.Target has it)."""

    transport: str  # "udp", "tcp" or "tls"
    host: str  # the name the address was found for
    address: str  # IP address
    port: int
    # Optional: `server_name`, the name TLS sends (SNI) and verifies (RFC 5922 §4; `host`
    # when absent); `connection`, a connection to use while it lives (a Source has one).


@dataclass(frozen=True, eq=False)
class Source:
    """Where a message came from: the peer's address and, for TCP/TLS, the connection.
    Usable as a target: a request sent to it goes back over that connection if it lives."""

    transport: str
    address: str
    port: int
    connection: Connection | None = None

    @property
    def host(self) -> str:
        return self.connection.server_name or self.address if self.connection else self.address

    def __repr__(self) -> str:
        return f"<Source {self.transport} {self.address}:{self.port}>"


@dataclass
class TransportSettings:
    listen_address: str = "0.0.0.0"
    ports: dict[str, int] | None = None  # transport -> port to bind (0: pick one)
    transports: tuple[str, ...] = TRANSPORTS
    max_message_bytes: int = 65535
    tls: TlsConfig = TlsConfig()
    idle_timeout: float = 600.0
    keepalive_interval: float | None = None  # CRLFCRLF on our outgoing connections
    connect_timeout: float = 10.0
    max_connections: int = 1000  # connections peers opened, in all
    max_connections_per_address: int = 100  # ... from one address
    message_timeout: float = 30.0  # to complete a message on a connection a peer opened
    udp_receive_buffer: int = 2 * 1024 * 1024  # SO_RCVBUF asked for (0: the system's)


REFUSALS_LOGGED_EVERY = 10.0  # seconds: a flood must not flood the log too


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


class Transports:
    def __init__(self, settings: TransportSettings,
                 deliver: Callable[[AnyMessage, Source], None],
                 *, in_use: Callable[[Connection], bool] = lambda c: False,
                 on_connection_closed: Callable[[Connection], None] = lambda c: None,
                 may_accept: Callable[[], bool] = lambda: True) -> None:
        for name in settings.transports:
            if name not in TRANSPORTS:
                raise ValueError(f"unknown transport {name!r}; known: {', '.join(TRANSPORTS)}")
        self.settings = settings
        self.deliver = deliver
        self.in_use = in_use
        self.on_connection_closed = on_connection_closed
        self.may_accept = may_accept
        self.enabled = tuple(dict.fromkeys(settings.transports))
        self.ports: dict[str, int] = {}
        self._udp: socket.socket | None = None
        self._listeners: dict[str, trio.SocketListener] = {}
        self._client_tls: ssl.SSLContext | None = None
        self._server_tls: ssl.SSLContext | None = None
        self._connections: dict[tuple[str, str, int], Connection] = {}
        self._connecting: dict[tuple[str, str, int], trio.Event] = {}
        self._nursery: trio.Nursery | None = None
        self._inbound: dict[str, int] = {}  # peer address -> connections it opened to us
        self._inbound_total = 0
        self._unproven: dict[Connection, None] = {}  # inbound, no message yet: oldest first
        self.refused = 0  # connections closed at once: over a cap or out of descriptors
        self.replaced = 0  # connections closed to make room (they had sent no message)
        self._refusals_logged_at = -math.inf
        family = socket.AF_INET6 if ":" in settings.listen_address else socket.AF_INET
        self.family = family

    # -- lifecycle ---------------------------------------------------------------------------
    def bind(self) -> None:
        """Binds every enabled transport (raises OSError with the address when one fails)."""
        wanted = dict(self.settings.ports or {})
        address = self.settings.listen_address
        if "tls" in self.enabled:
            self._client_tls = client_context(self.settings.tls)
            self._server_tls = server_context(self.settings.tls)
        try:
            if "udp" in self.enabled:
                self._udp = self._bind_udp(address, wanted.get("udp", 0))
                self.ports["udp"] = self._udp.getsockname()[1]
            if "tcp" in self.enabled:
                port = wanted.get("tcp", 0)
                if port == 0 and "udp" in self.ports:
                    # One number for UDP and TCP, like 5060, when it is free.
                    try:
                        self._listeners["tcp"] = self._listen(address, self.ports["udp"])
                    except OSError:
                        pass
                if "tcp" not in self._listeners:
                    self._listeners["tcp"] = self._listen(address, port)
            if "tls" in self.enabled:
                if self._server_tls is None:
                    log.warning("no TLS certificate configured: not listening for SIP over TLS "
                                "(outgoing TLS works)")
                else:
                    self._listeners["tls"] = self._listen(address, wanted.get("tls", 0))
        except BaseException:
            self.close_sockets()
            raise
        for name, listener in self._listeners.items():
            self.ports[name] = listener.socket.getsockname()[1]

    def _bind_udp(self, address: str, port: int) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot bind SIP UDP to {address}:{port}: "
                                     f"{exc.strerror}") from exc
        _size_receive_buffer(sock, self.settings.udp_receive_buffer)
        return sock

    def _listen(self, address: str, port: int) -> trio.SocketListener:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot listen for SIP over TCP on {address}:{port}: "
                                     f"{exc.strerror}") from exc
        return trio.SocketListener(trio.socket.from_stdlib_socket(sock))

    def state(self) -> dict[str, Any]:
        """What system.state shows of the transports: connections and their caps, and what
        the kernel granted and dropped on the UDP socket."""
        settings = self.settings
        udp: dict[str, Any] | None = None
        if self._udp is not None and self._udp.fileno() >= 0:
            udp = {"receive_buffer": self._udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                   "drops": udp_drops(self._udp)}
        return {
            "connections": {
                "open": len(self.connections), "inbound": self._inbound_total,
                "max": settings.max_connections,
                "max_per_address": settings.max_connections_per_address,
                "refused": self.refused, "replaced": self.replaced,
            },
            "udp": udp,
        }

    def close_sockets(self) -> None:
        if self._udp is not None:
            self._udp.close()
        for listener in self._listeners.values():
            listener.socket.close()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Serves until cancelled (binds first if `bind()` was not called)."""
        if not self.ports:
            self.bind()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._udp is not None:
                    nursery.start_soon(self._udp_loop)
                for name, listener in self._listeners.items():
                    nursery.start_soon(self._accept_loop, name, listener)
                nursery.start_soon(self._idle_loop)
                task_status.started()
        finally:
            self._nursery = None
            self.close_sockets()

    # -- UDP ---------------------------------------------------------------------------------
    async def _udp_loop(self) -> None:
        sock = self._udp
        assert sock is not None
        limit = self.settings.max_message_bytes
        while True:
            await trio.lowlevel.wait_readable(sock)
            for _ in range(64):  # drain a burst, then let other tasks run
                try:
                    data, addr = sock.recvfrom(limit + 1)
                except BlockingIOError:
                    break
                except OSError as exc:  # ICMP errors reported on the socket
                    log.debug("UDP receive error: %r", exc)
                    continue
                try:
                    self._on_datagram(data, addr[0], addr[1], limit)
                except Exception:  # noqa: BLE001 - the loop must survive any message
                    log.exception("error handling a datagram from %s:%s", addr[0], addr[1])
            await trio.lowlevel.checkpoint()

    def _on_datagram(self, data: bytes, host: str, port: int, limit: int) -> None:
        if len(data) > limit:
            log.debug("datagram from %s:%d over %d octets dropped", host, port, limit)
            self._answer_oversized(data, host, port, limit)
            return
        try:
            message = parse_datagram(data)
        except SipParseError as exc:
            log.debug("malformed datagram from %s:%d: %s", host, port, exc.detail)
            response = error_response(exc)
            if response is not None:
                self.send_datagram(response.to_bytes(), host, port)
            return
        self.deliver(message, Source("udp", host, port))

    def _answer_oversized(self, data: bytes, host: str, port: int, limit: int) -> None:
        data = data.lstrip(b"\r\n")
        end = find_head_end(data)
        if end is None:
            return
        head = parse_head(data[:end[0]])
        if head.error is not None:
            return
        error = head.fail(SipParseError(f"message over {limit} octets", status=513))
        response = error_response(error)
        if response is not None:
            self.send_datagram(response.to_bytes(), host, port)

    def send_datagram(self, data: bytes, address: str, port: int) -> None:
        """Sends one datagram; raises TransportError when the network refuses it. A full
        socket buffer drops it silently: UDP is lossy, retransmissions cover it."""
        if self._udp is None:
            raise TransportError("UDP is not enabled")
        try:
            self._udp.sendto(data, (address, port))
        except BlockingIOError:
            log.debug("UDP send buffer full; datagram to %s:%d dropped", address, port)
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise TransportError(f"message of {len(data)} octets too large for UDP "
                                     f"to {address}:{port}") from exc
            raise TransportError(f"cannot send over UDP to {address}:{port}: "
                                 f"{exc.strerror or exc}") from exc

    # -- streams -----------------------------------------------------------------------------
    def find_connection(self, transport: str, address: str, port: int) -> Connection | None:
        connection = self._connections.get((transport, address, port))
        return connection if connection is not None and not connection.closed else None

    @property
    def connections(self) -> list[Connection]:
        return list({id(c): c for c in self._connections.values()}.values())

    def add_alias(self, connection: Connection, address: str, port: int) -> None:
        """Another (address, port) the peer of `connection` is reached at (RFC 5923)."""
        key = (connection.transport, address, port)
        if self._connections.get(key) is not connection and not connection.closed:
            self._connections[key] = connection
            connection.keys.add(key)

    async def connect(self, transport: str, address: str, port: int,
                      server_name: str | None = None) -> Connection:
        """The live connection to (transport, address, port), opened if there is none.
        Raises TransportError with the reason (refused, timed out, TLS verification...)."""
        if transport not in STREAM_TRANSPORTS:
            raise ValueError(f"{transport} is not a stream transport")
        if transport not in self.enabled:
            raise TransportError(f"SIP over {transport.upper()} is not enabled")
        key = (transport, address, port)
        while True:
            connection = self.find_connection(*key)
            if connection is not None:
                return connection
            pending = self._connecting.get(key)
            if pending is None:
                break
            await pending.wait()  # someone else is connecting there: share the result
        done = self._connecting[key] = trio.Event()
        try:
            stream, local = await self._open_stream(transport, address, port,
                                                    server_name or address)
        finally:
            del self._connecting[key]
            done.set()
        connection = self._adopt(transport, stream, (address, port), local, outgoing=True,
                                 server_name=server_name or address)
        return connection

    async def _open_stream(self, transport: str, address: str, port: int,
                           server_name: str) -> tuple[trio.abc.Stream, tuple[str, int]]:
        where = f"{transport.upper()} {address}:{port}"
        timeout = self.settings.connect_timeout
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        stream: trio.abc.Stream | None = None
        try:
            with trio.fail_after(timeout):
                try:
                    await sock.connect((address, port))
                except OSError as exc:
                    raise TransportError(f"cannot connect to {where}: "
                                         f"{exc.strerror or exc}") from exc
                stream = tcp = trio.SocketStream(sock)
                _set_nodelay(sock)
                local = sock.getsockname()[:2]
                if transport == "tls":
                    assert self._client_tls is not None
                    stream = trio.SSLStream(tcp, self._client_tls, server_hostname=server_name)
                    try:
                        await stream.do_handshake()
                    except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
                        raise TransportError(describe_tls_failure(
                            exc, host=server_name, address=address, port=port)) from exc
        except trio.TooSlowError:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            else:
                sock.close()
            raise TransportError(f"connecting to {where} timed out after {timeout:g} s") from None
        except BaseException:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            else:
                sock.close()
            raise
        return stream, (local[0], local[1])

    async def _accept_loop(self, transport: str, listener: trio.SocketListener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # out of descriptors, say: wait and go on
                log.warning("accepting a SIP %s connection failed: %s", transport.upper(), exc)
                await trio.sleep(0.5)
                continue
            assert self._nursery is not None
            self._nursery.start_soon(self._serve_accepted, transport, stream)

    async def _serve_accepted(self, transport: str, tcp: trio.SocketStream) -> None:
        try:
            remote = tcp.socket.getpeername()[:2]
            local = tcp.socket.getsockname()[:2]
        except OSError:
            await trio.aclose_forcefully(tcp)
            return
        address = remote[0]
        if not self._admit(transport, address):
            await trio.aclose_forcefully(tcp)
            return
        self._inbound[address] = self._inbound.get(address, 0) + 1
        self._inbound_total += 1
        try:
            await self._serve(transport, tcp, (remote[0], remote[1]), (local[0], local[1]))
        except Exception:  # noqa: BLE001 - one connection's trouble never stops the others
            log.exception("error serving a SIP %s connection", transport.upper())
            await trio.aclose_forcefully(tcp)
        finally:
            self._inbound_total -= 1
            left = self._inbound[address] - 1
            if left:
                self._inbound[address] = left
            else:
                del self._inbound[address]

    def _admit(self, transport: str, address: str) -> bool:
        """Whether a connection `address` just opened may stay (see the module docstring)."""
        settings = self.settings
        if self._inbound.get(address, 0) >= settings.max_connections_per_address:
            self._refuse(transport, f"{address} has {settings.max_connections_per_address} "
                                    f"open (sip.max_connections_per_address)")
            return False
        if self._inbound_total < settings.max_connections and self.may_accept():
            return True
        room = self._oldest_unproven()
        if room is None:
            why = (f"{self._inbound_total} open (sip.max_connections)"
                   if self._inbound_total >= settings.max_connections
                   else "file descriptors are kept for RPC and the daemon's own files")
            self._refuse(transport, why)
            return False
        log.debug("%r has sent no message: closed to make room", room)
        self._unproven.pop(room, None)
        room.abort()
        self.replaced += 1
        return True

    def _oldest_unproven(self) -> Connection | None:
        for connection in list(self._unproven):
            if connection.closed or connection.messages:
                del self._unproven[connection]
                continue
            return connection
        return None

    def _refuse(self, transport: str, why: str) -> None:
        self.refused += 1
        now = trio.current_time()
        if now - self._refusals_logged_at >= REFUSALS_LOGGED_EVERY:
            self._refusals_logged_at = now
            log.warning("refusing SIP %s connections: %s (%d refused so far)",
                        transport.upper(), why, self.refused)

    async def _serve(self, transport: str, tcp: trio.SocketStream, remote: tuple[str, int],
                     local: tuple[str, int]) -> None:
        _set_nodelay(tcp.socket)
        stream: trio.abc.Stream = tcp
        if transport == "tls":
            assert self._server_tls is not None
            stream = trio.SSLStream(tcp, self._server_tls, server_side=True)
            try:
                with trio.fail_after(self.settings.connect_timeout):
                    await stream.do_handshake()
            except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError,
                    ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake from %s:%d failed: %r", remote[0], remote[1], exc)
                await trio.aclose_forcefully(stream)
                return
        connection = self._adopt(transport, stream, remote, local, outgoing=False)
        self._unproven[connection] = None
        await connection.wait_closed()

    def _adopt(self, transport: str, stream: trio.abc.Stream, remote: tuple[str, int],
               local: tuple[str, int], *, outgoing: bool,
               server_name: str | None = None) -> Connection:
        connection = Connection(
            transport, stream, remote=remote, local=local, outgoing=outgoing,
            max_message_size=self.settings.max_message_bytes, deliver=self._deliver_streamed,
            on_closed=self._forget, ping_interval=self.settings.keepalive_interval,
            server_name=server_name,
            message_timeout=None if outgoing else self.settings.message_timeout or None)
        key = (transport, remote[0], remote[1])
        self._connections[key] = connection
        connection.keys.add(key)
        log.debug("%r open (local %s:%d)", connection, local[0], local[1])
        if self._nursery is None:
            raise TransportError("the SIP transports are not running")
        self._nursery.start_soon(connection.run)
        return connection

    def _deliver_streamed(self, message: AnyMessage, connection: Connection) -> None:
        self.deliver(message, Source(connection.transport, connection.remote[0],
                                     connection.remote[1], connection))

    def _forget(self, connection: Connection) -> None:
        self._unproven.pop(connection, None)
        for key in connection.keys:
            if self._connections.get(key) is connection:
                del self._connections[key]
        try:
            self.on_connection_closed(connection)
        except Exception:  # noqa: BLE001
            log.exception("error after %r closed", connection)

    async def _idle_loop(self) -> None:
        timeout = self.settings.idle_timeout
        if not timeout or math.isinf(timeout):
            return
        while True:
            await trio.sleep(max(0.05, min(timeout / 4, 30.0)))
            now = trio.current_time()
            for connection in self.connections:
                if (not connection.closed and now - connection.last_activity > timeout
                        and not self.in_use(connection)):
                    log.debug("%r idle for %.0f s: closing", connection,
                              now - connection.last_activity)
                    connection.close()

    # -- sending where told ------------------------------------------------------------------
    def send(self, data: bytes, transport: str, address: str, port: int,
             connection: Connection | None = None) -> None:
        """Sends over `connection` when it lives, else over the table's connection to the
        address (streams) or as a datagram. Raises TransportError (no connection: use
        `connect` first; the stack does)."""
        if transport == "udp":
            self.send_datagram(data, address, port)
            return
        if connection is None or connection.closed:
            connection = self.find_connection(transport, address, port)
        if connection is None:
            raise TransportError(f"no {transport.upper()} connection to {address}:{port}")
        try:
            connection.send(data)
        except ConnectionClosed as exc:
            raise TransportError(str(exc)) from exc


def _size_receive_buffer(sock: socket.socket, size: int) -> None:
    """Asks for `size` octets of receive buffer; the kernel caps SO_RCVBUF at
    net.core.rmem_max, which SO_RCVBUFFORCE may pass (with CAP_NET_ADMIN)."""
    if size <= 0:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as exc:
        log.warning("cannot size the SIP UDP receive buffer: %s", exc)
        return
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if granted >= size:  # Linux reports twice what was asked: its bookkeeping included
        return
    force = getattr(socket, "SO_RCVBUFFORCE", 33)
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    except OSError:
        pass
    if granted < size:
        log.warning("the SIP UDP receive buffer is %d octets, not the %d asked for "
                    "(sip.udp_receive_buffer): raise net.core.rmem_max to allow it",
                    granted, size)


def udp_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped on `sock` for want of buffer room: the `drops` column of
    /proc/net/udp (or udp6), found by the socket's inode. None where there is no such file."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name) as table:
                next(table, None)  # the column titles
                for line in table:
                    fields = line.split()
                    if len(fields) > 12 and fields[9] == inode:
                        return int(fields[-1])
        except (OSError, ValueError):
            continue
    return None


def _set_nodelay(sock: Any) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # not TCP (a test's socketpair)
        pass
