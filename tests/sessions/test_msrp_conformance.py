"""An acceptance probe of sipd's MSRP chat (RFC 4975, 3862, 5438) against a peer whose bytes
are written by hand from the RFCs' text (tests/msrp/conformance_peer.py), not by sipd's
builders, and read by a reader of its own. Each test: a raw SIP UAC offers a chat over TLS,
sipd answers passive, the peer connects and binds with an empty SEND, then the scenario.

What each checks, with the RFC's words it rests on:
- chunks (RFC 4975 §5.1, §7.1.1, §7.3.1): out of order, `Byte-Range: n-*/*`, two messages
  interleaved, an interrupted chunk (`+` before its range's end), an aborted message (`#`);
- reports (§7.1.2, §7.2, §7.1.3): Failure-Report no / partial / yes, Success-Report yes;
- syntax (§9; ABNF strings are case-insensitive, RFC 5234 §2.3): lowercase header names,
  unknown headers, Content-Type parameters, a response without a comment, a REPORT nobody
  asked for, identifiers using every ident character;
- payloads: text/html bare, message/cpim with several NS prefixes and DateTime offsets
  (RFC 3862 §3.3.6, §4.5), an IMDN delivery notification asked (RFC 5438 §6.3, §7.2.1.1);
- a file pushed (RFC 5547): quoted name with spaces, type with a parameter, uppercase hash,
  file-date, file-icon, disposition; 2048-octet chunks scrambled, interrupted, sizeless;
- connection set-up (RFC 6135, RFC 4572): sipd active against a passive offer, and refusing
  a certificate that is not the offer's fingerprint.

Two tests were xfail when written (a bare text's charset lost; an IMDN addressed to the
session's peer, not to the CPIM sender): both mended since.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from lxml import etree

from sipctl.client import RpcCallError
from sipd.msrp.uri import parse_path
from tests.harness.files import FILE_TOPICS
from tests.harness.peer import DaemonPeer, open_peer
from tests.msrp.conformance_peer import Frame, Wire, probe_certificate, response, send
from tests.sessions.blink_peer import BlinkUac, answered_call, sdp_attribute

PEER_PATH = "msrps://127.0.0.1:40555/probe7Fq2;tcp"
TOPICS = ("sessions", "chat")


def chat_offer(accept: str, wrapped: str | None) -> str:
    """An RFC 4975 §8.5-style offer: m=message, TCP/TLS/MSRP, a=path, a=accept-types, and
    actpass (RFC 6135) so sipd picks passive: the peer connects."""
    sdp = ("v=0\r\no=probe 2890844526 2890844527 IN IP4 127.0.0.1\r\ns=-\r\n"
           "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=message 40555 TCP/TLS/MSRP *\r\n"
           f"a=accept-types:{accept}\r\n")
    if wrapped is not None:
        sdp += f"a=accept-wrapped-types:{wrapped}\r\n"
    return sdp + f"a=path:{PEER_PATH}\r\na=setup:actpass\r\n"


@dataclass
class Chat:
    peer: DaemonPeer
    wire: Wire
    session: str
    ours: str  # sipd's MSRP URI (its a=path)
    mark: int
    uri: str  # sipd's SIP URI

    async def send(self, frame: bytes) -> None:
        await self.wire.write(frame)

    async def send_whole(self, body: bytes, message_id: str, content_type: str) -> int:
        """`body` as one SEND of one chunk: the code of its response."""
        t = tid()
        await self.wire.write(send(t, self.ours, PEER_PATH, body=body,
                                   byte_range=f"1-{len(body)}/{len(body)}",
                                   message_id=message_id, content_type=content_type))
        return (await self.wire.response(t)).code

    async def settle(self) -> None:
        await self.wire.settle(tid(), self.ours, PEER_PATH)

    def messages(self) -> list[dict[str, Any]]:
        return self.peer.events.matching("chat.message", since=self.mark,
                                         session=self.session)

    async def message(self, **match: Any) -> dict[str, Any]:
        return await self.peer.events.wait("chat.message", since=self.mark,
                                           session=self.session, **match)


def tid() -> str:
    return uuid.uuid4().hex[:20]


@asynccontextmanager
async def chat(daemon: Any, accept: str = "text/plain text/html message/cpim",
               wrapped: str | None = "text/plain text/html message/imdn+xml",
               bind: bool = True) -> AsyncIterator[Chat]:
    async with open_peer(daemon, TOPICS) as peer, BlinkUac.bound() as uac, \
            trio.open_nursery() as nursery:
        mark = peer.events.mark()
        sdp, session = await answered_call(peer, uac, nursery, chat_offer(accept, wrapped))
        assert sdp_attribute(sdp, "setup") == "passive", sdp
        (ours,) = parse_path(sdp_attribute(sdp, "path") or "")
        await peer.state(session, "established")
        async with Wire.open(ours.host, ours.effective_port) as wire:
            # RFC 4975 §5.4: the active side's first request binds; an empty SEND does it
            if bind:
                first = tid()
                await wire.write(send(first, str(ours), PEER_PATH, byte_range="1-0/0",
                                      message_id="bind" + first[:8]))
                assert (await wire.response(first)).code == 200
            yield Chat(peer, wire, session, str(ours), mark, peer.uri())
            await peer.call("sessions.end", id=session)
            await peer.state(session, "ended")
        nursery.cancel_scope.cancel()


def chunked(text: bytes, cuts: list[int], message_id: str, *, total: bool = True,
            content_type: str = "text/plain", report: str = "yes"
            ) -> list[tuple[str, bytes]]:
    """The message cut at `cuts` into chunks (RFC 4975 §5.1): `+` but the last; with
    `total` False every Byte-Range says `start-*/*`."""
    bounds = [0, *cuts, len(text)]
    frames = []
    for first, end in zip(bounds, bounds[1:], strict=False):
        t = tid()
        last = end == len(text)
        byte_range = (f"{first + 1}-{end}/{len(text)}" if total else f"{first + 1}-*/*")
        frames.append((t, send(t, "", "", body=text[first:end], byte_range=byte_range,
                               message_id=message_id, flag="$" if last else "+",
                               headers=[f"Failure-Report: {report}"],
                               content_type=content_type)))
    return frames


def addressed(frame: bytes, ours: str) -> bytes:
    """`frame` with the paths filled in (chunked() leaves them empty)."""
    return frame.replace(b"To-Path: \r\n", f"To-Path: {ours}\r\n".encode(), 1).replace(
        b"From-Path: \r\n", f"From-Path: {PEER_PATH}\r\n".encode(), 1)


# -- chunks --------------------------------------------------------------------------------

async def test_chunks_out_of_order_with_unknown_end_and_total(daemon):
    text = "Out of order, sizes unknown: ünïcödé split across chunk edges ✓".encode()
    cuts = [7, 30]  # the second cut falls inside a multi-byte character
    async with chat(daemon) as c:
        frames = chunked(text, cuts, "ooo1msg", total=False)
        for index in (2, 0, 1):  # the last (`$`) first, then the first, then the middle
            await c.send(addressed(frames[index][1], c.ours))
        for t, _ in frames:
            assert (await c.wire.response(t)).code == 200
        got = await c.message(message_id="ooo1msg")
        assert got["content"] == text.decode()
        await c.settle()
        assert len(c.messages()) == 1


async def test_the_first_request_binds_with_a_message_in_it(daemon):
    """RFC 4975 §5.4: the active side's first SEND binds the connection, and may carry a
    message (no empty SEND is needed first)."""
    async with chat(daemon, bind=False) as c:
        t = tid()
        await c.send(send(t, c.ours, PEER_PATH, body=b"hello at once", byte_range="1-13/13",
                          message_id="first1", content_type="text/plain"))
        assert (await c.wire.response(t)).code == 200
        assert (await c.message(message_id="first1"))["content"] == "hello at once"


async def test_two_messages_interleaved_chunk_by_chunk(daemon):
    first = b"first message, in three parts, interleaved"
    second = b"second one, in two parts"
    async with chat(daemon) as c:
        a = chunked(first, [10, 25], "interA1")
        b = chunked(second, [12], "interB2")
        for _, frame in (a[0], b[0], a[1], b[1], a[2]):
            await c.send(addressed(frame, c.ours))
        for t, _ in a + b:
            assert (await c.wire.response(t)).code == 200
        got_a = await c.message(message_id="interA1")
        got_b = await c.message(message_id="interB2")
        assert got_a["content"] == first.decode() and got_b["content"] == second.decode()
        await c.settle()
        assert len(c.messages()) == 2


async def test_an_interrupted_chunk_then_the_rest(daemon):
    """RFC 4975 §7.1.1: a sender may stop a chunk early and end it with `+`; the receiver
    takes the bytes that came, whatever its Byte-Range promised, and the rest follows."""
    text = b"interrupted halfway, then resumed in a second chunk"
    cut = 15
    async with chat(daemon) as c:
        t1, t2 = tid(), tid()
        await c.send(send(t1, c.ours, PEER_PATH, body=text[:cut],
                          byte_range=f"1-{len(text)}/{len(text)}", message_id="intr1",
                          flag="+", content_type="text/plain"))
        await c.send(send(t2, c.ours, PEER_PATH, body=text[cut:],
                          byte_range=f"{cut + 1}-{len(text)}/{len(text)}",
                          message_id="intr1", content_type="text/plain"))
        assert (await c.wire.response(t1)).code == 200
        assert (await c.wire.response(t2)).code == 200
        got = await c.message(message_id="intr1")
        assert got["content"] == text.decode()
        await c.settle()
        assert len(c.messages()) == 1


async def test_an_aborted_message_is_not_delivered(daemon):
    """RFC 4975 §7.1.1 / §5.1: `#` ends a message abandoned; the receiver drops what it
    had. A later message is delivered alone."""
    text = b"this message is abandoned by its sender"
    async with chat(daemon) as c:
        t1, t2 = tid(), tid()
        await c.send(send(t1, c.ours, PEER_PATH, body=text[:12],
                          byte_range=f"1-12/{len(text)}", message_id="abrt1", flag="+",
                          content_type="text/plain"))
        await c.send(send(t2, c.ours, PEER_PATH, body=text[12:20],
                          byte_range=f"13-20/{len(text)}", message_id="abrt1", flag="#",
                          content_type="text/plain"))
        t3 = tid()
        await c.send(send(t3, c.ours, PEER_PATH, body=b"after the abort",
                          byte_range="1-15/15", message_id="after1",
                          content_type="text/plain"))
        assert (await c.wire.response(t3)).code == 200
        await c.message(message_id="after1")
        await c.settle()
        assert [m["message_id"] for m in c.messages()] == ["after1"]
        assert [m["content"] for m in c.messages()] == ["after the abort"]


async def test_an_aborted_message_gets_no_success_report(daemon):
    """RFC 4975 §7.1.2/§7.1.3: a success REPORT says the message arrived whole; one given
    up with `#` never did, so no `000 200` REPORT names it."""
    text = b"abandoned though a success report was asked"
    async with chat(daemon) as c:
        t1, t2 = tid(), tid()
        reports = ["Success-Report: yes", "Failure-Report: yes"]
        await c.send(send(t1, c.ours, PEER_PATH, body=text[:10],
                          byte_range=f"1-10/{len(text)}", message_id="abrtsr1", flag="+",
                          headers=reports, content_type="text/plain"))
        await c.send(send(t2, c.ours, PEER_PATH, body=text[10:20],
                          byte_range=f"11-20/{len(text)}", message_id="abrtsr1", flag="#",
                          headers=reports, content_type="text/plain"))
        assert (await c.wire.response(t1)).code == 200
        await c.settle()
        assert not [f for f in c.wire.frames if f.method == "REPORT"
                    and (f.header("Status") or "").startswith("000 200")]
        assert c.messages() == []


# -- reports ---------------------------------------------------------------------------------

async def test_failure_report_no_gets_no_response(daemon):
    """RFC 4975 §7.1.2/§7.2: Failure-Report `no`: no transaction response at all."""
    async with chat(daemon) as c:
        t = tid()
        await c.send(send(t, c.ours, PEER_PATH, body=b"fire and forget", byte_range="1-15/15",
                          message_id="frno1", headers=["Failure-Report: no"],
                          content_type="text/plain"))
        got = await c.message(message_id="frno1")
        assert got["content"] == "fire and forget"
        await c.settle()
        assert c.wire.responses_to(t) == []
        assert not [f for f in c.wire.frames if f.method == "REPORT"]


async def test_failure_report_partial_gets_no_200(daemon):
    """RFC 4975 §7.1.2: `partial`: only a failure is told, never a 200."""
    async with chat(daemon) as c:
        t = tid()
        await c.send(send(t, c.ours, PEER_PATH, body=b"tell me only if it fails",
                          byte_range="1-24/24", message_id="frpart1",
                          headers=["Failure-Report: partial"], content_type="text/plain"))
        got = await c.message(message_id="frpart1")
        assert got["content"] == "tell me only if it fails"
        await c.settle()
        assert c.wire.responses_to(t) == []


async def test_failure_report_yes_gets_a_200_and_success_report_yes_a_report(daemon):
    """RFC 4975 §7.2: a 200 to each chunk; §7.1.2: Success-Report yes gets a REPORT once the
    whole message came, Status `000 200` (namespace 000), its Message-ID, a Byte-Range
    covering the whole message, To-Path the sender's From-Path (RFC 4975 §7.1.2)."""
    text = b"report this one, both ways, in two chunks please"
    async with chat(daemon) as c:
        frames = [(t, addressed(f, c.ours).replace(
            b"Failure-Report: yes\r\n", b"Failure-Report: yes\r\nSuccess-Report: yes\r\n"))
            for t, f in chunked(text, [20], "sryes1")]
        for _, frame in frames:
            await c.send(frame)
        for t, _ in frames:
            answer = await c.wire.response(t)
            assert answer.code == 200
            assert answer.header("To-Path") == PEER_PATH
            assert answer.header("From-Path") == c.ours
        report = await c.wire.request("REPORT", Message_ID="sryes1")
        status = report.header("Status") or ""
        assert re.fullmatch(r"000 200( .*)?", status), status
        assert report.header("Byte-Range") == f"1-{len(text)}/{len(text)}"
        assert report.header("To-Path") == PEER_PATH
        assert report.header("From-Path") == c.ours
        assert report.body is None
        await c.message(message_id="sryes1")
        await c.settle()
        assert c.wire.responses_to(report.tid) == []
        assert not [f for f in c.wire.frames if f.method == "REPORT"]  # one only


