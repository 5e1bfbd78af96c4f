"""Blink (python-sipsimple) asks to see sipd's screen, over TLS as it does by default: its
offer (m=application, application/x-rfb, a=rfbsetup:active, actpass, no a=fingerprint) is
answered passive and sharing, sipd bridges to the VNC server given (here a stand-in that
speaks the first RFB bytes), and the RFB bytes travel both ways as Blink writes and reads
them: each of its writes a message of its own (`1-*/N` past 2048 bytes, Failure-Report
partial, no success report), each of ours of Content-Type exactly application/x-rfb (Blink
compares the header as a string)."""

from __future__ import annotations

import os

import trio

from sipd.msrp.uri import parse_path
from tests.harness.peer import open_peer
from tests.sessions.blink_peer import (
    BlinkUac,
    MsrpWire,
    answered_call,
    rfb_frame,
    screen_offer,
    sdp_attribute,
)

BLINK_PATH = "msrps://127.0.0.1:40127/5e6f708192a3b4c5d6e7;tcp"
GREETING = b"RFB 003.008\n"


async def test_blink_views_sipds_screen_over_tls(daemon):
    from_blink = os.urandom(5000)  # a write past 2048 bytes: Byte-Range 1-*/5000
    async with open_peer(daemon, ("sessions",)) as peer, BlinkUac.bound() as blink, \
            trio.open_nursery() as nursery:
        vnc_listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        vnc_port = vnc_listeners[0].socket.getsockname()[1]
        vnc_got = bytearray()
        vnc_done = trio.Event()

        async def fake_vnc_server() -> None:
            stream = await vnc_listeners[0].accept()
            async with stream:
                await stream.send_all(GREETING)
                while len(vnc_got) < len(GREETING) + len(from_blink):
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    vnc_got.extend(data)
                vnc_done.set()
                await trio.sleep_forever()

        nursery.start_soon(fake_vnc_server)
        sdp, session = await answered_call(
            peer, blink, nursery, screen_offer(BLINK_PATH, 40127, "active"),
            screen={"role": "share", "vnc": f"127.0.0.1:{vnc_port}"})
        assert peer.events.matching("session.new", id=session)[-1]["streams"] == [
            "screen-sharing"]
        assert sdp_attribute(sdp, "setup") == "passive", sdp
        assert sdp_attribute(sdp, "rfbsetup") == "passive"  # we share
        assert sdp_attribute(sdp, "accept-types") == "application/x-rfb"
        (ours,) = parse_path(sdp_attribute(sdp, "path") or "")

        async with MsrpWire.open(ours.host, ours.effective_port, tls=True) as wire:
            await wire.bind(str(ours), BLINK_PATH)
            got = b""
            while len(got) < len(GREETING):
                send = await wire.request("SEND")
                assert send.headers.get("Content-Type") == "application/x-rfb"
                got += send.body or b""
            assert got == GREETING
            await wire.write(rfb_frame(str(ours), BLINK_PATH, GREETING))
            await wire.write(rfb_frame(str(ours), BLINK_PATH, from_blink))
            with trio.fail_after(30):
                await vnc_done.wait()
            assert bytes(vnc_got) == GREETING + from_blink
            await peer.call("sessions.end", id=session)
            await peer.state(session, "ended")
        nursery.cancel_scope.cancel()
