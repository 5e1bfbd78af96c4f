"""A peer that writes what Blink (python-sipsimple over msrplib) writes, byte for byte, for the
interop tests: SIP by hand on a UDP socket, MSRP frames in msrplib's layout on a TCP or TLS
connection it opens itself. Facts learnt from reading python-sipsimple and msrplib (no code of
theirs here):

- its chat offer: a=path, a=accept-types `message/cpim text/* image/*
  application/im-iscomposing+xml`, the same without message/cpim as a=accept-wrapped-types,
  a=setup:actpass and never an a=fingerprint (TLS is its default transport);
- transaction-ids and Message-IDs are `%x` of 64 random bits; headers are ordered To-Path,
  From-Path, Byte-Range, Message-ID, the report headers, Content-Type last; a message longer
  than 2048 bytes says `Byte-Range: 1-*/N`;
- the active side binds with an empty SEND (`Byte-Range: 1-0/0`, no Content-Type), and every
  60 s it sends the same with a `Keep-Alive: yes` header;
- its CPIM body: headers joined by CRLF, then CRLF CRLF, then a MIME part written by Python's
  email package with bare LF line ends, MIME-Version first and `charset="utf8"`;
- its is-composing document names the content type `text` (not a media type);
- its chat opens with an OTR query message (OTR_QUERY) before anything the user writes.

    async with BlinkUac.bound() as blink:
        answer = await blink.invite(target, offer_sdp)      # 200 (ACKed), once sipd answered
        ...
        await blink.serve_byes()
"""

from __future__ import annotations

import random
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from sipd.msrp.message import MsrpRequest, MsrpResponse
from sipd.msrp.parser import FrameError, FrameParser
from tests.harness.raw_uac import loopback_udp
from tests.harness.waits import EVENT_TIMEOUT

CHAT_ACCEPT_TYPES = "message/cpim text/* image/* application/im-iscomposing+xml"
CHAT_WRAPPED_TYPES = "text/* image/* application/im-iscomposing+xml"


def hex_id() -> str:
    """msrplib's transaction-ids and Message-IDs."""
    return f"{random.getrandbits(64):x}"


def chat_offer(path: str, port: int, *, tls: bool = True, setup: str = "actpass") -> str:
    """Blink's SDP offering a chat, as python-sipsimple builds it (`setup` active: its
    answer, where it connects; its c= is the media line's own)."""
    proto = "TCP/TLS/MSRP" if tls else "TCP/MSRP"
    return ("v=0\r\no=- 3912345678 3912345678 IN IP4 127.0.0.1\r\ns=Blink 6.0.0 (Linux)\r\n"
            "t=0 0\r\n"
            f"m=message {port} {proto} *\r\nc=IN IP4 127.0.0.1\r\n"
            f"a=path:{path}\r\n"
            f"a=accept-types:{CHAT_ACCEPT_TYPES}\r\n"
            f"a=accept-wrapped-types:{CHAT_WRAPPED_TYPES}\r\n"
            f"a=setup:{setup}\r\n")


def screen_offer(path: str, port: int, rfbsetup: str) -> str:
    """Blink's SDP for screen sharing: m=application, accept-types application/x-rfb only,
    a=rfbsetup active (it wants to view) or passive (it shares)."""
    return ("v=0\r\no=- 3912345681 3912345681 IN IP4 127.0.0.1\r\ns=Blink 6.0.0 (Linux)\r\n"
            "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=application {port} TCP/TLS/MSRP *\r\n"
            f"a=path:{path}\r\na=accept-types:application/x-rfb\r\na=setup:actpass\r\n"
            f"a=rfbsetup:{rfbsetup}\r\n")


def rfb_frame(to_path: str, from_path: str, data: bytes) -> bytes:
    """One write of Blink's RFB side: a message of its own, no success report, failures only."""
    tid = hex_id()
    size = len(data)
    head = "\r\n".join([
        f"MSRP {tid} SEND", f"To-Path: {to_path}", f"From-Path: {from_path}",
        f"Byte-Range: 1-{size if size <= 2048 else '*'}/{size}", f"Message-ID: {hex_id()}",
        "Success-Report: no", "Failure-Report: partial", "Content-Type: application/x-rfb",
        "\r\n"])
    return head.encode() + data + f"\r\n-------{tid}$\r\n".encode()