async def test_success_report_yes_with_failure_report_no(daemon):
    """RFC 4975 §7.1.2: the two are independent; no 200, but the REPORT asked for."""
    async with chat(daemon) as c:
        t = tid()
        await c.send(send(t, c.ours, PEER_PATH, body=b"only success", byte_range="1-12/12",
                          message_id="srfrno1",
                          headers=["Success-Report: yes", "Failure-Report: no"],
                          content_type="text/plain"))
        report = await c.wire.request("REPORT", Message_ID="srfrno1")
        assert (report.header("Status") or "").startswith("000 200")
        assert report.header("Byte-Range") == "1-12/12"
        await c.settle()
        assert c.wire.responses_to(t) == []


async def test_report_headers_absent_mean_failure_yes_success_no(daemon):
    """RFC 4975 §7.1.2 (both header fields): Failure-Report absent is `yes` (a 200),
    Success-Report absent is `no` (no REPORT)."""
    async with chat(daemon) as c:
        t = tid()
        await c.send(send(t, c.ours, PEER_PATH, body=b"defaults", byte_range="1-8/8",
                          message_id="dflt1", content_type="text/plain"))
        assert (await c.wire.response(t)).code == 200
        await c.message(message_id="dflt1")
        await c.settle()
        assert not [f for f in c.wire.frames if f.method == "REPORT"]


