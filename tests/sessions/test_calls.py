"""Audio calls between two real sipd daemons and no server at all, driven over RPC.

Each daemon has only its built-in `local` account, listens on 127.0.0.1 and runs its media
workers (pjsua2) on its own RTP port range there. A calls sip:local@127.0.0.1:<B's port>;
B answers over RPC; each plays a tone and records the other's, which must hear it.
"""

from __future__ import annotations

import os
import signal

import pytest
import trio

from sipctl.client import RpcCallError
from tests.harness.audio import exchange_tones, heard_each_other
from tests.harness.peer import call_and_answer, daemon_settings, open_peer
from tests.harness.process import SipdProcess
from tests.harness.raw_uac import raw_uac
from tests.harness.waits import EVENT_TIMEOUT
from tests.peers.ports import free_port, rtp_port_range


# Generous bounds, never assertions on speed: the machines are shared and noisy.
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_call_carries_audio_both_ways(a, b, tmp_path, transport):
    a_id, b_id = await call_and_answer(a, b, transport)
    new = a.events.matching("session.new", id=a_id)[0]
    assert new["direction"] == "outgoing" and new["remote"] == b.uri(transport)

    heard = await exchange_tones(a, a_id, b, b_id, tmp_path)
    for peer, session in ((a, a_id), (b, b_id)):  # the counters say media flows both ways
        rtp = (await peer.call("sessions.get", id=session))["rtp"]
        assert rtp["rx_packets"] > 25 and rtp["tx_packets"] > 25, rtp

    await a.call("sessions.end", id=a_id)
    await a.state(a_id, "ended")
    ended = await b.state(b_id, "ended")
    assert ended.get("reason") == "remote hangup"
    await heard_each_other(heard)


async def test_rejected_call_fails_with_the_code(a, b):
    a_id = (await a.call("sessions.start", account="local", to=b.uri()))["id"]
    new = await b.events.wait("session.new", direction="incoming")
    assert new["remote"] == a.uri()
    await b.state(new["id"], "ringing")

    await b.call("sessions.reject", id=new["id"], code=486)

    failed = await a.state(a_id, "failed")
    assert failed["code"] == 486 and failed["reason"] == "Busy Here"
    assert (await b.state(new["id"], "failed"))["code"] == 486
    with pytest.raises(RpcCallError) as late:
        await b.call("sessions.answer", id=new["id"])
    assert late.value.code == -32003  # conflict: it is over


async def test_caller_cancels_before_the_answer(a, b):
    a_id = (await a.call("sessions.start", account="local", to=b.uri()))["id"]
    new = await b.events.wait("session.new", direction="incoming")
    await a.state(a_id, "ringing")

    await a.call("sessions.end", id=a_id)

    await a.state(a_id, "ending")
    assert (await a.state(a_id, "failed"))["code"] == 487
    assert (await b.state(new["id"], "failed"))["code"] == 487


async def test_dtmf_reaches_the_other_end(a, b):
    a_id, b_id = await call_and_answer(a, b)

    await a.call("sessions.send_dtmf", id=a_id, digits="19#*")

    await b.events.wait("session.dtmf", id=b_id, digit="*")  # the last one: all have come
    received = b.events.matching("session.dtmf", id=b_id)
    assert "".join(e["digit"] for e in received) == "19#*"
    assert {e["method"] for e in received} == {"rfc2833"}
    with pytest.raises(RpcCallError) as bad:
        await a.call("sessions.send_dtmf", id=a_id, digits="12x")
    assert bad.value.code == -32602
    await b.call("sessions.end", id=b_id)
    await a.state(a_id, "ended")


async def test_hold_and_unhold(a, b):
    a_id, b_id = await call_and_answer(a, b)

    await a.call("sessions.hold", id=a_id)
    assert (await a.events.wait("session.hold", id=a_id))["originator"] == "local"
    held = await b.events.wait("session.hold", id=b_id, on_hold=True)
    assert held["originator"] == "remote"
    assert (await b.call("sessions.get", id=b_id))["remote_hold"] is True

    await a.call("sessions.unhold", id=a_id)
    await a.events.wait("session.hold", id=a_id, on_hold=False)
    await b.events.wait("session.hold", id=b_id, on_hold=False)
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")


async def test_unknown_session_and_bad_params(a):
    with pytest.raises(RpcCallError) as unknown:
        await a.call("sessions.end", id="nope")
    assert unknown.value.code == -32002
    with pytest.raises(RpcCallError) as bad_to:
        await a.call("sessions.start", account="local", to="tel:+15551234")
    assert bad_to.value.data["field"] == "to"
    with pytest.raises(RpcCallError) as no_account:
        await a.call("sessions.start", account="nobody", to="sip:x@127.0.0.1")
    assert no_account.value.code == -32002


