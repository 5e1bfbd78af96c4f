"""An httpx transport whose connections leave from a fixed local port (xcap.local_port), for
networks whose firewalls allow the XCAP server only from a known source port.

    transport = bound_transport(verify=ctx, local_address=None, local_port=5060)
    httpx.AsyncClient(transport=transport, ...)

httpx and httpcore bind a connection's local address but never its port (trio.open_tcp_stream
takes no port), so the connections are made here, over httpcore's public network backend
interface: a socket with SO_REUSEADDR bound to the port, then connected. A port serves one
connection to a server at a time: the pool holds one, kept alive as long as the server lets
it. A new one from the same port to the same server can be refused by the kernel while the
last one is in TIME_WAIT (EADDRNOTAVAIL; Linux reuses it at once on loopback only): the
request then fails as a connection error saying so, and XcapClient's retries apply. Port 0
means no binding: httpx's own transport, any number of connections.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx
import trio

#: how long an idle connection from the fixed port is kept (a new one may meet TIME_WAIT)
KEEPALIVE = 120.0


def bound_transport(*, verify: bool | ssl.SSLContext, local_address: str | None,
                    local_port: int, max_connections: int) -> httpx.AsyncBaseTransport:
    """At most `max_connections` to the server (one from a fixed `local_port`)."""
    if not local_port:
        return httpx.AsyncHTTPTransport(
            verify=verify, local_address=local_address, trust_env=False,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections))
    if isinstance(verify, ssl.SSLContext):
        context = verify
    else:
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    pool = httpcore.AsyncConnectionPool(
        ssl_context=context, max_connections=1, keepalive_expiry=KEEPALIVE,
        network_backend=BoundBackend(local_address, local_port))
    return PoolTransport(pool)


class BoundBackend(httpcore.AsyncNetworkBackend):
    """TCP connections from (local_address, local_port)."""

    def __init__(self, local_address: str | None, local_port: int) -> None:
        self.local_address = local_address
        self.local_port = local_port

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        failures: list[str] = []
        with _mapped(trio.TooSlowError, httpcore.ConnectTimeout), \
                trio.fail_after(float("inf") if timeout is None else timeout):
            for family, kind, proto, _name, address in await trio.socket.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM):
                sock = trio.socket.socket(family, kind, proto)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    here = self.local_address or ("::" if family == socket.AF_INET6
                                                  else "0.0.0.0")
                    await sock.bind((here, self.local_port))
                    await sock.connect(address)
                except OSError as exc:
                    sock.close()
                    failures.append(f"from port {self.local_port} to {address[0]}:{port}: "
                                    f"{exc.strerror or exc}")
                    continue
                return _Stream(trio.SocketStream(sock))
        raise httpcore.ConnectError("; ".join(failures) or f"no address for {host}")

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(trio.TooSlowError, httpcore.ReadTimeout), \
                _mapped((trio.BrokenResourceError, trio.ClosedResourceError, OSError),
                        httpcore.ReadError), \
                trio.fail_after(float("inf") if timeout is None else timeout):
            data = bytes(await self._stream.receive_some(max_bytes))
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _mapped(trio.TooSlowError, httpcore.WriteTimeout), \
                _mapped((trio.BrokenResourceError, trio.ClosedResourceError, OSError),
                        httpcore.WriteError), \
                trio.fail_after(float("inf") if timeout is None else timeout):
            await self._stream.send_all(buffer)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        assert isinstance(self._stream, trio.SocketStream)
        tls = trio.SSLStream(self._stream, ssl_context, server_hostname=server_hostname,
                             https_compatible=True)
        try:
            with _mapped(trio.TooSlowError, httpcore.ConnectTimeout), \
                    _mapped((trio.BrokenResourceError, OSError), httpcore.ConnectError), \
                    trio.fail_after(float("inf") if timeout is None else timeout):
                await tls.do_handshake()
        except BaseException:
            await self.aclose()
            raise
        return _Stream(tls)

    def get_extra_info(self, info: str) -> Any:
        stream = self._stream
        sock = stream.transport_stream.socket if isinstance(stream, trio.SSLStream) \
            else stream.socket
        if info == "ssl_object" and isinstance(stream, trio.SSLStream):
            return stream._ssl_object  # as httpcore does
        if info == "client_addr":
            return sock.getsockname()
        if info == "server_addr":
            return sock.getpeername()
        if info == "socket":
            return sock
        if info == "is_readable":
            return sock.is_readable()
        return None


class PoolTransport(httpx.AsyncBaseTransport):
    """httpx over an httpcore connection pool of our making (httpx's own transport does not
    take a network backend)."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream,
            extensions=request.extensions)
        with _to_httpx(request):
            response = await self._pool.handle_async_request(core)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response.stream, request),
                              extensions=response.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _to_httpx(self._request):
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


@contextmanager
def _mapped(kinds: type[BaseException] | tuple[type[BaseException], ...],
            target: type[Exception]) -> Iterator[None]:
    """Raise `target` (from the original) for an exception of `kinds`."""
    try:
        yield
    except kinds as exc:
        raise target(str(exc) or type(exc).__name__) from exc


@contextmanager
def _to_httpx(request: httpx.Request) -> Iterator[None]:
    """httpcore's exceptions as httpx's of the same name (what XcapClient catches)."""
    try:
        yield
    except Exception as exc:
        if not type(exc).__module__.startswith("httpcore"):
            raise
        target = getattr(httpx, type(exc).__name__, httpx.TransportError)
        if not (isinstance(target, type) and issubclass(target, httpx.TransportError)):
            target = httpx.TransportError
        raise target(str(exc), request=request) from exc