async def test_a_type_not_offered_gets_415_only_when_failures_are_asked(daemon):
    """RFC 4975 §7.3.1: a SEND whose Content-Type the session did not offer is refused with
    415 (§7.2: a response, so only with Failure-Report yes or partial; never with no), and
    is not delivered."""
    body = b"\x00\x01binary the session never offered"
    async with chat(daemon, accept="text/plain message/cpim", wrapped="text/plain") as c:
        sent = {}
        for report in ("yes", "partial", "no"):
            t = tid()
            sent[report] = t
            await c.send(send(t, c.ours, PEER_PATH, body=body,
                              byte_range=f"1-{len(body)}/{len(body)}",
                              message_id=f"bad{report}1",
                              headers=[f"Failure-Report: {report}"],
                              content_type="application/x-probe-unoffered"))
        assert (await c.wire.response(sent["yes"])).code == 415
        assert (await c.wire.response(sent["partial"])).code == 415
        await c.settle()
        assert c.wire.responses_to(sent["no"]) == []
        assert c.messages() == []


async def test_success_report_for_a_message_of_unknown_size_in_scrambled_chunks(daemon):
    """RFC 4975 §7.1.2: the REPORT covers the message, whose total the receiver learnt from
    the `$` chunk (all said `*`): Byte-Range 1-N/N (or 1-N/* would not say it done)."""
    text = b"0123456789" * 7 + b"end"
    async with chat(daemon) as c:
        frames = [(t, addressed(f, c.ours).replace(
            b"Failure-Report: yes\r\n", b"Failure-Report: yes\r\nSuccess-Report: yes\r\n"))
            for t, f in chunked(text, [10, 40, 55], "srunk1", total=False)]
        for index in (3, 1, 0, 2):
            await c.send(frames[index][1])
        for t, _ in frames:
            assert (await c.wire.response(t)).code == 200
        reports = [await c.wire.request("REPORT", Message_ID="srunk1")]
        await c.settle()
        reports += [f for f in c.wire.frames if f.method == "REPORT"]
        covered = sorted(r.header("Byte-Range") or "" for r in reports)
        # one REPORT for the whole, or one per chunk adding up to it (RFC 4975 §7.1.2)
        assert covered == [f"1-{len(text)}/{len(text)}"] or len(reports) == len(frames), covered
        assert (await c.message(message_id="srunk1"))["content"] == text.decode()


async def test_a_send_without_byte_range_is_a_whole_message(daemon):
    """RFC 4975 §7.1.1: Byte-Range may be left out of a message sent in one chunk; it is
    then 1-*/* (the whole message)."""
    async with chat(daemon) as c:
        t = tid()
        await c.send(send(t, c.ours, PEER_PATH, body=b"no byte range at all",
                          message_id="nobr1", content_type="text/plain"))
        assert (await c.wire.response(t)).code == 200
        assert (await c.message(message_id="nobr1"))["content"] == "no byte range at all"


# -- syntax ----------------------------------------------------------------------------------

async def test_lowercase_header_names_and_unknown_headers(daemon):
    """RFC 4975 §9: header names are ABNF strings, case-insensitive (RFC 5234 §2.3); unknown
    headers are ignored (RFC 4975 §7.3: extension headers)."""
    body = "lower case, parameters: grüße".encode()
    async with chat(daemon) as c:
        t = tid()
        frame = "\r\n".join([
            f"MSRP {t} SEND", f"to-path: {c.ours}", f"from-path: {PEER_PATH}",
            "message-id: lower1", f"byte-range: 1-{len(body)}/{len(body)}",
            "failure-report: yes", "success-report: yes",
            "X-Probe-Unknown: some value; with=params", "Priority-Hint: high",
            "content-type: text/plain; charset=UTF-8", "", ""]).encode() + body \
            + f"\r\n-------{t}$\r\n".encode()
        await c.send(frame)
        assert (await c.wire.response(t)).code == 200
        assert await c.wire.request("REPORT", Message_ID="lower1")
        got = await c.message(message_id="lower1")
        assert got["content"] == body.decode()
        assert got["content_type"].lower().startswith("text/plain")


async def test_extra_spaces_after_the_colons(daemon):
    """Spaces beyond the grammar's one SP (RFC 4975 §9 `hname ":" SP hval`): a robust
    receiver trims them (RFC 4975 §6: hval is utf8text); the message arrives intact."""
    body = b"spaced out headers"
    async with chat(daemon) as c:
        t = tid()
        frame = "\r\n".join([
            f"MSRP {t} SEND", f"To-Path:   {c.ours}", f"From-Path:  {PEER_PATH}",
            "Message-ID:    space1", f"Byte-Range:  1-{len(body)}/{len(body)}",
            "Failure-Report:  yes", "Content-Type:   text/plain", "", ""]).encode() + body \
            + f"\r\n-------{t}$\r\n".encode()
        await c.send(frame)
        assert (await c.wire.response(t)).code == 200
        got = await c.message(message_id="space1")
        assert got["content"] == body.decode()


