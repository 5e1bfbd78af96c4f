"""A WebSocket MSRP client (RFC 7977; CrocMSRP, JsSIP-based web clients) behind an MSRP relay
calls sipd with a chat: its a=path is the relay's URI over tcp, then its own over `;ws` with
an `.invalid` host. sipd reaches only the first hop, so the line is taken (not refused for
the `ws` of a URI it never connects to); the relay connects to sipd (no a=setup: the offerer
connects, RFC 4975), and messages go both ways along that path."""

from __future__ import annotations

import trio

from sipd.msrp.message import MsrpRequest
from sipd.msrp.uri import parse_path
from tests.harness.peer import daemon_settings, open_peer
from tests.harness.process import running
from tests.sessions.blink_peer import BlinkUac, MsrpWire, answered_call, hex_id, sdp_attribute

RELAY = "msrp://127.0.0.1:9000/581f653-7ff-12;tcp"
CLIENT = "msrp://flye3x3q.invalid:2855/lah55ri27l;ws"
OFFER = ("v=0\r\no=bob 3647604938 3647604938 IN IP4 127.0.0.1\r\ns=\r\n"
         "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 2855 TCP/MSRP *\r\n"
         "a=accept-types:text/plain\r\n"
         f"a=path:{RELAY} {CLIENT}\r\n")


async def test_a_websocket_client_behind_a_relay_chats(tmp_path):
    settings = {**daemon_settings(), "msrp.transport": "tcp"}
    with running(tmp_path, settings, names=("sipd",)) as (daemon,):
        async with open_peer(daemon, ("sessions", "chat")) as peer, \
                BlinkUac.bound() as caller, trio.open_nursery() as nursery:
            mark = peer.events.mark()
            sdp, session = await answered_call(peer, caller, nursery, OFFER)
            assert peer.events.matching("session.new", id=session)[-1]["streams"] == ["chat"]
            assert "m=message 0 " not in sdp, sdp  # taken, not refused
            assert sdp_attribute(sdp, "setup") == "passive"
            (ours,) = parse_path(sdp_attribute(sdp, "path") or "")
            await peer.state(session, "established")

            # the relay's connection to sipd, carrying the client's message
            async with MsrpWire.open(ours.host, ours.effective_port, tls=False) as relay:
                tid = hex_id()
                await relay.write(
                    f"MSRP {tid} SEND\r\nTo-Path: {ours}\r\nFrom-Path: {RELAY} {CLIENT}\r\n"
                    f"Message-ID: 3560751376.r8igluab\r\nByte-Range: 1-12/12\r\n"
                    f"Content-Type: text/plain\r\n\r\nhello via ws\r\n-------{tid}$\r\n"
                    .encode())
                answer = await relay.response(tid)
                assert answer.code == 200
                assert answer.headers.get("To-Path") == RELAY  # the first hop back
                got = await peer.events.wait("chat.message", session=session, since=mark)
                assert got["content"] == "hello via ws"

                await peer.call("chat.send", session=session, content="hello back")
                request = await relay.request("SEND")
                assert isinstance(request, MsrpRequest)
                assert request.headers.get("To-Path") == f"{RELAY} {CLIENT}"
                assert request.headers.get("Content-Type") == "text/plain"
                assert request.body == b"hello back"
                await relay.answer(request)
                await peer.call("sessions.end", id=session)
                await peer.state(session, "ended")
            nursery.cancel_scope.cancel()