def file_offer(path: str, port: int, selector: str, transfer_id: str) -> str:
    """Blink's SDP pushing a file (python-sipsimple's file transfer stream): sendonly,
    accept-types `*`, its own a=x-file-offset, a uuid4 a=file-transfer-id, the name as it is
    (not percent-encoded)."""
    return ("v=0\r\no=- 3912345679 3912345679 IN IP4 127.0.0.1\r\ns=Blink 6.0.0 (Linux)\r\n"
            "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=message {port} TCP/TLS/MSRP *\r\n"
            f"a=path:{path}\r\na=sendonly\r\na=accept-types:*\r\na=setup:actpass\r\n"
            f"a=file-selector:{selector}\r\na=x-file-offset\r\n"
            f"a=file-transfer-id:{transfer_id}\r\n")


def file_chunks(to_path: str, from_path: str, data: bytes, content_type: str
                ) -> list[tuple[str, bytes]]:
    """(transaction-id, bytes) of each SEND of a file as python-sipsimple sends it: 64 KiB
    chunks of one message, `Byte-Range: start-*/size` (the end left out past 2048 bytes),
    `+` but for the last, both reports asked on each, Content-Type on each."""
    message_id = hex_id()
    size = len(data)
    chunks = []
    for offset in range(0, size, 65536):
        part = data[offset:offset + 65536]
        end = offset + len(part)
        tid = hex_id()
        head = "\r\n".join([
            f"MSRP {tid} SEND", f"To-Path: {to_path}", f"From-Path: {from_path}",
            f"Byte-Range: {offset + 1}-{end if size <= 2048 else '*'}/{size}",
            f"Message-ID: {message_id}", "Success-Report: yes", "Failure-Report: yes",
            f"Content-Type: {content_type}", "\r\n"])
        flag = "$" if end == size else "+"
        chunks.append((tid, head.encode() + part + f"\r\n-------{tid}{flag}\r\n".encode()))
    return chunks


def file_answer(offer: str, path: str, port: int) -> str:
    """Blink's answer taking a pushed file: recvonly, active (it connects), the offer's
    selector and transfer id back, its own a=x-file-offset."""
    proto = "TCP/TLS/MSRP" if "TCP/TLS/MSRP" in offer else "TCP/MSRP"
    return ("v=0\r\no=- 3912345680 3912345680 IN IP4 127.0.0.1\r\ns=Blink 6.0.0 (Linux)\r\n"
            "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=message {port} {proto} *\r\n"
            f"a=path:{path}\r\na=recvonly\r\na=accept-types:*\r\na=setup:active\r\n"
            f"a=file-selector:{sdp_attribute(offer, 'file-selector')}\r\na=x-file-offset\r\n"
            f"a=file-transfer-id:{sdp_attribute(offer, 'file-transfer-id')}\r\n")


def send_frame(to_path: str, from_path: str, *, data: bytes = b"",
               content_type: str | None = None, message_id: str | None = None,
               reports: str | None = None, extra: tuple[tuple[str, str], ...] = (),
               tid: str | None = None) -> bytes:
    """A SEND as msrplib encodes it (one chunk: the whole message). `reports`: the value of
    both Failure-Report and Success-Report ("yes" for a chat message, "no" for is-composing)."""
    tid = tid or hex_id()
    size = len(data)
    byte_range = f"1-{size if size <= 2048 else '*'}/{size}"
    lines = [f"MSRP {tid} SEND", f"To-Path: {to_path}", f"From-Path: {from_path}",
             f"Byte-Range: {byte_range}", f"Message-ID: {message_id or hex_id()}"]
    lines += [f"{name}: {value}" for name, value in extra]
    if reports is not None:
        lines += [f"Failure-Report: {reports}", f"Success-Report: {reports}"]
    if content_type is not None:
        lines += [f"Content-Type: {content_type}", "\r\n"]
    return "\r\n".join(lines).encode() + data + f"\r\n-------{tid}$\r\n".encode()


def cpim(sender: str, recipient: str, content_type: str, content: bytes, *,
         charset: str | None = None) -> bytes:
    """Blink's message/cpim body (python-sipsimple's CPIMPayload.encode)."""
    headers = (f"From: {sender}\r\nTo: {recipient}\r\n"
               "DateTime: 2026-07-10T09:47:31.123456+00:00")
    mime = f"MIME-Version: 1.0\nContent-Type: {content_type}"
    if charset is not None:
        mime += f'; charset="{charset}"'
    return (headers + "\r\n\r\n" + mime + "\n\n").encode() + content


# python-sipsimple's chat stream starts OTR on every chat: this query, text/plain, no reports
OTR_QUERY = (b"?OTRv3?  I would like to start an Off-the-Record private conversation, but "
             b"you do not seem to support that.")

COMPOSING = (b"<?xml version='1.0' encoding='UTF-8'?>\n<isComposing "
             b'xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state>'
             b"<contenttype>text</contenttype><refresh>60</refresh></isComposing>")


