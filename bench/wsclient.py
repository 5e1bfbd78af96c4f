"""A lean WebSocket client for the benchmarks: text messages only, no extensions, one task.

trio-websocket runs a reader task per connection and hands each message to the caller through
a channel, which is right for applications but makes a client process with 100 connections
slower than the server it measures. This client reads its socket in the caller's task, so the
benchmark measures the servers. It speaks RFC 6455 as far as the benchmarks need: the opening
handshake, masked text frames out, unmasked frames in (text, continuation, ping, close).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import trio

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 16 * 1024 * 1024
MAX_HEADER = 64 * 1024
RECEIVE_SIZE = 65536

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class ConnectionClosed(Exception):
    pass


class HandshakeError(Exception):
    pass


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    return header + key + _mask(payload, key)


class LeanWebSocket:
    def __init__(self, stream: trio.SocketStream, buffered: bytes) -> None:
        self.stream = stream
        self._buffer = bytearray(buffered)

    async def send_message(self, text: str) -> None:
        await self.stream.send_all(encode_frame(OP_TEXT, text.encode()))

    async def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            data = await self.stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise ConnectionClosed("the server closed the TCP connection")
            self._buffer += data

    async def _frame(self) -> tuple[bool, int, bytes]:
        await self._fill(2)
        first, second = self._buffer[0], self._buffer[1]
        if second & 0x80:
            raise ConnectionClosed("the server sent a masked frame")
        length, offset = second & 0x7F, 2
        if length == 126:
            await self._fill(4)
            length, offset = struct.unpack_from("!H", self._buffer, 2)[0], 4
        elif length == 127:
            await self._fill(10)
            length, offset = struct.unpack_from("!Q", self._buffer, 2)[0], 10
        if length > MAX_MESSAGE:
            raise ConnectionClosed(f"a frame of {length} bytes")
        await self._fill(offset + length)
        payload = bytes(self._buffer[offset:offset + length])
        del self._buffer[:offset + length]
        return bool(first & 0x80), first & 0x0F, payload

    async def get_message(self) -> str:
        parts: list[bytes] = []
        for _ in range(1_000_000):  # bounded: control frames and fragments of one message
            final, opcode, payload = await self._frame()
            if opcode == OP_PING:
                await self.stream.send_all(encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                reason = payload[2:].decode(errors="replace")
                raise ConnectionClosed(f"closed by the server: code {code} {reason}".rstrip())
            elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                parts.append(payload)
                if sum(map(len, parts)) > MAX_MESSAGE:
                    raise ConnectionClosed("message too large")
                if final:
                    return b"".join(parts).decode()
        raise ConnectionClosed("too many frames for one message")

    async def aclose(self) -> None:
        try:
            with trio.move_on_after(1):
                await self.stream.send_all(encode_frame(OP_CLOSE, struct.pack("!H", 1000)))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        await self.stream.aclose()


@asynccontextmanager
async def open_lean_websocket(url: str, extra_headers: list[tuple[str, str]] | None = None,
                              ) -> AsyncIterator[LeanWebSocket]:
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        raise HandshakeError(f"only ws:// URLs: {url}")
    port = parts.port or 80
    stream = await trio.open_tcp_stream(parts.hostname, port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        lines += [f"{name}: {value}" for name, value in extra_headers or []]
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data or len(response) > MAX_HEADER:
                raise HandshakeError(f"no handshake response: {response[:200]!r}")
            response += data
        head, _, rest = response.partition(b"\r\n\r\n")
        status, *header_lines = head.decode("latin-1").split("\r\n")
        if status.split(" ", 2)[1:2] != ["101"]:
            raise HandshakeError(f"handshake refused: {status}")
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(":") for line in header_lines)}
        expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise HandshakeError("wrong Sec-WebSocket-Accept")
        ws = LeanWebSocket(stream, rest)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    try:
        yield ws
    finally:
        with trio.CancelScope(shield=True):
            await ws.aclose()


def opener(kind: str) -> Any:
    """`lean` (this module) or `trio-websocket`: a function (url, extra_headers) -> async
    context manager of a connection with send_message / get_message."""
    if kind == "lean":
        return open_lean_websocket
    if kind == "trio-websocket":
        from trio_websocket import open_websocket_url

        def open_trio_websocket(url: str,
                                extra_headers: list[tuple[str, str]] | None = None) -> Any:
            encoded = [(name.encode(), value.encode()) for name, value in extra_headers or []]
            return open_websocket_url(url, extra_headers=encoded)
        return open_trio_websocket
    raise ValueError(f"unknown client {kind!r}; lean or trio-websocket")


CLIENTS = ("lean", "trio-websocket")
