"""The front door: a WebSocket server speaking JSON-RPC 2.0 to many clients.

The handshake is where policy lives: a browser page from an origin not in rpc.allowed_origins is
refused (this is what stops any web page from driving the user's phone), a wrong bearer token is
refused, and a client without one may connect but can do nothing but auth.login.
"""

from __future__ import annotations

import hmac
import logging
import socket
from collections.abc import Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, wrap_server_stream

from ..limits import RPC
from .connection import CLOSE_GOING_AWAY, MAX_IN_FLIGHT, Connection
from .dispatch import CallContext, Dispatcher
from .registry import Registry

log = logging.getLogger(__name__)

SEND_BUFFER_BYTES = 256 * 1024
HANDSHAKE_TIMEOUT = 10.0


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:7575' or '[::1]:0' -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


async def _open_listeners(listen: str) -> list[trio.SocketListener]:
    host, port = split_listen(listen)
    listeners = await trio.open_tcp_listeners(port, host=host)
    for listener in listeners:
        # Accepted sockets inherit this: a client that stops reading fills a small kernel
        # buffer quickly, so it is noticed (and dropped) while its backlog is still small.
        listener.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    return listeners


def _only_disconnects(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_disconnects(e) for e in exc.exceptions)
    return isinstance(exc, (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError,
                            ConnectionError))


