"""A raw file-transfer peer for the tests: SIP written by hand on a UDP socket and MSRP from
sipd's MSRP core set up as a peer that behaves as some other implementations do (it answers
every chunk 200 but never confirms the file with a success report).

    async with RawUas.bound() as uas:
        await daemon.call("files.send", ..., to=uas.uri)
        invite = await uas.invite()                 # the request, its SDP's attributes
        ...
        await uas.answer(invite, msrp_path)         # 200 with a recvonly answer, then ACK
        await uas.bye(invite)                       # ends the session (waits for its 200)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from tests.harness.raw_uac import loopback_udp
from tests.harness.waits import EVENT_TIMEOUT


@dataclass
class Request:
    method: str
    uri: str
    headers: list[tuple[str, str]]
    body: str
    source: tuple[str, int]
    attributes: dict[str, str] = field(default_factory=dict)  # the SDP's a= lines, first of each

    def header(self, name: str) -> str:
        return next(v for n, v in self.headers if n.lower() == name.lower())

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


def parse_request(data: bytes, source: tuple[str, int]) -> Request | None:
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0":
        return None  # a response
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    attributes: dict[str, str] = {}
    for line in body.splitlines():
        if line.startswith("a="):
            name, _, value = line[2:].partition(":")
            attributes.setdefault(name, value)
    return Request(parts[0], parts[1], headers, body, source, attributes)


class RawUas:
    def __init__(self, sock: Any, port: int) -> None:
        self.sock = sock
        self.port = port
        self.tag = uuid.uuid4().hex[:8]
        self.uri = f"sip:raw@127.0.0.1:{port}"
        self.requests: list[Request] = []

    @classmethod
    @asynccontextmanager
    async def bound(cls) -> AsyncIterator[RawUas]:
        async with loopback_udp() as (sock, port):
            yield cls(sock, port)

    async def _next(self, method: str | None = None, status: int | None = None,
                    timeout: float = EVENT_TIMEOUT) -> tuple[Request | None, str]:
        with trio.fail_after(timeout):
            while True:
                data, source = await self.sock.recvfrom(65535)
                request = parse_request(data, source)
                if request is None:
                    text = data.decode(errors="replace")
                    if status is not None and text.startswith(f"SIP/2.0 {status} "):
                        return None, text
                    continue
                if request.method == "BYE" and method != "BYE":
                    await self.respond(request, 200, "OK")
                    continue
                if method is not None and request.method == method:
                    return request, ""

    async def invite(self, timeout: float = EVENT_TIMEOUT) -> Request:
        request, _ = await self._next("INVITE", timeout=timeout)
        assert request is not None
        return request

    async def respond(self, request: Request, code: int, phrase: str, body: str = "") -> None:
        to = request.header("To")
        if ";tag=" not in to:
            to += f";tag={self.tag}"
        lines = [f"SIP/2.0 {code} {phrase}"]
        lines += [f"Via: {via}" for via in request.all("Via")]
        lines += [f"From: {request.header('From')}", f"To: {to}",
                  f"Call-ID: {request.header('Call-ID')}", f"CSeq: {request.header('CSeq')}",
                  f"Contact: <{self.uri}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        await self.sock.sendto(data, request.source)

    async def answer(self, invite: Request, sdp: str) -> None:
        """200 with `sdp`, sent again until the ACK comes."""
        for _ in range(10):
            await self.respond(invite, 200, "OK", sdp)
            with trio.move_on_after(0.5):
                await self._next("ACK")
                return
        raise AssertionError("no ACK for our 200")

    async def bye(self, invite: Request) -> None:
        contact = re.search(r"<([^>]+)>", invite.header("Contact"))
        assert contact is not None
        their_from = invite.header("From")
        lines = [f"BYE {contact.group(1)} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex}",
                 "Max-Forwards: 70", f"From: {invite.header('To')};tag={self.tag}",
                 f"To: {their_from}", f"Call-ID: {invite.header('Call-ID')}",
                 "CSeq: 1 BYE", "Content-Length: 0"]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        await self.sock.sendto(data, invite.source)
        await self._next(status=200)

    async def serve_byes(self) -> None:
        """Answers what comes (a BYE 200) until cancelled."""
        while True:
            await self._next("never", timeout=3600)


def file_answer(invite: Request, msrp_uri: str, port: int) -> str:
    """A recvonly answer to a pushed file's offer, MSRP over TCP, passive (sipd connects)."""
    attributes = invite.attributes
    return ("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=message {port} TCP/MSRP *\r\na=accept-types:*\r\na=path:{msrp_uri}\r\n"
            "a=setup:passive\r\na=recvonly\r\n"
            f"a=file-selector:{attributes['file-selector']}\r\n"
            f"a=file-transfer-id:{attributes['file-transfer-id']}\r\n")