async def test_identifiers_using_every_legal_character(daemon):
    """RFC 4975 §9: transact-id and Message-ID are `ident = ALPHANUM 3*31ident-char`,
    ident-char = ALPHANUM / "." / "-" / "+" / "%" / "="; the end-line repeats the id."""
    message_id = "aZ9.-+%=0bY8x.-+%=7cW6v5u4t3s2r1"  # 32 characters, the longest
    transaction = "Q.-+%=" + uuid.uuid4().hex[:16]  # §7.1: 64 random bits at least
    assert len(message_id) == 32
    async with chat(daemon) as c:
        await c.send(send(transaction, c.ours, PEER_PATH, body=b"odd ids", byte_range="1-7/7",
                          message_id=message_id,
                          headers=["Success-Report: yes", "Failure-Report: yes"],
                          content_type="text/plain"))
        answer = await c.wire.response(transaction)
        assert answer.code == 200 and answer.raw.endswith(f"-------{transaction}$\r\n".encode())
        report = await c.wire.request("REPORT")
        assert report.header("Message-ID") == message_id
        got = await c.message()
        assert got["content"] == "odd ids"


async def test_a_report_sipd_did_not_ask_for_is_ignored(daemon):
    """RFC 4975 §7.1.2: REPORTs are never answered; one about a message sipd never sent
    changes nothing and the session goes on."""
    async with chat(daemon) as c:
        t = tid()
        await c.send("\r\n".join([
            f"MSRP {t} REPORT", f"To-Path: {c.ours}", f"From-Path: {PEER_PATH}",
            "Message-ID: neverSent42", "Byte-Range: 1-10/10", "Status: 000 200 OK",
            f"-------{t}$", ""]).encode())
        t2 = tid()
        await c.send(send(t2, c.ours, PEER_PATH, body=b"still here", byte_range="1-10/10",
                          message_id="after2", content_type="text/plain"))
        assert (await c.wire.response(t2)).code == 200
        await c.message(message_id="after2")
        await c.settle()
        assert c.wire.responses_to(t) == []
        assert not c.peer.events.matching("chat.delivery", since=c.mark)


async def sipd_sends(c: Chat, content: str) -> tuple[str, Frame]:
    sent = await c.peer.call("chat.send", session=c.session, content=content)
    request = await c.wire.request("SEND")
    return sent["message_id"], request


async def test_responses_with_and_without_a_comment(daemon):
    """RFC 4975 §9: `MSRP SP transact-id SP status-code [SP comment] CRLF`: both are 200s."""
    async with chat(daemon, accept="text/plain", wrapped=None) as c:
        for comment in (None, "OK", "fine thanks"):
            message_id, request = await sipd_sends(c, f"comment {comment}")
            assert (request.header("Content-Type") or "").startswith("text/plain")
            # RFC 4975 §7.2: To-Path the request's From-Path's first URI, From-Path ours
            to_path = (request.header("From-Path") or "").split()[0]
            assert to_path == c.ours
            await c.send(response(request.tid, 200, comment, to_path, PEER_PATH))
            if request.header("Success-Report") == "yes":
                raise AssertionError("a bare text/plain chat asks no success report here")
            await c.peer.events.wait("chat.delivery", since=c.mark, session=c.session,
                                     message_id=message_id, status="delivered")
        assert not c.peer.events.matching("chat.delivery", since=c.mark, status="failed")


async def test_a_failure_response_to_sipds_send_fails_the_message(daemon):
    """RFC 4975 §7.2/§10: a 415 to sipd's SEND is that message's failure."""
    async with chat(daemon, accept="text/plain", wrapped=None) as c:
        message_id, request = await sipd_sends(c, "refused, please")
        await c.send(response(request.tid, 415, "Unsupported media type", c.ours, PEER_PATH))
        failed = await c.peer.events.wait("chat.delivery", since=c.mark, session=c.session,
                                          message_id=message_id)
        assert failed["status"] == "failed" and failed.get("code") == 415, failed


async def test_sipds_own_chunks_follow_the_framing_rules(daemon):
    """RFC 4975 §5.1/§7.1.1 on sipd's side: a long message goes in chunks of one Message-ID,
    `+` on all but the last, `$` on the last, contiguous Byte-Ranges from 1 whose totals
    agree, the paths on each; reassembled by the peer it is the text sent."""
    # past the largest chunk sipd writes on a direct connection (msrp.direct_chunk_size)
    text = ("long message " + "ÿ" * 5000 + " " + "x" * 600_000 + " end").encode()
    async with chat(daemon, accept="text/plain", wrapped=None) as c:
        sent = await c.peer.call("chat.send", session=c.session, content=text.decode())
        chunks: list[Frame] = []
        while not chunks or chunks[-1].flag == "+":
            frame = await c.wire.request("SEND")
            chunks.append(frame)
            assert frame.header("To-Path") == PEER_PATH
            assert frame.header("From-Path") == c.ours
            if frame.header("Failure-Report") in (None, "yes"):
                await c.send(response(frame.tid, 200, "OK", c.ours, PEER_PATH))
        assert len(chunks) > 1
        assert len({f.header("Message-ID") for f in chunks}) == 1
        # RFC 4975 §9: Message-ID = ident; §7.1: transaction ids unique, 64 random bits
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}",
                            chunks[0].header("Message-ID") or ""), chunks[0].header("Message-ID")
        assert len({f.tid for f in chunks}) == len(chunks)
        assert all(len(f.tid) >= 11 for f in chunks), [f.tid for f in chunks]
        assert [f.flag for f in chunks] == ["+"] * (len(chunks) - 1) + ["$"]
        whole = b""
        for frame in chunks:
            match = re.fullmatch(r"(\d+)-(\d+|\*)/(\d+|\*)", frame.header("Byte-Range") or "")
            assert match, frame.header("Byte-Range")
            body = frame.body or b""
            assert int(match.group(1)) == len(whole) + 1
            if match.group(2) != "*":
                assert int(match.group(2)) == len(whole) + len(body)
            if match.group(3) != "*":
                assert int(match.group(3)) == len(text)
            whole += body
        assert whole == text
        last = chunks[-1]
        if last.header("Success-Report") == "yes":
            t = tid()
            await c.send("\r\n".join([
                f"MSRP {t} REPORT", f"To-Path: {c.ours}", f"From-Path: {PEER_PATH}",
                f"Message-ID: {last.header('Message-ID')}", f"Byte-Range: 1-{len(text)}/"
                f"{len(text)}", "Status: 000 200 OK", f"-------{t}$", ""]).encode())
        await c.peer.events.wait("chat.delivery", since=c.mark, session=c.session,
                                 message_id=sent["message_id"], status="delivered")