class MsrpWire:
    """One MSRP connection of the peer: raw bytes out, frames in (read with sipd's parser:
    the test looks at the raw header text where msrplib is strict)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.parser = FrameParser()
        self.frames: list[MsrpRequest | MsrpResponse] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, host: str, port: int, *, tls: bool,
                   cert: tuple[Path, Path] | None = None) -> AsyncIterator[MsrpWire]:
        """`cert`: (certificate, key) the peer shows when it is asked (none by default)."""
        tcp = await trio.open_tcp_stream(host, port)
        stream: trio.abc.Stream = tcp
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # msrplib checks no certificate either
            if cert is not None:
                context.load_cert_chain(*map(str, cert))
            stream = trio.SSLStream(tcp, context, server_hostname=None)
        async with stream:
            yield cls(stream)

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def bind(self, to: str, from_path: str) -> None:
        """The peer's empty SEND that binds the connection (RFC 4975), answered 200."""
        tid = hex_id()
        await self.write(send_frame(to, from_path, tid=tid))
        assert (await self.response(tid)).code == 200

    async def send_chunks(self, frames: list[tuple[str, bytes]]) -> None:
        """(transaction-id, frame) pairs written at once, then each answered 200."""
        for _, frame in frames:
            await self.write(frame)
        for tid, _ in frames:
            assert (await self.response(tid)).code == 200

    async def next(self, what: Any = None, timeout: float = EVENT_TIMEOUT
                   ) -> MsrpRequest | MsrpResponse:
        """The next frame `what` accepts (a predicate; None: any), the others kept."""
        with trio.fail_after(timeout):
            while True:
                for frame in self.frames:
                    if what is None or what(frame):
                        self.frames.remove(frame)
                        return frame
                data = await self.stream.receive_some(65536)
                if not data:
                    raise AssertionError("sipd closed the MSRP connection")
                for item in self.parser.feed(data):
                    if isinstance(item, FrameError):
                        raise AssertionError(f"sipd sent a bad frame: {item.detail}")
                    self.frames.append(item)

    async def response(self, tid: str) -> MsrpResponse:
        frame = await self.next(lambda f: isinstance(f, MsrpResponse)
                                and f.transaction_id == tid)
        assert isinstance(frame, MsrpResponse)
        return frame

    async def request(self, method: str) -> MsrpRequest:
        frame = await self.next(lambda f: isinstance(f, MsrpRequest) and f.method == method)
        assert isinstance(frame, MsrpRequest)
        return frame

    async def answer(self, request: MsrpRequest) -> None:
        """msrplib's 200: To-Path the sender's first hop, From-Path our URI."""
        to_path = request.headers.get("From-Path") or ""
        from_path = request.headers.get("To-Path") or ""
        tid = request.transaction_id
        await self.write(f"MSRP {tid} 200 OK\r\nTo-Path: {to_path.split()[0]}\r\n"
                         f"From-Path: {from_path.split()[0]}\r\n-------{tid}$\r\n".encode())

    async def report(self, request: MsrpRequest) -> None:
        """msrplib's success REPORT for one chunk: its own bytes, of the chunk's total."""
        size = len(request.body or b"")
        byte_range = request.headers.get("Byte-Range") or f"1-{size}/{size}"
        match = re.fullmatch(r"(\d+)-([\d*]+)/([\d*]+)", byte_range)
        assert match is not None, byte_range
        first, total = int(match.group(1)), match.group(3)
        tid = hex_id()
        to_path = request.headers.get("From-Path") or ""
        from_path = (request.headers.get("To-Path") or "").split()[0]
        await self.write(
            f"MSRP {tid} REPORT\r\nTo-Path: {to_path}\r\nFrom-Path: {from_path}\r\n"
            f"Status: 000 200 OK\r\nMessage-ID: {request.headers.get('Message-ID')}\r\n"
            f"Byte-Range: {first}-{first + size - 1}/{total}\r\n-------{tid}$\r\n".encode())


