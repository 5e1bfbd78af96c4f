"""Pager-mode messages between two real sipd daemons and no server at all.

Each daemon has only its built-in `local` account; a MESSAGE goes straight to
sip:local@127.0.0.1:<port> (UDP) or ...;transport=tcp. Everything is driven over RPC, the way a
client does it; a raw UDP socket plays a sender that sends what sipd does not take.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from sipctl.client import RpcCallError
from sipd.sip.builder import warning_value
from tests.harness.peer import open_peer
from tests.harness.process import SipdProcess
from tests.peers.ports import free_port

TEXT = "héllo ✓ — direct"


# the daemons of tests/harness/fixtures.py, without media settings; connections see messages
DAEMON_SETTINGS: dict[str, Any] = {}
PEER_TOPICS = ("messages",)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_local_to_local_direct(a, b, transport):
    to = b.uri(transport)

    result = await a.send(to, TEXT)

    assert result["code"] == 200 and result["delivered"] is True
    received = await b.event("message.received", content=TEXT)
    assert received["account"] == "local"
    assert received["from"] == a.uri(transport)  # from its own address, for replies
    assert received["to"] == to
    assert received["content_type"] == "text/plain"
    assert "cpim" not in received
    delivery = await a.event("message.delivery", id=result["id"])
    assert delivery == {"account": "local", "to": to, **result}


async def test_reply_goes_the_other_way(a, b):
    """Both daemons take and send: b answers a at the address a's MESSAGE came from."""
    await a.send(b.uri("tcp"), "ping")
    received = await b.event("message.received", content="ping")

    result = await b.send(received["from"], "pong")

    assert result["delivered"] is True
    assert (await a.event("message.received", content="pong"))["from"] == b.uri("tcp")


async def test_tcp_only_daemon_is_answered_over_tcp(tmp_path, a):
    """A daemon without UDP writes from a TCP address, so a reply to its From reaches it."""
    daemon = SipdProcess(tmp_path, {"sip.transport_list": ["tcp"]}, name="tcp-only").start()
    try:
        async with open_peer(daemon, PEER_TOPICS) as tcp_only:
            assert set(tcp_only.ports) == {"tcp"}

            await tcp_only.send(a.uri("tcp"), "over TCP only")
            received = await a.event("message.received", content="over TCP only")
            assert received["from"] == tcp_only.uri("tcp")

            assert (await a.send(received["from"], "reply"))["delivered"] is True
            await tcp_only.event("message.received", content="reply")
    finally:
        daemon.stop()


async def test_shorthand_recipient_without_scheme(a, b):
    result = await a.send(f"local@127.0.0.1:{b.ports['udp']}", "no scheme")

    assert result["delivered"] is True
    await b.event("message.received", content="no scheme")


async def test_cpim_wrapped_message_shows_its_headers(a, b):
    result = await a.send(b.uri("tcp"), TEXT, cpim=True)

    assert result["delivered"] is True
    received = await b.event("message.received", content=TEXT)
    assert received["content_type"] == "text/plain"  # of the message inside the envelope
    cpim = received["cpim"]
    assert cpim["from"] == f"<{a.uri('tcp')}>"
    assert cpim["to"] == [f"<{b.uri('tcp')}>"]
    assert cpim["datetime"]  # RFC 3862 DateTime, set by the sender


async def test_unknown_user_gets_404(a, b):
    to = b.uri("udp", user="nobody")

    result = await a.send(to, TEXT)

    assert result["code"] == 404 and result["delivered"] is False
    delivery = await a.event("message.delivery", id=result["id"])
    assert delivery["to"] == to and delivery["code"] == 404 and delivery["delivered"] is False


async def test_unreachable_port_is_not_delivered(a):
    """TCP to a port nobody listens on fails at once (over UDP it would take Timer F, 32 s)."""
    to = f"sip:local@127.0.0.1:{free_port()};transport=tcp"

    result = await a.send(to, TEXT)

    assert result["delivered"] is False and result["code"] == 503  # RFC 3261 §8.1.3.1
    assert "refused" in result["reason"].lower()
    delivery = await a.event("message.delivery", id=result["id"])
    assert delivery["delivered"] is False and delivery["reason"] == result["reason"]


async def test_a_large_message_goes_over_tcp(a, b):
    """RFC 3261 §18.1.1: a request over 1300 bytes to a URI that names no transport is sent
    over TCP (to the same address and port), not fragmented over UDP."""
    text = "long " * 2000
    log_start = len(a.daemon.log())
    result = await a.send(b.uri("udp"), text)
    assert result["delivered"] is True
    assert (await b.event("message.received", content=text))["content"] == text
    sent = [line for line in a.daemon.log()[log_start:].splitlines()
            if f"sending MESSAGE {b.uri('udp')} to" in line]
    assert sent and "<Hop tcp" in sent[0], sent


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_composing_both_ways(a, b, transport):
    result = await a.composing(b.uri(transport), "active")

    assert result["delivered"] is True
    active = await b.event("message.composing")
    assert active["state"] == "active" and active["from"] == a.uri(transport)
    assert active["refresh"] and active["content_type"] == "text/plain"

    await b.composing(a.uri(transport), "active")
    assert (await a.event("message.composing"))["state"] == "active"
    await b.composing(a.uri(transport), "idle")
    idle = await a.event("message.composing")
    assert idle["state"] == "idle" and idle["from"] == b.uri(transport)