async def test_a_send_for_another_session_gets_481(daemon):
    """RFC 4975 §7.3.1: a request whose To-Path is no session of the receiver's gets 481,
    and nothing of it is delivered; the connection's own session goes on."""
    async with chat(daemon) as c:
        stranger = re.sub(r"/[^/;]+;tcp$", "/NoSuchSession77;tcp", c.ours)
        assert stranger != c.ours
        t = tid()
        await c.send(send(t, stranger, PEER_PATH, body=b"lost", byte_range="1-4/4",
                          message_id="lost1", content_type="text/plain"))
        assert (await c.wire.response(t)).code == 481
        await c.settle()
        assert c.messages() == []


async def test_an_unknown_method_gets_501(daemon):
    """RFC 4975 §10.10 (501): a request whose method the receiver does not know."""
    async with chat(daemon) as c:
        t = tid()
        await c.send("\r\n".join([f"MSRP {t} PROBE", f"To-Path: {c.ours}",
                                   f"From-Path: {PEER_PATH}", f"-------{t}$", ""]).encode())
        assert (await c.wire.response(t)).code == 501
        await c.settle()


# -- payloads --------------------------------------------------------------------------------

async def test_bare_text_html(daemon):
    body = b"<p>bare <b>html</b> &amp; no CPIM</p>"
    async with chat(daemon) as c:
        t = tid()
        await c.send(send(t, c.ours, PEER_PATH, body=body, byte_range=f"1-{len(body)}/"
                          f"{len(body)}", message_id="html1", content_type="text/html"))
        assert (await c.wire.response(t)).code == 200
        got = await c.message(message_id="html1")
        assert got["content"] == body.decode()
        assert got["content_type"].startswith("text/html")


def cpim_body(headers: list[str], content_type: str, content: bytes) -> bytes:
    """RFC 3862 §2/§3: the message headers, a blank line, then a MIME part (its headers, a
    blank line, the content)."""
    return ("\r\n".join(headers) + "\r\n\r\n" + f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(content)}\r\n\r\n").encode() + content


async def test_cpim_with_several_namespaces_and_a_dateTime_offset(daemon):
    """RFC 3862 §3.3.7 (NS), §4.6 (prefixed headers, unknown ones ignored), §3.3.6 DateTime
    in an offset of its own (RFC 3339): the message, its sender, its time."""
    content = "CPIM with namespaces ✓".encode()
    body = cpim_body([
        "From: Probe <sip:probe@127.0.0.1>", "To: <sip:local@127.0.0.1>",
        "NS: MyFeatures <mid:MessageFeatures@id.foo.com>",
        "NS: Other <urn:example:other>",
        "MyFeatures.VitalMessageOption: Confirmation-requested",
        "Other.Thing: 42",
        "Subject:;lang=fr Bonjour",
        "DateTime: 2026-07-10T15:17:31.5+05:30",
        "Require: MyFeatures.VitalMessageOption"], "text/plain; charset=utf-8", content)
    async with chat(daemon) as c:
        assert await c.send_whole(body, "cpimns1", "message/cpim") == 200
        got = await c.message(message_id="cpimns1")
        assert got["content"] == content.decode()
        assert got["from"] == "sip:probe@127.0.0.1"
        assert datetime.datetime.fromisoformat(got["time"]) == datetime.datetime(
            2026, 7, 10, 9, 47, 31, 500000, tzinfo=datetime.UTC)


async def test_cpim_dateTime_west_of_utc(daemon):
    content = b"west of Greenwich"
    body = cpim_body(["From: <sip:probe@127.0.0.1>", "To: <sip:local@127.0.0.1>",
                      "DateTime: 2026-07-09T23:30:00-08:00"], "text/plain", content)
    async with chat(daemon) as c:
        assert await c.send_whole(body, "cpimdt2", "message/cpim") == 200
        got = await c.message(message_id="cpimdt2")
        assert got["content"] == "west of Greenwich"
        assert datetime.datetime.fromisoformat(got["time"]) == datetime.datetime(
            2026, 7, 10, 7, 30, tzinfo=datetime.UTC)


async def test_cpim_escapes_several_recipients_and_a_latin1_part(daemon):
    """RFC 3862 §3.2/§2.3: a quoted display name with escapes; §4.2/§4.3: To more than once
    and cc; the MIME part's charset (RFC 2046 §4.1.2) says how its octets read."""
    body = cpim_body([
        'From: "Al\\"ice \\\\ Q." <sip:probe@127.0.0.1>',
        "To: <sip:local@127.0.0.1>", "To: Other <sip:other@127.0.0.1>",
        "cc: <sip:third@127.0.0.1>", "DateTime: 2026-07-10T09:47:31Z"],
        "text/plain; charset=ISO-8859-1", "café crème".encode("latin-1"))
    async with chat(daemon) as c:
        assert await c.send_whole(body, "cpimesc1", "message/cpim") == 200
        got = await c.message(message_id="cpimesc1")
        assert got["from"] == "sip:probe@127.0.0.1"
        assert got["content"] == "café crème"


async def test_bare_text_in_latin1(daemon):
    """RFC 2046 §4.1.2: the charset parameter of the SEND's own Content-Type."""
    body = "naïve façade".encode("latin-1")
    async with chat(daemon) as c:
        assert await c.send_whole(body, "latin1", "text/plain; charset=iso-8859-1") == 200
        got = await c.message(message_id="latin1")
        assert got["content"] == "naïve façade", got


@pytest.mark.parametrize(("written", "instant"), [
    # RFC 3339 §5.6 NOTE: "T" and "Z" may be lower case
    ("2026-07-10t09:47:31.25z", datetime.datetime(2026, 7, 10, 9, 47, 31, 250000,
                                                  tzinfo=datetime.UTC)),
    # RFC 3339 §4.3: -00:00, UTC with the local offset unknown
    ("2026-07-10T09:47:31-00:00", datetime.datetime(2026, 7, 10, 9, 47, 31,
                                                    tzinfo=datetime.UTC)),
    # RFC 3339 §5.6: any number of fraction digits
    ("2026-07-10T10:47:31.123456789+01:00", datetime.datetime(2026, 7, 10, 9, 47, 31, 123456,
                                                              tzinfo=datetime.UTC)),
])
async def test_cpim_dateTime_forms(daemon, written, instant):
    body = cpim_body(["From: <sip:probe@127.0.0.1>", "To: <sip:local@127.0.0.1>",
                      f"DateTime: {written}"], "text/plain", b"when?")
    async with chat(daemon) as c:
        assert await c.send_whole(body, "dtform1", "message/cpim") == 200
        got = await c.message(message_id="dtform1")
        assert got["content"] == "when?"
        assert datetime.datetime.fromisoformat(got["time"]) == instant, got["time"]