class BlinkUac:
    """The SIP side: an INVITE with Blink's offer, the ACK, 200 to a BYE."""

    def __init__(self, sock: Any, port: int) -> None:
        self.sock = sock
        self.port = port
        self.tag = uuid.uuid4().hex[:8]
        self.call_id = uuid.uuid4().hex
        self.uri = f"sip:blink@127.0.0.1:{port}"
        self.remote_to = ""  # sipd's To (with its tag) and Contact, from its 200
        self.remote_target = ""

    @classmethod
    @asynccontextmanager
    async def bound(cls) -> AsyncIterator[BlinkUac]:
        async with loopback_udp() as (sock, port):
            yield cls(sock, port)

    async def _send(self, text: str, where: tuple[str, int]) -> None:
        await self.sock.sendto(text.encode(), where)

    async def invite(self, target: str, where: tuple[str, int], sdp: str,
                     timeout: float = EVENT_TIMEOUT) -> str:
        """Sends the INVITE (again until an answer comes), ACKs the 200 and returns it."""
        branch = f"z9hG4bK{uuid.uuid4().hex}"
        invite = (f"INVITE {target} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch={branch}\r\n"
                  "Max-Forwards: 70\r\n"
                  f"From: \"Blink\" <{self.uri}>;tag={self.tag}\r\n"
                  f"To: <{target}>\r\nCall-ID: {self.call_id}\r\nCSeq: 1 INVITE\r\n"
                  f"Contact: <{self.uri}>\r\nContent-Type: application/sdp\r\n"
                  f"Content-Length: {len(sdp.encode())}\r\n\r\n{sdp}")
        provisional = False
        with trio.fail_after(timeout):
            while True:
                if not provisional:
                    await self._send(invite, where)
                with trio.move_on_after(0.5):
                    while True:
                        data, _ = await self.sock.recvfrom(65535)
                        text = data.decode(errors="replace")
                        status = re.match(r"SIP/2\.0 (\d{3})", text)
                        if status is None:
                            await self._answer_request(text, where)
                            continue
                        code = int(status.group(1))
                        if code < 200:
                            provisional = True
                            continue
                        if code >= 300:
                            raise AssertionError(f"the INVITE was refused: {text}")
                        await self._ack(text, target, where)
                        return text

    async def _ack(self, response: str, target: str, where: tuple[str, int]) -> None:
        to = re.search(r"^To:\s*(.*)$", response, re.M | re.I)
        contact = re.search(r"^(?:Contact|m):\s*<([^>]+)>", response, re.M | re.I)
        assert to is not None
        self.remote_to = to.group(1).strip()
        self.remote_target = contact.group(1) if contact else target
        ack = (f"ACK {self.remote_target} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{uuid.uuid4().hex}"
               f"\r\nMax-Forwards: 70\r\nFrom: \"Blink\" <{self.uri}>;tag={self.tag}\r\n"
               f"To: {self.remote_to}\r\nCall-ID: {self.call_id}\r\nCSeq: 1 ACK\r\n"
               "Content-Length: 0\r\n\r\n")
        await self._send(ack, where)

    async def bye(self, where: tuple[str, int], timeout: float = EVENT_TIMEOUT) -> None:
        """Ends the call (Blink hangs up once its file is reported received)."""
        bye = (f"BYE {self.remote_target} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch=z9hG4bK{uuid.uuid4().hex}"
               f"\r\nMax-Forwards: 70\r\nFrom: \"Blink\" <{self.uri}>;tag={self.tag}\r\n"
               f"To: {self.remote_to}\r\nCall-ID: {self.call_id}\r\nCSeq: 2 BYE\r\n"
               "Content-Length: 0\r\n\r\n")
        await self._send(bye, where)

    async def _answer_request(self, text: str, where: tuple[str, int]) -> None:
        """200 to what sipd asks in the dialog (its BYE)."""
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        if head[0].startswith("ACK "):
            return
        keep = [line for line in head[1:] if line.split(":", 1)[0].strip().lower() in
                ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")]
        await self._send("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) +
                         "\r\nContent-Length: 0\r\n\r\n", where)

    async def serve_byes(self, where: tuple[str, int]) -> None:
        """Answers sipd's requests (its BYE) until cancelled."""
        while True:
            data, _ = await self.sock.recvfrom(65535)
            text = data.decode(errors="replace")
            if not text.startswith("SIP/2.0"):
                await self._answer_request(text, where)


async def answered_call(peer: Any, uac: BlinkUac, nursery: trio.Nursery, offer: str,
                        **answer: Any) -> tuple[str, str]:
    """`uac` calls the daemon `peer` drives with `offer`; the daemon answers it over RPC
    (`sessions.answer` with `answer`'s parameters) once it rings: (the SDP of its 200, the
    session id). From then on the UAC answers the daemon's BYE."""
    mark = peer.events.mark()
    where = ("127.0.0.1", peer.ports["udp"])

    async def answer_when_offered() -> None:
        new = await peer.events.wait("session.new", direction="incoming", since=mark)
        await peer.call("sessions.answer", id=new["id"], **answer)

    nursery.start_soon(answer_when_offered)
    response = await uac.invite(peer.uri(), where, offer)
    session = peer.events.matching("session.new", direction="incoming", since=mark)[-1]["id"]
    nursery.start_soon(uac.serve_byes, where)
    return response.split("\r\n\r\n", 1)[1], session


def sdp_attribute(sdp: str, name: str) -> str | None:
    match = re.search(rf"^a={re.escape(name)}:(.*?)\r?$", sdp, re.M)
    return match.group(1) if match else None