async def test_text_html(a, b):
    html = "<p>héllo <b>✓</b></p>"

    result = await a.send(b.uri("udp"), html, content_type="text/html")

    assert result["code"] == 200, result
    received = await b.event("message.received", content=html)
    assert received["content_type"] == "text/html"


async def test_invalid_requests_are_refused_by_rpc(a):
    with pytest.raises(RpcCallError) as bad_to:
        await a.send("tel:+15551234", TEXT)
    assert bad_to.value.data["field"] == "to"
    with pytest.raises(RpcCallError) as bad_type:
        await a.send(a.uri(), TEXT, content_type="text/plain;charset=x-no-such-charset")
    assert bad_type.value.data["field"] == "content"
    with pytest.raises(RpcCallError) as unknown_account:
        await a.rpc.call("messages.send", {"account": "nobody", "to": a.uri(), "content": "x"})
    assert "nobody" in str(unknown_account.value)


# -- a raw sender -----------------------------------------------------------------------------

def raw_message(port: int, local_port: int, content_type: str, body: bytes) -> bytes:
    call_id = uuid.uuid4().hex
    head = (
        f"MESSAGE sip:local@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{call_id[:12]};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:raw@127.0.0.1:{local_port}>;tag={call_id[:8]}\r\n"
        f"To: <sip:local@127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 MESSAGE\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def send_raw(port: int, content_type: str, body: bytes) -> tuple[str, dict[str, str]]:
    """Send one MESSAGE from a plain UDP socket; the status line and headers of the answer."""
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        local_port = sock.getsockname()[1]
        await sock.sendto(raw_message(port, local_port, content_type, body), ("127.0.0.1", port))
        with trio.fail_after(5):
            data = await sock.recv(65535)
    head = data.decode("utf-8", "replace").split("\r\n\r\n", 1)[0].split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return head[0], headers


@pytest.mark.parametrize("content_type, body, status, warning", [
    ("application/octet-stream", b"\x00\x01", "415", None),  # refused by the stack
    ("text/plain;charset=x-no-such-charset", b"hi", "415", "x-no-such-charset"),  # the pager
    ("text/plain;charset=utf-8", b"\xff\xfe broken", "400", "utf-8"),
    ("message/cpim", b"not a CPIM envelope", "400", "CPIM"),
], ids=["unknown-type", "unknown-charset", "bad-utf-8", "bad-cpim"])
async def test_raw_sender_gets_refusals(b, content_type, body, status, warning):
    status_line, headers = await send_raw(b.ports["udp"], content_type, body)

    assert status_line.startswith(f"SIP/2.0 {status} "), status_line
    if status == "415":
        accepted = [t.strip() for t in headers["accept"].split(",")]
        assert {"text/plain", "message/cpim",
                "application/im-iscomposing+xml"} <= set(accepted)
    if warning:  # why, for the sender's user
        assert headers["warning"].startswith("399 ") and warning in headers["warning"]
    # nothing was published for it: the next message event is the one sent after it
    status_line, _ = await send_raw(b.ports["udp"], "text/plain", b"after the refusal")
    assert status_line.startswith("SIP/2.0 200 ")
    (first,) = await b.wait_until(lambda: b.events.seen[:1], what="a message event")
    assert first["name"] == "message.received"
    assert first["data"]["content"] == "after the refusal"


def test_warning_value_is_one_quoted_string():
    assert warning_value('bad "x" \\ here\r\nnext') == r'399 sipd "bad \"x\" \\ here  next"'
    long = warning_value("é" * 500)
    assert long.endswith('…"') and len(long) < 220


async def test_active_composing_lapses_without_refresh(b):
    """RFC 3994 §3.3: an `active` whose refresh interval passes without a new indication
    (or a message) becomes idle on its own."""
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
            b'<state>active</state><contenttype>text/plain</contenttype>'
            b'<refresh>1</refresh></isComposing>')
    status_line, _ = await send_raw(b.ports["udp"], "application/im-iscomposing+xml", body)
    assert status_line.startswith("SIP/2.0 200 ")
    active = await b.event("message.composing", state="active")
    assert active["refresh"] == 1 and active["reason"] == "indication"
    idle = await b.event("message.composing", state="idle")
    assert idle["reason"] == "timeout" and idle["from"] == active["from"]


async def test_a_message_ends_composing(a, b):
    await a.composing(b.uri("udp"), "active")
    await b.event("message.composing", state="active")
    await a.send(b.uri("udp"), "done typing")
    await b.event("message.received", content="done typing")
    idle = await b.event("message.composing", state="idle")
    assert idle["reason"] == "message"
