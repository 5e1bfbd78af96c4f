"""Blink (python-sipsimple, msrplib) calls sipd with a chat, over TLS as it does by default:
its offer says a=setup:actpass and gives no a=fingerprint, so sipd answers passive (it could
not check Blink's certificate as the side that connects) and Blink connects. Then Blink's own
bytes: the binding empty SEND, its OTR query (not shown to the user), a CPIM message written
by Python's email package (bare LFs, `charset="utf8"`), a keep-alive with `Keep-Alive: yes`,
an is-composing naming the content type `text`; and what sipd sends must be what msrplib
reads (Status `000 200 OK`, a REPORT whose Byte-Range ends at the total, CPIM with CRLF CRLF
before its MIME part)."""

from __future__ import annotations

import trio

from sipd.msrp.message import MsrpResponse
from sipd.msrp.uri import parse_path
from tests.files.raw_peer import RawUas
from tests.harness.peer import open_peer
from tests.sessions.blink_peer import (
    COMPOSING,
    OTR_QUERY,
    BlinkUac,
    MsrpWire,
    answered_call,
    chat_offer,
    cpim,
    hex_id,
    sdp_attribute,
    send_frame,
)

BLINK_PATH = "msrps://127.0.0.1:40123/9f3e1c2b7a6d5e4f3a2b;tcp"
TOPICS = ("sessions", "chat")


async def test_blink_calls_with_a_chat_over_tls_without_a_fingerprint(daemon):
    async with open_peer(daemon, TOPICS) as peer:
        await blink_chats_with(peer)


async def blink_chats_with(peer):
    mark = peer.events.mark()
    target = peer.uri()
    async with BlinkUac.bound() as blink, trio.open_nursery() as nursery:
        sdp, session = await answered_call(peer, blink, nursery,
                                           chat_offer(BLINK_PATH, 40123))
        assert peer.events.matching("session.new", id=session)[-1]["streams"] == ["chat"]
        assert sdp_attribute(sdp, "setup") == "passive", sdp  # Blink connects
        assert "m=message" in sdp and "TCP/TLS/MSRP" in sdp
        (ours,) = parse_path(sdp_attribute(sdp, "path") or "")
        await peer.state(session, "established")

        async with MsrpWire.open(ours.host, ours.effective_port, tls=True) as wire:
            # msrplib's bind: an empty SEND without a Content-Type, answered 200
            await wire.bind(str(ours), BLINK_PATH)

            # the OTR query python-sipsimple sends first: not a message for the user
            await wire.write(send_frame(
                str(ours), BLINK_PATH, content_type="message/cpim", reports="no",
                data=cpim("Alice <sip:alice@127.0.0.1>", f"<{target}>", "text/plain",
                          OTR_QUERY, charset="utf8")))
            # a message, as Blink's chat stream writes it
            body = cpim("Alice <sip:alice@127.0.0.1>", f"<{target}>", "text/plain",
                        "hello from Blink é".encode(), charset="utf8")
            message_id, tid = hex_id(), hex_id()
            await wire.write(send_frame(str(ours), BLINK_PATH, data=body,
                                        content_type="message/cpim", message_id=message_id,
                                        reports="yes", tid=tid))
            response = await wire.response(tid)
            assert response.code == 200 and response.comment == "OK"
            report = await wire.request("REPORT")
            # what msrplib reads: Status 000 <code> <comment>, a Byte-Range ending at the total
            assert report.headers.get("Status") == "000 200 OK"
            assert report.headers.get("Message-ID") == message_id
            assert report.headers.get("Byte-Range") == f"1-{len(body)}/{len(body)}"
            got = await peer.events.wait("chat.message", session=session, since=mark)
            assert got["content"] == "hello from Blink é"
            assert got["from"] == "sip:alice@127.0.0.1"

            # its keep-alive: answered, and no message
            keepalive = hex_id()
            await wire.write(send_frame(str(ours), BLINK_PATH, tid=keepalive,
                                        extra=(("Keep-Alive", "yes"),)))
            assert (await wire.response(keepalive)).code == 200

            # is-composing, wrapped, no reports asked
            await wire.write(send_frame(
                str(ours), BLINK_PATH, content_type="message/cpim", reports="no",
                data=cpim("Alice <sip:alice@127.0.0.1>", f"<{target}>",
                          "application/im-iscomposing+xml", COMPOSING)))
            composing = await peer.events.wait("chat.composing", session=session, since=mark)
            assert composing["state"] == "active"

            # sipd writes to Blink: what msrplib and python-sipsimple's CPIM reader need
            sent = await peer.call("chat.send", session=session, content="hi Blink")
            request = await wire.request("SEND")
            assert request.headers.get("Content-Type") == "message/cpim"
            assert request.headers.get("To-Path") == BLINK_PATH
            wrapped = request.body or b""
            head, separator, mime = wrapped.partition(b"\r\n\r\n")
            assert separator and b"From: <" in head and b"To: <sip:blink@" in head
            assert b"Content-Type: text/plain" in mime and mime.endswith(b"hi Blink")
            # python-sipsimple lists no message/imdn+xml (it 413s a CPIM wrapping one): no
            # notification is asked of it; ASCII text goes as bare text/plain
            assert b"Disposition-Notification" not in head, head
            assert mime.startswith(b"Content-Type: text/plain\r\n\r\n"), mime
            await wire.answer(request)
            if request.headers.get("Success-Report") == "yes":
                await wire.report(request)
            await peer.events.wait("chat.delivery", session=session,
                                   message_id=sent["message_id"], status="delivered")
            assert not [f for f in wire.frames if isinstance(f, MsrpResponse) and f.code != 200]
            assert len(peer.events.matching("chat.message", session=session)) == 1

            await peer.call("sessions.end", id=session)
            await peer.state(session, "ended")
        nursery.cancel_scope.cancel()