async def test_cpim_dateTime_with_a_leap_second_keeps_the_message(daemon):
    """RFC 3339 §5.7: a leap second (:60) is a valid time; the message is not lost for it."""
    body = cpim_body(["From: <sip:probe@127.0.0.1>", "To: <sip:local@127.0.0.1>",
                      "DateTime: 2016-12-31T23:59:60Z"], "text/plain", b"leap")
    async with chat(daemon) as c:
        assert await c.send_whole(body, "leap1", "message/cpim") == 200
        got = await c.message(message_id="leap1")
        assert got["content"] == "leap"
        moment = datetime.datetime.fromisoformat(got["time"])
        assert datetime.datetime(2016, 12, 31, 23, 59, 59, tzinfo=datetime.UTC) <= moment \
            <= datetime.datetime(2017, 1, 1, tzinfo=datetime.UTC), got["time"]


IMDN_NS = "urn:ietf:params:xml:ns:imdn"


IMDN_BODY = cpim_body([
    "From: Probe <sip:probe@127.0.0.1>", "To: <sip:local@127.0.0.1>",
    "NS: imdn <urn:ietf:params:imdn>", "imdn.Message-ID: Q5rTz8kLm2",
    "DateTime: 2026-07-10T09:47:31Z",
    "imdn.Disposition-Notification: positive-delivery"], "text/plain",
    b"please confirm delivery")


async def delivery_notification(c: Chat) -> tuple[str, bytes]:
    """The peer's CPIM message asking positive-delivery (RFC 5438 §6.2), and sipd's
    notification taken as the peer would (200, REPORT if asked): (its CPIM headers, its
    MIME part)."""
    t = tid()
    await c.send(send(t, c.ours, PEER_PATH, body=IMDN_BODY,
                      byte_range=f"1-{len(IMDN_BODY)}/{len(IMDN_BODY)}", message_id="imdnask1",
                      content_type="message/cpim"))
    assert (await c.wire.response(t)).code == 200
    got = await c.message()  # sipd names it by its imdn.Message-ID
    assert got["content"] == "please confirm delivery"
    notification = await c.wire.request("SEND")
    assert notification.header("Content-Type") == "message/cpim"
    wrapped = notification.body or b""
    await c.send(response(notification.tid, 200, "OK", PEER_PATH, c.ours))
    if notification.header("Success-Report") == "yes":
        size = len(wrapped)
        t2 = tid()
        await c.send("\r\n".join([
            f"MSRP {t2} REPORT", f"To-Path: {c.ours}", f"From-Path: {PEER_PATH}",
            f"Message-ID: {notification.header('Message-ID')}",
            f"Byte-Range: 1-{size}/{size}", "Status: 000 200 OK", f"-------{t2}$",
            ""]).encode())
    await c.settle()
    assert len(c.messages()) == 1  # the notification is no chat message
    head, _, mime = wrapped.partition(b"\r\n\r\n")
    return head.decode(), mime


async def test_imdn_delivery_notification_asked_by_the_peer(daemon):
    """RFC 5438 §7.2.1.1: asked positive-delivery, the recipient sends a message/imdn+xml
    document naming the imdn.Message-ID with <delivered/>, in message/cpim (§7.1.1), asking
    no notification of its own for it (§7.1.2)."""
    async with chat(daemon) as c:
        head, mime = await delivery_notification(c)
    assert "imdn.Disposition-Notification" not in head
    assert re.search(r"(?m)^NS: imdn <urn:ietf:params:imdn>\r?$", head), head
    assert re.search(r"(?m)^imdn\.Message-ID: \S+\r?$", head), head
    part_head, _, document = mime.partition(b"\r\n\r\n")
    assert re.search(rb"(?im)^content-type:\s*message/imdn\+xml", part_head), part_head
    assert re.search(rb"(?im)^content-disposition:\s*notification", part_head), part_head
    root = etree.fromstring(document)
    assert root.tag == f"{{{IMDN_NS}}}imdn"
    assert root.findtext(f"{{{IMDN_NS}}}message-id") == "Q5rTz8kLm2"
    status = root.find(f"{{{IMDN_NS}}}delivery-notification/{{{IMDN_NS}}}status")
    assert status is not None and status.find(f"{{{IMDN_NS}}}delivered") is not None


async def test_a_display_notification_when_the_user_saw_it(daemon):
    """RFC 5438 §7.2.1.2: asked `display`, the recipient sends <display-notification> with
    <displayed/> once the user saw the message (chat.displayed), and only then."""
    body = cpim_body([
        "From: <sip:probe@127.0.0.1>", "To: <sip:local@127.0.0.1>",
        "NS: imdn <urn:ietf:params:imdn>", "imdn.Message-ID: DsPly4411",
        "DateTime: 2026-07-10T09:47:31Z",
        "imdn.Disposition-Notification: display"], "text/plain", b"did you read this?")
    async with chat(daemon) as c:
        assert await c.send_whole(body, "dspl1", "message/cpim") == 200
        await c.message(message_id="DsPly4411")
        await c.settle()
        assert not [f for f in c.wire.frames if f.method == "SEND"]  # no delivery one asked
        await c.peer.call("chat.displayed", session=c.session, message_ids=["DsPly4411"])
        notification = await c.wire.request("SEND")
        await c.send(response(notification.tid, 200, "OK", PEER_PATH, c.ours))
        _, _, mime = (notification.body or b"").partition(b"\r\n\r\n")
        _, _, document = mime.partition(b"\r\n\r\n")
        root = etree.fromstring(document)
        assert root.findtext(f"{{{IMDN_NS}}}message-id") == "DsPly4411"
        status = root.find(f"{{{IMDN_NS}}}display-notification/{{{IMDN_NS}}}status")
        assert status is not None and status.find(f"{{{IMDN_NS}}}displayed") is not None


async def test_no_notification_to_a_peer_that_takes_none(daemon):
    """RFC 4975 §8.6: nothing is sent in a type (wrapped or not) the peer did not list; a
    peer without message/imdn+xml gets no IMDN, even when its message asked for one."""
    async with chat(daemon, accept="message/cpim text/plain", wrapped="text/plain") as c:
        t = tid()
        await c.send(send(t, c.ours, PEER_PATH, body=IMDN_BODY,
                          byte_range=f"1-{len(IMDN_BODY)}/{len(IMDN_BODY)}",
                          message_id="imdnno1", content_type="message/cpim"))
        assert (await c.wire.response(t)).code == 200
        await c.message()
        await c.settle()
        await trio.sleep(0.5)  # what would follow the message: give it its chance
        await c.settle()
        assert not [f for f in c.wire.frames if f.method == "SEND"]


async def test_sipd_sends_no_type_the_peer_did_not_list(daemon):
    """RFC 4975 §8.6: a chat whose peer takes text/plain only gets no text/html from sipd:
    chat.send refuses it (or fails it) and nothing goes on the wire."""
    async with chat(daemon, accept="text/plain", wrapped=None) as c:
        with pytest.raises(RpcCallError) as refused:
            await c.peer.call("chat.send", session=c.session, content="<b>x</b>",
                              content_type="text/html")
        assert "text/html" in str(refused.value), refused.value
        await c.settle()
        assert not [f for f in c.wire.frames if f.method == "SEND"]


