"""What other MSRP chat clients put on the wire, byte for byte, fed to a sans-I/O MSRP session
and the chat conversation above it (facts learnt from reading their sources):

- msrp-node-lib sends a message `HEARTBEAT` of type text/x-msrp-heartbeat every 5 s to a peer
  whose accept-types take text/* or * (ours do), with both reports asked, and gives the
  session up when no 200 comes: answered, never shown to the user;
- Blink (python-sipsimple) wraps its text in CPIM whose MIME part Python's email package wrote
  (bare LF line ends, MIME-Version first, `charset="utf8"`), and names the content type of
  its is-composing `text`."""

from __future__ import annotations

import datetime

from sipd.chat.conversation import Arrived, ChatConversation, ComposingChanged
from sipd.chat.payload import LOCAL_ACCEPT_TYPES, ChatPayloads
from sipd.messages.cpim import CPIMIdentity
from sipd.msrp.session import MsrpSession
from sipd.msrp.uri import parse_uri

WHEN = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.UTC)
US = parse_uri("msrp://127.0.0.1:7002/us000002;tcp")
THEM = parse_uri("msrp://10.0.0.5:2855/0a1b2c3d4e5f;tcp")


def conversation(accept_types: list[str], wrapped: list[str]) -> ChatConversation:
    return ChatConversation(ChatPayloads(
        CPIMIdentity("sip:us@example.com"), CPIMIdentity("sip:them@example.com"),
        accept_types=accept_types, accept_wrapped_types=wrapped))


def feed(frames: list[bytes], chat: ChatConversation) -> tuple[list[object], bytes]:
    """What the conversation makes of `frames`, and what our session answers."""
    session = MsrpSession([US], [THEM], active=False, accept_types=LOCAL_ACCEPT_TYPES)
    for frame in frames:
        session.receive_data(frame, 0.0)
    out: list[object] = []
    for event in session.events():
        out += chat.on_msrp(event, now=0.0, wall=WHEN)
    return out, session.data_to_send(0.0)


def test_msrp_node_libs_heartbeat_is_answered_and_not_shown():
    # its ChunkSender: lower-case header names, both reports, an inline disposition
    heartbeat = (f"MSRP a8f3k2l1 SEND\r\nto-path: {US}\r\nfrom-path: {THEM}\r\n"
                 "message-id: 9h1kf8sl2a\r\nsuccess-report: yes\r\nfailure-report: yes\r\n"
                 "byte-range: 1-9/9\r\ncontent-disposition: inline\r\n"
                 "content-type: text/x-msrp-heartbeat\r\n\r\nHEARTBEAT\r\n"
                 "-------a8f3k2l1$\r\n").encode()
    chat = conversation(["text/plain", "text/x-msrp-heartbeat"], [])
    out, answer = feed([heartbeat], chat)
    assert out == []  # no chat.message
    assert answer.startswith(b"MSRP a8f3k2l1 200 OK\r\n")  # it counts on this 200
    assert b"REPORT" in answer and b"Status: 000 200 OK" in answer
    # a real message from it is still one
    text = heartbeat.replace(b"text/x-msrp-heartbeat", b"text/plain").replace(
        b"HEARTBEAT", b"hello pal")
    out, _ = feed([text], conversation(["text/plain"], []))
    assert [type(item) for item in out] == [Arrived]


def test_blinks_cpim_and_composing_are_read():
    cpim = ("From: Alice <sip:alice@example.com>\r\nTo: <sip:us@example.com>\r\n"
            "DateTime: 2026-07-10T09:47:31.123456+00:00\r\n\r\n"
            'MIME-Version: 1.0\nContent-Type: text/plain; charset="utf8"\n\n'
            "hello é").encode()
    composing = (b"From: Alice <sip:alice@example.com>\r\nTo: <sip:us@example.com>\r\n"
                 b"DateTime: 2026-07-10T09:47:32.000001+00:00\r\n\r\n"
                 b"MIME-Version: 1.0\nContent-Type: application/im-iscomposing+xml\n\n"
                 b"<?xml version='1.0' encoding='UTF-8'?>\n<isComposing "
                 b'xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state>'
                 b"<contenttype>text</contenttype><refresh>60</refresh></isComposing>")

    def send(tid: str, body: bytes, reports: str) -> bytes:
        return (f"MSRP {tid} SEND\r\nTo-Path: {US}\r\nFrom-Path: {THEM}\r\n"
                f"Byte-Range: 1-{len(body)}/{len(body)}\r\nMessage-ID: {tid}m\r\n"
                f"Failure-Report: {reports}\r\nSuccess-Report: {reports}\r\n"
                f"Content-Type: message/cpim\r\n\r\n").encode() + body + \
            f"\r\n-------{tid}$\r\n".encode()

    chat = conversation(["message/cpim", "text/*", "image/*", "application/im-iscomposing+xml"],
                        ["text/*", "image/*", "application/im-iscomposing+xml"])
    out, answer = feed([send("3f2a9b1c0d4e5f60", composing, "no"),
                        send("3f2a9b1c0d4e5f61", cpim, "yes")], chat)
    composing_changed, stopped, arrived = out
    assert isinstance(composing_changed, ComposingChanged)
    assert composing_changed.state == "active"
    assert composing_changed.sender == "sip:alice@example.com"
    assert isinstance(stopped, ComposingChanged) and stopped.state == "idle"  # a message came
    assert isinstance(arrived, Arrived)
    assert arrived.text.content.decode("utf8") == "hello é"
    assert arrived.text.sender == "sip:alice@example.com"
    assert b"MSRP 3f2a9b1c0d4e5f60" not in answer  # Failure-Report no: no response
    assert b"MSRP 3f2a9b1c0d4e5f61 200 OK" in answer


def test_blinks_otr_query_is_not_shown():
    """python-sipsimple opens every chat with an OTR query (text/plain in CPIM, no reports
    asked); sipd does not do OTR: nothing for the user, and Blink goes on in clear."""
    query = (b"?OTRv3?  I would like to start an Off-the-Record private conversation, but "
             b"you do not seem to support that.")
    body = (b"From: Alice <sip:alice@example.com>\r\nTo: <sip:us@example.com>\r\n"
            b"DateTime: 2026-07-10T09:47:31.123456+00:00\r\n\r\n"
            b'MIME-Version: 1.0\nContent-Type: text/plain; charset="utf8"\n\n' + query)
    frame = (f"MSRP 5a4b3c2d1e0f SEND\r\nTo-Path: {US}\r\nFrom-Path: {THEM}\r\n"
             f"Byte-Range: 1-{len(body)}/{len(body)}\r\nMessage-ID: 77aa88bb99cc\r\n"
             "Failure-Report: no\r\nSuccess-Report: no\r\n"
             "Content-Type: message/cpim\r\n\r\n").encode() + body + \
        b"\r\n-------5a4b3c2d1e0f$\r\n"
    chat = conversation(["message/cpim", "text/*"], ["text/*"])
    out, answer = feed([frame], chat)
    assert out == [] and answer == b""
    # the same words from a person are a message
    out, _ = feed([frame.replace(b"?OTRv3?  I", b"So, then I")], chat)
    assert [type(item) for item in out] == [Arrived]
