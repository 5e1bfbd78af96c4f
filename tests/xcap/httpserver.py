"""A tiny HTTP/1.1 server on 127.0.0.1 for the XCAP tests that need answers no packaged XCAP
server gives (hostile documents, 409 with an xcap-error document): trio + h11, one handler.

    async with serve_http(handler) as server:     # handler(request) -> Reply
        server.root                               # http://127.0.0.1:PORT/xcap-root
        server.requests                           # every Request it got
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import h11
import trio


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    #: the client's (address, port)
    peer: tuple[str, int] | None = None


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Server:
    port: int
    scheme: str = "http"
    requests: list[Request] = field(default_factory=list)

    @property
    def root(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/xcap-root"


Handler = Callable[[Request], Reply]


@asynccontextmanager
async def serve_http(handler: Handler,
                     tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    listeners: list[Any]
    if tls is None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
    else:
        listeners = await trio.open_ssl_over_tcp_listeners(0, tls, host="127.0.0.1")
        port = listeners[0].transport_listener.socket.getsockname()[1]
    server = Server(port, "https" if tls else "http")

    async def connection(stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER)
        async with stream:
            while True:
                request = await _read_request(conn, stream)
                if request is None:
                    return
                if isinstance(stream, trio.SocketStream):
                    request.peer = stream.socket.getpeername()[:2]
                server.requests.append(request)
                reply = handler(request)
                headers = [("Content-Length", str(len(reply.body))), *reply.headers]
                data = conn.send(h11.Response(status_code=reply.status, headers=headers))
                data += conn.send(h11.Data(data=reply.body)) if reply.body else b""
                data += conn.send(h11.EndOfMessage())
                await stream.send_all(data)
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()

    async def guarded(stream: trio.abc.Stream) -> None:
        try:
            await connection(stream)
        except (trio.BrokenResourceError, h11.RemoteProtocolError):
            pass  # e.g. a client that refused our certificate

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, guarded, listeners)
        yield server
        nursery.cancel_scope.cancel()


async def _read_request(conn: h11.Connection, stream: trio.abc.Stream) -> Request | None:
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(data)
            if not data and request is None:
                return None
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return Request(request.method.decode(), request.target.decode(),
                           {k.decode().lower(): v.decode() for k, v in request.headers}, body)