async def test_imdn_goes_to_the_cpim_sender(daemon):
    async with chat(daemon) as c:
        head, _ = await delivery_notification(c)
    assert re.search(r"(?m)^To: .*<sip:probe@127\.0\.0\.1>", head), head


# -- a file pushed (RFC 5547) ------------------------------------------------------------------

FILE_PATH = "msrps://127.0.0.1:40556/probeFile9x;tcp"
FILE_NAME = "probe file with spaces.txt"
FILE_TYPE = 'text/plain;charset="UTF-8"'


def push_offer(data: bytes, digest_hex: str) -> str:
    """RFC 5547 §5/§9.1's push as its ABNF allows: sendonly, a quoted name with spaces, a
    type with a parameter, the size, the SHA-1 in uppercase hex pairs; a=file-transfer-id,
    a=file-disposition, a=file-date (RFC 5322 dates in quotes), a=file-icon (a cid: URL)."""
    selector = (f'name:"{FILE_NAME}" type:{FILE_TYPE} size:{len(data)} hash:sha-1:'
                + ":".join(digest_hex[i:i + 2] for i in range(0, len(digest_hex), 2)))
    return ("v=0\r\no=probe 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\n"
            "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=message 40556 TCP/TLS/MSRP *\r\n"
            "i=This is my latest picture\r\n"
            "a=sendonly\r\n"
            "a=accept-types:text/plain message/cpim\r\n"
            "a=accept-wrapped-types:*\r\n"
            f"a=path:{FILE_PATH}\r\na=setup:actpass\r\n"
            f"a=file-selector:{selector}\r\n"
            "a=file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd\r\n"
            "a=file-disposition:attachment\r\n"
            'a=file-date:creation:"Mon, 15 May 2006 15:01:31 +0300" '
            'modification:"Tue, 16 May 2006 08:12:00 -0700"\r\n'
            "a=file-icon:cid:id3@alicepc.example.com\r\n")


# one chunk: (offset of its first octet, octets it carries, its Byte-Range, its flag)
Plan = list[tuple[int, int, str, str]]


def scrambled(size: int) -> Plan:
    """2048-octet chunks in a scrambled order (RFC 4975 §7.3.1 lets them come in any)."""
    starts = list(range(0, size, 2048))
    order = starts[1::2] + starts[::2][::-1]  # odd ones up, even ones down
    assert sorted(order) == starts and order != starts
    plan = []
    for start in order:
        length = min(2048, size - start)
        plan.append((start, length, f"{start + 1}-{start + length}/{size}",
                     "$" if start + length == size else "+"))
    return plan


def unknown_sizes(size: int) -> Plan:
    """Scrambled 2048-octet chunks that all say `start-*/*` (RFC 4975 §7.1.1): only the
    `$` chunk tells where the message ends."""
    return [(start, length, f"{start + 1}-*/*", flag)
            for start, length, _, flag in scrambled(size)]


def interrupted(size: int) -> Plan:
    """In order, 2048-octet chunks, but the second stops after 1000 octets with `+` though
    its Byte-Range said 2049-4096 (RFC 4975 §7.1.1: an interrupted chunk), and the rest of
    its range follows in a chunk of its own."""
    plan = [(0, 2048, f"1-2048/{size}", "+"), (2048, 1000, f"2049-4096/{size}", "+"),
            (3048, 1048, f"3049-4096/{size}", "+")]
    for start in range(4096, size, 2048):
        length = min(2048, size - start)
        plan.append((start, length, f"{start + 1}-{start + length}/{size}",
                     "$" if start + length == size else "+"))
    return plan


async def push_file(daemon: Any, save: Any, data: bytes, digest_hex: str,
                    plan: Plan | None = None) -> tuple[dict[str, Any], dict[str, Any], Wire]:
    """The offer answered into `save`, the file sent as `plan` says (default: scrambled),
    every chunk answered: (session.new, the final file.transfer, the wire with what else
    sipd sent)."""
    async with open_peer(daemon, FILE_TOPICS) as peer, BlinkUac.bound() as uac, \
            trio.open_nursery() as nursery:
        sdp, session = await answered_call(peer, uac, nursery, push_offer(data, digest_hex),
                                           path=str(save))
        offered = peer.events.matching("session.new", id=session)[-1]
        assert "a=recvonly" in sdp, sdp
        # RFC 5547 §8.2: the answer repeats the selector and the transfer id
        assert sdp_attribute(sdp, "file-transfer-id") == "vBnG916bdberum2fFEABR1FR3ExZMUrd"
        assert f'name:"{FILE_NAME}"' in (sdp_attribute(sdp, "file-selector") or ""), sdp
        (ours,) = parse_path(sdp_attribute(sdp, "path") or "")
        async with Wire.open(ours.host, ours.effective_port) as wire:
            bind = tid()
            await wire.write(send(bind, str(ours), FILE_PATH, byte_range="1-0/0",
                                  message_id="fbind001"))
            assert (await wire.response(bind)).code == 200
            size = len(data)
            tids = []
            for start, length, byte_range, flag in plan or scrambled(size):
                t = tid()
                tids.append(t)
                await wire.write(send(
                    t, str(ours), FILE_PATH, body=data[start:start + length],
                    byte_range=byte_range, message_id="fileMsg0001", flag=flag,
                    headers=["Success-Report: yes", "Failure-Report: yes"],
                    content_type=FILE_TYPE))
            for t in tids:
                assert (await wire.response(t)).code == 200
            done = await peer.events.wait(
                "file.transfer", lambda e: e["state"] != "started", session=session)
            if done["state"] == "completed":
                report = await wire.request("REPORT", Message_ID="fileMsg0001")
                assert (report.header("Status") or "").startswith("000 200"), report
                assert report.header("Byte-Range") == f"1-{size}/{size}"
                await uac.bye(("127.0.0.1", peer.ports["udp"]))
                await peer.state(session, "ended")
            else:  # sipd ends it itself, failed with the reason
                ended = await peer.state(session, "failed")
                assert ended["reason"] == done["reason"], ended
        nursery.cancel_scope.cancel()
    return offered, done, wire


async def test_a_file_pushed_by_hand_in_scrambled_2048_byte_chunks(daemon, tmp_path):
    data = ("".join(chr(0x41 + (i * 7) % 26) + ("\n" if i % 61 == 60 else "")
                    for i in range(20_000)) + "é✓\n").encode()
    digest = hashlib.sha1(data).hexdigest().upper()
    save = tmp_path / "saved"
    save.mkdir()
    offered, done, _ = await push_file(daemon, save, data, digest)
    assert offered["file"]["name"] == FILE_NAME
    assert offered["file"]["size"] == len(data)
    assert offered["file"]["type"].replace(" ", "").lower().startswith("text/plain")
    assert digest.lower().replace(":", "") in offered["file"]["hash"].replace(":", "").lower()
    assert done["state"] == "completed", done
    assert os.listdir(save) == [FILE_NAME]
    saved = (save / FILE_NAME).read_bytes()
    assert saved == data
    assert hashlib.sha1(saved).hexdigest().upper() == digest