def _header(request: WebSocketRequest, name: bytes) -> str | None:
    for key, value in request.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RpcServer:
    def __init__(self, service: Any, registry: Registry, token: str) -> None:
        self.service = service
        self.registry = registry
        self.dispatcher = Dispatcher(registry)
        self._token = token
        self.connections: dict[int, Connection] = {}
        self.url: str | None = None
        self._self_origins: set[str] = set()
        self.page_origins: set[str] = set()  # the web page's (sipd/web), set by the daemon
        self.on_url_change: Callable[[str], None] | None = None
        service.reads_live("rpc.allowed_origins", "rpc.max_message_bytes", "rpc.client_queue",
                           "rpc.client_queue_bytes", "rpc.max_batch")
        service.add_state("rpc", self.state)
        self._rebind_requests: trio.MemorySendChannel[str] | None = None
        self._refusals_logged_at = -float("inf")

    def _setting(self, key: str) -> Any:
        return self.service.settings.get(key)

    def state(self) -> dict[str, Any]:
        """The `rpc` section of system.state."""
        return {"url": self.url, "clients": len(self.connections),
                "in_flight": sum(c.in_flight for c in self.connections.values()),
                "max_in_flight": MAX_IN_FLIGHT}

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled. A change of rpc.listen moves the listener; connections that
        are open stay open."""
        listen = self._setting("rpc.listen")
        listeners = await _open_listeners(listen)
        self._rebind_requests, rebinds = trio.open_memory_channel[str](16)
        async with trio.open_nursery() as nursery:
            scope = await nursery.start(self._listen, listen, listeners, nursery)
            task_status.started(self.url)
            async for listen in rebinds:
                try:
                    listeners = await _open_listeners(listen)
                except OSError as exc:
                    log.error("cannot listen on %s (%s); still listening on %s", listen,
                              exc.strerror or exc, self.url)
                    continue
                scope.cancel()
                scope = await nursery.start(self._listen, listen, listeners, nursery)
                if self.on_url_change and self.url:
                    self.on_url_change(self.url)

    def rebind(self, listen: str) -> None:
        assert self._rebind_requests is not None, "rebind() before run()"
        self._rebind_requests.send_nowait(listen)

    async def _listen(self, listen: str, listeners: list[trio.SocketListener],
                      handler_nursery: trio.Nursery, *, task_status: Any) -> None:
        host, _ = split_listen(listen)
        bound = listeners[0].socket.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"ws://{shown}:{bound}/"
        self._self_origins = {f"http://{shown}:{bound}", f"https://{shown}:{bound}"}
        if host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("RPC listens on %s, not on loopback: anyone who can reach it and has "
                        "the token can drive this daemon", host)
        log.info("RPC listening on %s", self.url)
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await trio.serve_listeners(self._serve_stream, listeners,
                                       handler_nursery=handler_nursery)

    def _log_refusal(self) -> None:
        now = trio.current_time()
        if now - self._refusals_logged_at >= 10:  # a flood must not flood the log too
            self._refusals_logged_at = now
            budget = self.service.descriptors
            log.warning("refusing RPC connections: %d of %d file descriptors are open, the "
                        "rest are kept for files and workers (%d refused so far)",
                        budget.open_now(), budget.limit, budget.refused)

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None:  # not a browser: programs are stopped by the token instead
            return True
        allowed = set(self._setting("rpc.allowed_origins")) | self._self_origins | \
            self.page_origins
        return origin.rstrip("/") in {o.rstrip("/") for o in allowed}

    def token_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self._token.encode())

    async def _serve_stream(self, stream: trio.SocketStream) -> None:
        """One TCP connection, from handshake to close. Whatever a client does, and whatever
        goes wrong with it, ends here: the listener and the other clients go on."""
        if not self.service.descriptors.may_accept(RPC):
            self._log_refusal()
            await trio.aclose_forcefully(stream)
            return
        try:
            async with trio.open_nursery() as nursery:
                request = None
                with trio.move_on_after(HANDSHAKE_TIMEOUT):  # the handshake only
                    request = await wrap_server_stream(
                        nursery, stream, max_message_size=self._setting("rpc.max_message_bytes"))
                if request is not None:
                    await self._handle(request)
                nursery.cancel_scope.cancel()
        except Exception as exc:
            if _only_disconnects(exc):
                log.debug("a client went away abruptly: %s", exc)
            else:
                log.exception("an RPC connection failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _handle(self, request: WebSocketRequest) -> None:
        origin = _header(request, b"origin")
        if not self.origin_allowed(origin):
            log.warning("refused a WebSocket handshake from origin %s (not in "
                        "rpc.allowed_origins)", origin)
            await request.reject(403, body=f"origin {origin} is not allowed; add it to "
                                 "rpc.allowed_origins\n".encode())
            return
        authenticated = False
        authorization = _header(request, b"authorization")
        if authorization is not None:
            scheme, _, offered = authorization.partition(" ")
            if scheme.lower() != "bearer" or not self.token_matches(offered.strip()):
                await request.reject(401, body=b"wrong token; it is in rpc.json\n")
                return
            authenticated = True
        await self.serve(await request.accept(), authenticated)

    async def serve(self, ws: Any, authenticated: bool) -> None:
        """One accepted WebSocket, here or on the web page's server (sipd/web), until it
        closes."""
        connection = Connection(ws, self.service.bus, self._setting("rpc.client_queue"),
                                authenticated, self._setting("rpc.client_queue_bytes"))
        self.connections[connection.id] = connection
        log.debug("client %d connected from %s", connection.id, connection.remote)
        try:
            await connection.run(self._answer)
        finally:
            del self.connections[connection.id]
            log.debug("client %d left", connection.id)

    async def _answer(self, frame: str, connection: Connection) -> None:
        ctx = CallContext(self.service, connection, self.registry, self)
        reply = await self.dispatcher.handle_frame(frame, ctx)
        if reply is not None:
            await connection.send_reply(reply, ctx.after_reply)
        else:  # a notification: nothing is written, so nothing waits for it
            for callback in ctx.after_reply:
                callback()

    async def close_all(self, reason: str, timeout: float = 1.5) -> None:
        """Close every client with a reason, after flushing what it has queued (bounded)."""
        for connection in list(self.connections.values()):
            connection.close(CLOSE_GOING_AWAY, reason)
        with trio.move_on_after(timeout):
            while self.connections:  # noqa: ASYNC110 - polled once, at shutdown
                await trio.sleep(0.01)
