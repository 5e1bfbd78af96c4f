"""An accepted ASGI WebSocket, shaped like the trio-websocket connection the RPC front door
reads and writes (get_message, send_message, aclose, remote, ConnectionClosed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from trio_websocket import CloseReason, ConnectionClosed

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CLOSE_NO_STATUS = 1005


class AsgiWebSocket:
    def __init__(self, receive: Receive, send: Send, remote: str) -> None:
        self._receive = receive
        self._send = send
        self.remote = remote
        self._closed: CloseReason | None = None

    @property
    def closed(self) -> CloseReason | None:
        return self._closed

    async def get_message(self) -> str | bytes:
        while self._closed is None:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                return text if text is not None else bytes(message.get("bytes") or b"")
            if kind == "websocket.disconnect":
                self._closed = CloseReason(int(message.get("code", CLOSE_NO_STATUS)), None)
        raise ConnectionClosed(self._closed)

    async def send_message(self, data: str | bytes) -> None:
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        if isinstance(data, str):
            data.encode()  # a lone surrogate raises here, as trio-websocket would
            await self._send({"type": "websocket.send", "text": data})
        else:
            await self._send({"type": "websocket.send", "bytes": data})

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if self._closed is not None:
            return
        self._closed = CloseReason(code, reason)
        await self._send({"type": "websocket.close", "code": code, "reason": reason or ""})