async def test_a_pushed_file_whose_hash_does_not_match_fails(daemon, tmp_path):
    """RFC 5547 §8.1/§10: the hash identifies the file; bytes that do not give it are not
    the file offered: the transfer fails and no file of that name is left complete."""
    data = os.urandom(9000)
    wrong = hashlib.sha1(data + b"x").hexdigest().upper()
    save = tmp_path / "saved"
    save.mkdir()
    _, done, _ = await push_file(daemon, save, data, wrong)
    assert done["state"] == "failed", done
    assert "hash" in done["reason"], done
    assert not (save / FILE_NAME).exists() or (save / FILE_NAME).read_bytes() != data


async def test_a_pushed_file_with_an_interrupted_chunk(daemon, tmp_path):
    """RFC 4975 §7.1.1: the receiver takes the octets an interrupted chunk carried (not what
    its Byte-Range promised) and the rest from the next chunk: the file is whole."""
    data = os.urandom(10_000)
    digest = hashlib.sha1(data).hexdigest().upper()
    save = tmp_path / "saved"
    save.mkdir()
    _, done, _ = await push_file(daemon, save, data, digest, interrupted(len(data)))
    assert done["state"] == "completed", done
    assert (save / FILE_NAME).read_bytes() == data


async def test_a_body_holding_another_transactions_end_line(daemon):
    """RFC 4975 §7.1.1: only the end-line of the chunk's own transaction ends it; a body may
    hold another's (or a bare `-------`), and the frame may come in small pieces."""
    async with chat(daemon) as c:
        t = "Xy9" + uuid.uuid4().hex[:17]
        body = (b"see:\r\n-------abcdef0123456789$\r\nand\r\n-------" + t[:-1].encode()
                + b"+\r\n-------\r\nend")
        frame = send(t, c.ours, PEER_PATH, body=body, byte_range=f"1-{len(body)}/{len(body)}",
                     message_id="endline1", content_type="text/plain")
        for offset in range(0, len(frame), 7):
            await c.send(frame[offset:offset + 7])  # one TLS record each
        assert (await c.wire.response(t)).code == 200
        got = await c.message(message_id="endline1")
        assert got["content"] == body.decode()


@dataclass
class PassiveCall:
    """A chat sipd answered active to an offer saying a=setup:passive: the peer's listener
    sipd will connect to, sipd's answer and the session."""

    peer: DaemonPeer
    mark: int
    listener: trio.SocketListener
    path: str
    answer_sdp: str
    session: str


@asynccontextmanager
async def passive_offer_call(daemon, name: str, fingerprint: str) -> AsyncIterator[PassiveCall]:
    """Offers sipd a TLS chat with a=setup:passive and `fingerprint`, answered over RPC."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    path = f"msrps://127.0.0.1:{port}/{name};tcp"
    offer = ("v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
             f"t=0 0\r\nm=message {port} TCP/TLS/MSRP *\r\na=accept-types:text/plain\r\n"
             f"a=path:{path}\r\na=setup:passive\r\na=fingerprint:{fingerprint}\r\n")
    try:
        async with open_peer(daemon, TOPICS) as peer, BlinkUac.bound() as uac, \
                trio.open_nursery() as nursery:
            mark = peer.events.mark()
            sdp, session = await answered_call(peer, uac, nursery, offer)
            yield PassiveCall(peer, mark, listeners[0], path, sdp, session)
            nursery.cancel_scope.cancel()
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_an_offer_that_says_passive_makes_sipd_connect(daemon, tmp_path):
    """RFC 6135 §4 / RFC 4145 §4.1: the offer says a=setup:passive (with its certificate's
    a=fingerprint, RFC 4572), so sipd answers active and connects over TLS; RFC 4975 §5.4:
    the active side's first request (a SEND, empty or not) binds the connection. Then the
    peer's message comes back over that connection."""
    context, fingerprint = probe_certificate(tmp_path)
    async with passive_offer_call(daemon, "passivePeer1", fingerprint) as call:
        peer, path = call.peer, call.path
        assert sdp_attribute(call.answer_sdp, "setup") == "active", call.answer_sdp
        (ours,) = parse_path(sdp_attribute(call.answer_sdp, "path") or "")
        with trio.fail_after(30):
            tcp = await call.listener.accept()
        async with trio.SSLStream(tcp, context, server_side=True) as stream:
            wire = Wire(stream)
            first = await wire.next(lambda f: f.method is not None or f.code is not None)
            assert first.method == "SEND", first
            assert first.header("To-Path") == path and first.header("From-Path") == str(ours)
            await wire.write(response(first.tid, 200, "OK", str(ours), path))
            t = tid()
            await wire.write(send(t, str(ours), path, body=b"over sipd's connection",
                                  byte_range="1-22/22", message_id="passive1",
                                  content_type="text/plain"))
            assert (await wire.response(t)).code == 200
            got = await peer.events.wait("chat.message", since=call.mark, session=call.session,
                                         message_id="passive1")
            assert got["content"] == "over sipd's connection"
            await peer.call("sessions.end", id=call.session)
            await peer.state(call.session, "ended")


async def test_sipd_as_the_active_side_refuses_a_certificate_not_fingerprinted(
        daemon, tmp_path):
    """RFC 4975 §14.2 (with RFC 4572 §5/§6.2): the certificate the passive peer shows must
    match the offer's a=fingerprint; sipd sends nothing over a connection whose certificate
    does not, and the chat does not come up as working."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    context, _ = probe_certificate(tmp_path / "a")
    _, other = probe_certificate(tmp_path / "b")
    async with passive_offer_call(daemon, "wrongCert1", other) as call:
        assert sdp_attribute(call.answer_sdp, "setup") == "active"
        received = b""
        with trio.fail_after(30):
            tcp = await call.listener.accept()
        stream = trio.SSLStream(tcp, context, server_side=True)
        try:
            with trio.move_on_after(5):
                while data := await stream.receive_some(65536):
                    received += data
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # sipd broke the handshake off: what it should do
        finally:
            await tcp.aclose()
        assert b"MSRP " not in received, received[:200]
        with trio.fail_after(30):
            await call.peer.events.wait("session.state",
                                        lambda e: e["state"] in ("ended", "failed"),
                                        since=call.mark, id=call.session)
        assert not call.peer.events.matching("chat.message", since=call.mark,
                                             session=call.session)


async def test_a_pushed_file_whose_chunks_say_no_end_and_no_total(daemon, tmp_path):
    data = os.urandom(12_345)
    digest = hashlib.sha1(data).hexdigest().upper()
    save = tmp_path / "saved"
    save.mkdir()
    _, done, _ = await push_file(daemon, save, data, digest, unknown_sizes(len(data)))
    assert done["state"] == "completed", done
    assert done["size"] == len(data)
    assert (save / FILE_NAME).read_bytes() == data
