"""The audio stream (sipd.sessions.streams.audio.stream) as a session holds it: over the
in-memory SIP pair with the scripted media worker (no daemon, no pjsua2, virtual time)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from sipd.media.supervisor import MediaUnavailable
from sipd.sessions.errors import InvalidSessionParam, SessionStateError
from sipd.sessions.invite.events import SessionState
from sipd.sessions.sdp import parse_sdp
from sipd.sessions.streams import StreamState
from sipd.sessions.streams.audio.stream import AudioStream
from sipd.sip.builder import build_request
from sipd.sip.dialog import Dialog
from sipd.sip.header_values import Address
from sipd.sip.uri import SipUri

from .memory import REMOTE_PORT, SESSION_PORT, WORKER_PORT, ClientHandle, Harness, audio_sdp, target
from .test_session import (
    ALICE,
    BOB,
    DUMMY,
    established,
    idle,
    incoming_call,
    outgoing_call,
    with_dummy,
)


async def test_an_answered_call_carries_its_audio_as_one_stream(nursery, autojump_clock):
    h = Harness(nursery)
    session = await established(h)
    audio = session.audio
    assert isinstance(audio, AudioStream)
    assert (audio.kind.name, audio.index, audio.state) == ("audio", 0, StreamState.ACTIVE)
    assert audio.leg is session.media and audio.worker_id == "w1"
    line = await audio.answer(parse_sdp(audio_sdp("remote")), parse_sdp(audio_sdp("remote")
                                                                       ).media[0])
    assert (line.type, line.port) == ("audio", 40000)  # the worker's, as it went out
    assert str(line.connection) == "IN IP4 127.0.0.1" and line.attribute("ssrc") is None
    session.end()
    await h.wait_state("ended")
    assert audio.state is StreamState.ENDED
    await h.worker.wait(lambda: h.worker.parties[-1].session.terminated)


async def test_an_outgoing_call_offers_the_workers_line(nursery, autojump_clock):
    h = Harness(nursery)
    session = await outgoing_call(h)
    audio = session.audio
    assert audio is not None and audio.state is StreamState.NEW
    assert [cmd for cmd, _ in h.worker.commands] == ["call"]  # it was asked to call us
    line = await audio.offer()
    assert (line.type, line.port, line.direction.value) == ("audio", 40000, "sendrecv")
    sent = parse_sdp(h.remote.call.session.remote_sdp or b"")
    assert sent.media[0].port == line.port and sent.session_name == "sipd"


async def test_the_remote_ringing_reaches_the_worker_and_its_answer_too(nursery,
                                                                       autojump_clock):
    h = Harness(nursery)
    session = await outgoing_call(h)
    audio = session.audio
    assert audio is not None and audio.awaits_remote_answer
    call = h.remote.call
    call.feed(call.session.ring(call.leg.now()))
    worker = h.worker.parties[-1]
    await h.worker.wait(lambda: "ringing" in worker.states())
    call.feed(call.session.accept(audio_sdp("remote"), call.leg.now()))
    await h.worker.wait(lambda: "established" in worker.states())
    assert not audio.awaits_remote_answer and audio.answered
    assert b"m=audio 4000 " in (worker.session.remote_sdp or b"")  # the remote's audio


async def test_commands_are_checked_before_the_worker_sees_them(nursery, autojump_clock,
                                                                tmp_path):
    h = Harness(nursery)
    session = await established(h)
    with pytest.raises(InvalidSessionParam, match="not an absolute path"):
        await session.play("hello.wav")
    with pytest.raises(InvalidSessionParam, match="DTMF digits are"):
        await session.send_dtmf("12x")
    with pytest.raises(InvalidSessionParam, match="at most 31"):
        await session.send_dtmf("1" * 32)
    with pytest.raises(InvalidSessionParam, match="there is no folder"):
        await session.record(str(tmp_path / "missing" / "call.wav"))
    assert h.worker.commands == []  # none of them reached the worker
    await session.send_dtmf("123#")
    assert h.worker.commands == [("dtmf", {"call": 1, "digits": "123#"})]
    record = str(tmp_path / "call.wav")
    await session.record(record)
    assert session.recording == record


async def test_a_worker_saying_the_media_stopped_fails_only_a_call_that_is_up(nursery,
                                                                            autojump_clock):
    h = Harness(nursery)
    session = await incoming_call(h)
    session.on_worker_event({"event": "call.rtp_timeout", "call": 1, "session": session.id})
    await trio.sleep(1)
    assert session.state is SessionState.RINGING  # nothing flows before the answer
    await session.answer()
    await h.wait_state("established")
    session.on_worker_event({"event": "call.rtp_timeout", "call": 1, "session": session.id})
    await h.wait(lambda: session.terminated)
    assert session.state is SessionState.FAILED
    assert session.reason == "no media from the remote party"
    await h.remote.wait(lambda: h.remote.call.session.terminated)


async def test_the_workers_events_are_published_for_its_session(nursery, autojump_clock):
    h = Harness(nursery)
    session = await established(h)
    session.on_worker_event({"event": "call.dtmf", "call": 1, "digit": "5",
                             "method": "rfc2833", "session": session.id})
    session.on_worker_event({"event": "call.media", "call": 1, "codec": "PCMU",
                             "session": session.id})
    assert ("session.dtmf", {"id": "s1", "digit": "5", "method": "rfc2833"}) in h.events
    assert session.view()["media"] == {"codec": "PCMU"}
    assert await session.rtp_counters() == {"sent": 1}


async def test_a_session_without_audio_has_no_audio_stream(nursery, autojump_clock,
                                                            tmp_path):
    kind, registry = with_dummy()
    h = Harness(nursery, streams=registry)
    body = audio_sdp("remote").split(b"m=audio")[0] + DUMMY.encode()
    session = await incoming_call(h, body)
    await session.answer()
    await h.wait_state("established")
    assert session.audio is None and session.media is None
    assert not session.on_hold and session.recording is None
    with pytest.raises(InvalidSessionParam, match="not an absolute path"):
        await session.play("x.wav")  # a bad path says so first, as on any call
    with pytest.raises(SessionStateError, match="has no media to record"):
        await session.record(str(tmp_path / "call.wav"))
    with pytest.raises(SessionStateError, match="no media to hold"):
        await session.hold(True)
    # the remote's session refresh (the same description) is answered with ours
    call = h.remote.call
    await h.remote.wait(lambda: call.session.can_reinvite)
    ours = call.session.remote_sdp
    call.feed(call.session.reinvite(call.session.local_sdp or b"", call.leg.now()))
    await idle(h, session)
    assert f"200 INVITE {REMOTE_PORT}" in h.net.log and call.session.remote_sdp == ours
    assert not any(entry.startswith("491") for entry in h.net.log)
    assert session.state is SessionState.ESTABLISHED and not h.worker.parties


async def test_a_worker_invite_nobody_asked_for_is_refused(nursery, autojump_clock):
    kind, registry = with_dummy()
    h = Harness(nursery, streams=registry)
    session = h.open("outgoing", ["dummy"])
    h.worker.invite(h.addresses.internal_uri("udp"), h.worker.sdp(),
                    headers=[("X-Sipd-Session", session.id)])
    await h.worker.wait(lambda: h.worker.parties[-1].session.terminated)
    assert f"482 INVITE {WORKER_PORT}" in h.net.log
    assert h.worker.parties[-1].session.code == 482 and session.audio is None


async def test_a_worker_refusing_to_call_fails_the_call_503(nursery, autojump_clock):
    h = Harness(nursery)
    h.worker.refuse_call = "no free call slot"
    session = h.open("outgoing")
    session.start_soon(session.place, BOB)
    await h.wait(lambda: session.terminated)
    assert (session.state, session.code) == (SessionState.FAILED, 503)
    assert session.reason == "media unavailable: no free call slot"
    assert not h.remote.parties  # nothing went out
    await h.forgotten.wait()


async def test_an_answer_without_a_worker_refuses_the_caller_503(nursery, autojump_clock):
    h = Harness(nursery)
    session = await incoming_call(h)

    async def no_worker(session_id: str) -> None:
        raise MediaUnavailable("the media engine is not running: test")

    h.worker.allocate = no_worker  # type: ignore[method-assign]
    with pytest.raises(MediaUnavailable):
        await session.answer()
    call = h.remote.call
    await h.remote.wait(lambda: call.session.terminated)
    assert call.session.code == 503 and session.terminated
    assert session.reason == "media unavailable: the media engine is not running: test"


async def test_an_offerless_invite_gets_the_workers_offer_and_its_answer_goes_back(
        nursery, autojump_clock):
    h = Harness(nursery)
    session = h.open("incoming")
    contact = Address(SipUri("127.0.0.1", user="remote", port=REMOTE_PORT))
    invite = build_request("INVITE", ALICE, from_=contact, to=Address(ALICE),
                           contact=contact)  # no offer: ours comes in the 200
    handle: ClientHandle = await h.remote.stack.start_client_transaction(
        invite, target(SESSION_PORT))
    responses: list[Any] = []
    handle.listen(lambda response: (responses.append(response),
                                    h.publish("test.response", {})))
    await h.wait(lambda: "ringing" in h.states())
    assert session.streams == ["audio"]
    await session.answer()
    await h.wait(lambda: any(r.status == 200 for r in responses))
    ok = next(r for r in responses if r.status == 200)
    offer = parse_sdp(ok.body)
    assert [(m.type, m.port) for m in offer.media] == [("audio", 40000)]  # the worker's
    assert [cmd for cmd, _ in h.worker.commands] == ["call"]  # it called us with it
    worker = h.worker.parties[-1]
    assert "established" not in worker.states()  # its INVITE waits for the remote's answer
    dialog = Dialog.create_as_uac(invite, ok)
    assert invite.cseq is not None
    ack = dialog.create_ack(invite.cseq.number, body=audio_sdp("remote"),
                            content_type="application/sdp")
    await h.remote.stack.send_stateless(ack, target(SESSION_PORT))
    await h.wait_state("established")
    await h.worker.wait(lambda: "established" in worker.states())
    assert session.audio is not None and session.audio.answered
    assert b"m=audio 4000 " in (worker.session.remote_sdp or b"")  # the answer in the ACK