async def test_a_crashed_media_worker_ends_the_call(a, b, tmp_path):
    a_id, b_id = await call_and_answer(a, b)
    workers = (await a.call("system.state"))["media"]["workers"]
    carrier = next(w for w in workers if a_id in w["sessions"])
    recording = tmp_path / "cut-short.wav"
    await a.call("sessions.record", id=a_id, path=str(recording))

    os.kill(carrier["pid"], signal.SIGKILL)

    crashed = await a.events.wait("media.worker", state="crashed")
    assert crashed["sessions"] == [a_id] and crashed["pid"] == carrier["pid"]
    failed = await a.state(a_id, "failed")  # a fault, not a hangup
    assert failed["reason"].startswith("media engine crashed"), failed
    # The recording could not be finished, and the client hears so.
    lost = await a.events.wait("session.recording", id=a_id)
    assert lost["path"] == str(recording) and lost["complete"] is False, lost
    assert lost["reason"].startswith("media engine crashed"), lost
    assert (await b.state(b_id, "ended"))["reason"] == "remote hangup"
    # The next call gets a fresh worker.
    a_id, b_id = await call_and_answer(a, b)
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")


async def test_unknown_user_fails_404(a, b):
    to = b.uri().replace("sip:local@", "sip:nobody@")
    a_id = (await a.call("sessions.start", account="local", to=to))["id"]
    failed = await a.state(a_id, "failed")
    assert failed["code"] == 404


async def test_nobody_listening_fails_at_once(a):
    to = f"sip:local@127.0.0.1:{free_port()};transport=tcp"
    a_id = (await a.call("sessions.start", account="local", to=to))["id"]
    failed = await a.state(a_id, "failed")
    assert failed["code"] == 503 and "refused" in failed["reason"].lower(), failed


async def test_a_stopping_daemon_hangs_up_its_calls(tmp_path, b):
    daemon = SipdProcess(tmp_path, daemon_settings(), name="c").start()
    try:
        async with open_peer(daemon) as c:
            c_id, b_id = await call_and_answer(c, b)
            daemon.signal(signal.SIGTERM)
            ended = await b.state(b_id, "ended")
            assert ended["reason"] == "remote hangup"
        assert await trio.to_thread.run_sync(daemon.wait, 20) == 0
    finally:
        daemon.stop()


# -- a raw UAC, for what a sipd does not send -------------------------------------------------

def _uri_of(address: str) -> str:
    return address.split("<", 1)[1].split(">", 1)[0]


async def test_an_invite_without_offer_gets_the_offer_in_the_200(b):
    async with raw_uac(b) as uac:
        uri = f"sip:local@127.0.0.1:{uac.peer_port}"
        await uac.send(uac.request("INVITE", uri, 1))
        await uac.response(180)
        new = await b.events.wait("session.new", direction="incoming",
                                  remote=f"sip:raw@127.0.0.1:{uac.port}")
        await b.call("sessions.answer", id=new["id"])
        headers, offer = await uac.response(200)
        assert headers["content-type"] == "application/sdp"
        assert "m=audio " in offer and "pjmedia" not in offer and "a=ssrc" not in offer
        to_tag = headers["to"].split("tag=", 1)[1].split(";", 1)[0]
        contact = _uri_of(headers["contact"])
        with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as rtp:
            await rtp.bind(("127.0.0.1", 0))
            answer = ("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                      f"t=0 0\r\nm=audio {rtp.getsockname()[1]} RTP/AVP 0\r\n"
                      "a=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")
            await uac.send(uac.request("ACK", contact, 1, to_tag=to_tag, body=answer))
            await b.state(new["id"], "established")
            # The worker took the answer: its RTP comes to the port the answer names.
            with trio.fail_after(EVENT_TIMEOUT):
                assert await rtp.recv(2048)
        await uac.send(uac.request("BYE", contact, 2, to_tag=to_tag))
        await uac.response(200)
        assert (await b.state(new["id"], "ended"))["reason"] == "remote hangup"


async def test_an_offer_nothing_can_take_is_refused_488(b):
    video_only = ("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                  "t=0 0\r\nm=video 4000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n")
    async with raw_uac(b) as uac:
        await uac.send(uac.request("INVITE", f"sip:local@127.0.0.1:{uac.peer_port}", 1,
                                   body=video_only))
        headers, _ = await uac.response(488)
        assert "no stream kind takes video over RTP/AVP" in headers["warning"]


async def test_udp_only_daemons_keep_the_internal_leg_on_udp(tmp_path):
    """Without a TCP listener the workers' SIP leg runs over UDP too."""
    settings = {**daemon_settings(), "sip.transport_list": ["udp"]}
    daemons = [SipdProcess(tmp_path, {**settings, "rtp.port_range": rtp_port_range()}, name=name)
               for name in ("udp-a", "udp-b")]
    try:
        for daemon in daemons:
            daemon.start()
        async with open_peer(daemons[0]) as a, open_peer(daemons[1]) as b:
            assert set(a.ports) == {"udp"}
            a_id, b_id = await call_and_answer(a, b)
            await a.call("sessions.hold", id=a_id)
            await b.events.wait("session.hold", id=b_id, on_hold=True)
            await b.call("sessions.end", id=b_id)
            assert (await a.state(a_id, "ended"))["reason"] == "remote hangup"
    finally:
        for daemon in daemons:
            daemon.stop()