async def test_sipd_calls_blink_with_a_chat_over_tls(daemon):
    """sipd offers (actpass, its a=fingerprint); Blink answers active with no a=fingerprint
    and connects, as python-sipsimple does when called; the chat works both ways."""
    async with open_peer(daemon, TOPICS) as peer, RawUas.bound() as uas, \
            trio.open_nursery() as nursery:
        mark = peer.events.mark()
        started = await peer.call("sessions.start", account="local", to=uas.uri,
                                  streams=["chat"])
        session = started["id"]
        invite = await uas.invite()
        assert sdp_attribute(invite.body, "setup") == "actpass"
        assert sdp_attribute(invite.body, "fingerprint")
        (ours,) = parse_path(invite.attributes["path"])
        await uas.answer(invite, chat_offer(BLINK_PATH, 2855, setup="active"))
        nursery.start_soon(uas.serve_byes)
        await peer.state(session, "established")

        async with MsrpWire.open(ours.host, ours.effective_port, tls=True) as wire:
            await wire.bind(str(ours), BLINK_PATH)
            body = cpim("Alice <sip:alice@127.0.0.1>", "<sip:local@127.0.0.1>", "text/html",
                        b"<p>hi <b>sipd</b></p>", charset="utf8")
            tid = hex_id()
            await wire.write(send_frame(str(ours), BLINK_PATH, data=body,
                                        content_type="message/cpim", reports="yes", tid=tid))
            assert (await wire.response(tid)).code == 200
            assert (await wire.request("REPORT")).headers.get("Status") == "000 200 OK"
            got = await peer.events.wait("chat.message", session=session, since=mark)
            assert got["content"] == "<p>hi <b>sipd</b></p>"  # Blink writes text/html
            assert got["content_type"].startswith("text/html")

            sent = await peer.call("chat.send", session=session, content="hello Blink")
            request = await wire.request("SEND")
            assert request.headers.get("Content-Type") == "message/cpim"
            assert (request.body or b"").endswith(b"hello Blink")
            await wire.answer(request)
            await peer.events.wait("chat.delivery", session=session,
                                   message_id=sent["message_id"], status="delivered")
            await peer.call("sessions.end", id=session)
            await peer.state(session, "ended")
        nursery.cancel_scope.cancel()
