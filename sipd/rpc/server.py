"""The front door: a WebSocket server speaking JSON-RPC 2.0 to many clients.

The handshake is where policy lives: a browser page from an origin not in rpc.allowed_origins is
refused (this is what stops any web page from driving the user's phone), a wrong bearer token is
refused, and a client without one may connect but can do nothing but auth.login.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import trio
from trio_websocket import WebSocketRequest, serve_websocket

from .connection import CLOSE_GOING_AWAY, Connection
from .dispatch import CallContext, Dispatcher
from .registry import Registry

log = logging.getLogger(__name__)


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:7575' or '[::1]:0' -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


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

    def _setting(self, key: str) -> Any:
        return self.service.settings.get(key)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        host, port = split_listen(self._setting("rpc.listen"))
        async with trio.open_nursery() as nursery:
            server = await nursery.start(lambda task_status: serve_websocket(
                self._handle, host, port, ssl_context=None,
                handler_nursery=nursery,
                max_message_size=self._setting("rpc.max_message_bytes"),
                task_status=task_status))
            bound = server.port
            shown = f"[{host}]" if ":" in host else host
            self.url = f"ws://{shown}:{bound}/"
            self._self_origins = {f"http://{shown}:{bound}", f"https://{shown}:{bound}"}
            if host not in ("127.0.0.1", "::1", "localhost"):
                log.warning("RPC listens on %s, not on loopback: anyone who can reach it and "
                            "has the token can drive this daemon", host)
            log.info("RPC listening on %s", self.url)
            task_status.started(self.url)

    def _origin_allowed(self, origin: str | None) -> bool:
        if origin is None:  # not a browser: programs are stopped by the token instead
            return True
        allowed = set(self._setting("rpc.allowed_origins")) | self._self_origins
        return origin.rstrip("/") in {o.rstrip("/") for o in allowed}

    def token_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self._token.encode())

    async def _handle(self, request: WebSocketRequest) -> None:
        origin = _header(request, b"origin")
        if not self._origin_allowed(origin):
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
        ws = await request.accept()
        connection = Connection(ws, self.service.bus, self._setting("rpc.client_queue"),
                                authenticated)
        self.connections[connection.id] = connection
        log.debug("client %d connected from %s", connection.id, connection.remote)
        try:
            await connection.run(self._answer)
        except Exception:  # a bug must cost this client its connection, never the daemon
            log.exception("client %d: connection failed", connection.id)
        finally:
            del self.connections[connection.id]
            log.debug("client %d left", connection.id)

    async def _answer(self, frame: str, connection: Connection) -> None:
        ctx = CallContext(self.service, connection, self.registry, self)
        reply = await self.dispatcher.handle_frame(frame, ctx)
        if reply is not None:
            await connection.send_reply(reply)
        for callback in ctx.after_reply:
            callback()

    async def close_all(self, reason: str) -> None:
        """Flush what each client has queued (bounded), then close it with a reason."""
        async with trio.open_nursery() as nursery:
            for connection in list(self.connections.values()):
                nursery.start_soon(self._close_one, connection, reason)

    @staticmethod
    async def _close_one(connection: Connection, reason: str) -> None:
        await connection.drain(0.5)
        connection.close(CLOSE_GOING_AWAY, reason)
