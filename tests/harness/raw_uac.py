"""A raw SIP UAC on a plain UDP socket, for requests a sipd never sends (an INVITE without an
offer, an offer without audio)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from tests.harness.peer import DaemonPeer
from tests.harness.waits import EVENT_TIMEOUT


class RawUac:
    """A SIP UAC on a plain UDP socket: sends text, reads responses."""

    def __init__(self, sock: Any, port: int, peer_port: int) -> None:
        self.sock = sock
        self.port = port
        self.peer_port = peer_port
        self.call_id = f"{uuid.uuid4().hex}@127.0.0.1"
        self.tag = uuid.uuid4().hex[:8]

    def request(self, method: str, uri: str, cseq: int, *, to_tag: str | None = None,
                body: str = "", extra: str = "",
                content_type: str = "application/sdp") -> bytes:
        to = f"<sip:local@127.0.0.1:{self.peer_port}>" + (f";tag={to_tag}" if to_tag else "")
        head = (f"{method} {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1:{self.port}>;tag={self.tag}\r\n"
                f"To: {to}\r\nCall-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:raw@127.0.0.1:{self.port}>\r\n{extra}")
        if body:
            head += f"Content-Type: {content_type}\r\n"
        return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()

    async def send(self, data: bytes) -> None:
        await self.sock.sendto(data, ("127.0.0.1", self.peer_port))

    async def response(self, status: int, timeout: float = EVENT_TIMEOUT
                       ) -> tuple[dict[str, str], str]:
        """The headers (lower-case names, first value) and body of the next `status`."""
        with trio.fail_after(timeout):
            while True:
                data = (await self.sock.recv(65535)).decode()
                head, _, body = data.partition("\r\n\r\n")
                lines = head.split("\r\n")
                if not lines[0].startswith(f"SIP/2.0 {status} "):
                    continue
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers.setdefault(name.strip().lower(), value.strip())
                return headers, body


@asynccontextmanager
async def loopback_udp() -> AsyncIterator[tuple[Any, int]]:
    """A trio UDP socket on 127.0.0.1 and the port it got: what a raw SIP peer speaks from."""
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        yield sock, sock.getsockname()[1]


@asynccontextmanager
async def raw_uac(peer: DaemonPeer) -> AsyncIterator[RawUac]:
    async with loopback_udp() as (sock, port):
        yield RawUac(sock, port, peer.ports["udp"])

