"""A conformance peer for sipd's MSRP: frames written by hand from RFC 4975's grammar (§9) and
read by a small reader of its own (no sipd parser or builder), so the probe does not share
sipd's reading of the RFC. The SIP side is the Blink-like raw UAC of tests/sessions.

    frame = send("tid1", to, frm, body=b"hi", byte_range="1-2/2", headers=[...])
    async with Wire.open(host, port) as wire:
        await wire.write(frame)
        response = await wire.response("tid1")
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.harness.waits import EVENT_TIMEOUT
from tests.peers.certs import TestCA

CRLF = "\r\n"


def send(tid: str, to_path: str, from_path: str, *, body: bytes | None = None,
         byte_range: str | None = None, message_id: str = "", flag: str = "$",
         headers: Sequence[str] = (), content_type: str | None = None) -> bytes:
    """A SEND request (RFC 4975 §7.1.1): To-Path, From-Path, Message-ID, Byte-Range, then
    `headers` as given (written lines, so their case and spacing are the test's), then the
    Content-Type and the body (none: no blank line, the end-line right after the headers)."""
    lines = [f"MSRP {tid} SEND", f"To-Path: {to_path}", f"From-Path: {from_path}"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    if byte_range is not None:
        lines.append(f"Byte-Range: {byte_range}")
    lines += list(headers)
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    head = CRLF.join(lines) + CRLF
    if body is None:
        return (head + f"-------{tid}{flag}{CRLF}").encode()
    return (head + CRLF).encode() + body + f"{CRLF}-------{tid}{flag}{CRLF}".encode()


def response(tid: str, code: int, comment: str | None, to_path: str, from_path: str) -> bytes:
    """A transaction response (RFC 4975 §7.2): the comment is optional in the grammar."""
    status = f"MSRP {tid} {code}" + (f" {comment}" if comment is not None else "")
    return CRLF.join([status, f"To-Path: {to_path}", f"From-Path: {from_path}",
                      f"-------{tid}$", ""]).encode()


@dataclass
class Frame:
    """One frame from sipd: a request (`method`) or a response (`code`, `comment`)."""

    tid: str
    method: str | None
    code: int | None
    comment: str | None
    headers: list[tuple[str, str]]
    body: bytes | None
    flag: str
    raw: bytes = field(repr=False, default=b"")

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


START = re.compile(rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) ([^\r\n]*)\r\n")


def read_frame(buffer: bytes) -> tuple[Frame, int] | None:
    """The first whole frame in `buffer` and the bytes it took, or None if more must come."""
    start = START.match(buffer)
    if start is None:
        if b"\r\n" in buffer:
            raise AssertionError(f"sipd sent a bad start line: {buffer[:200]!r}")
        return None
    tid = start.group(1).decode()
    end_line = re.compile(rb"(?:^|\r\n)-------" + re.escape(start.group(1)) + rb"([$+#])\r\n")
    found = end_line.search(buffer, start.end() - 2)
    if found is None:
        return None
    head_and_body = buffer[start.end():found.start()]
    head, separator, body = head_and_body.partition(b"\r\n\r\n")
    if not separator and head.endswith(b"\r\n"):
        head = head[:-2]
    headers = []
    for line in head.decode().split("\r\n") if head else []:
        name, colon, value = line.partition(": ")
        assert colon, f"sipd sent a header line without ': ': {line!r}"
        headers.append((name, value))
    rest = start.group(2).decode()
    word, _, comment = rest.partition(" ")
    frame = Frame(tid, None, None, None, headers, body if separator else None,
                  found.group(1).decode(), buffer[:found.end()])
    if word.isdigit() and len(word) == 3:
        frame.code = int(word)
        frame.comment = comment or None
    else:
        assert not comment, f"a request line with more than a method: {rest!r}"
        frame.method = word
    return frame, found.end()


class Wire:
    """One MSRP connection to sipd, as the active side, over TLS (what sipd takes by
    default): raw bytes out, frames in, kept until a test takes them."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = b""
        self.frames: list[Frame] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, host: str, port: int) -> AsyncIterator[Wire]:
        tcp = await trio.open_tcp_stream(host, port)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a self-signed certificate, no fingerprint asked
        async with trio.SSLStream(tcp, context, server_hostname=None) as stream:
            yield cls(stream)

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise AssertionError("sipd closed the MSRP connection")
        self.buffer += data
        while (got := read_frame(self.buffer)) is not None:
            frame, used = got
            self.frames.append(frame)
            self.buffer = self.buffer[used:]

    async def next(self, what: Callable[[Frame], bool], timeout: float = EVENT_TIMEOUT
                   ) -> Frame:
        with trio.fail_after(timeout):
            while True:
                for frame in self.frames:
                    if what(frame):
                        self.frames.remove(frame)
                        return frame
                await self._more()

    async def response(self, tid: str) -> Frame:
        return await self.next(lambda f: f.code is not None and f.tid == tid)

    async def request(self, method: str, **headers: str) -> Frame:
        return await self.next(lambda f: f.method == method and all(
            f.header(name.replace("_", "-")) == value for name, value in headers.items()))

    async def settle(self, tid: str, to_path: str, from_path: str) -> None:
        """A barrier: an empty SEND asking for its 200, and its 200 read, so what sipd sent
        before it is in `frames` (one connection keeps the order)."""
        await self.write(send(tid, to_path, from_path, byte_range="1-0/0",
                              message_id=f"settle{tid}"[:32]))
        assert (await self.response(tid)).code == 200

    def responses_to(self, tid: str) -> list[Frame]:
        return [f for f in self.frames if f.code is not None and f.tid == tid]


def probe_certificate(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A server TLS context with a fresh certificate (a throwaway CA's, tests/peers/certs.py),
    and its a=fingerprint value (RFC 4572 §5: `sha-256` and the hash's uppercase hex pairs)."""
    files = TestCA(directory).issue("probe", ["msrp-probe"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert_path, files.key_path)
    certificate = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    digest = certificate.fingerprint(hashes.SHA256()).hex().upper()
    return context, "sha-256 " + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
