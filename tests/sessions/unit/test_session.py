"""A Session over an in-memory SIP network, with a scripted media worker (no daemon, no
pjsua2, virtual time): the call flows that are hard to time with real peers."""

from __future__ import annotations

from typing import Any

import trio

from sipd.sessions.invite.events import SessionState
from sipd.sessions.sdp import parse_sdp
from sipd.sessions.streams import StreamRegistry, default_registry
from sipd.sip.uri import SipUri

from .dummy_kind import DummyKind
from .memory import REMOTE_PORT, SESSION_PORT, WORKER_PORT, ClientHandle, Harness, audio_sdp, target

ALICE = SipUri("127.0.0.1", user="alice", port=SESSION_PORT)
BOB = SipUri("127.0.0.1", user="bob", port=REMOTE_PORT)
VIDEO = "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"


async def incoming_call(h: Harness, body: bytes | None = None):
    session = h.open("incoming")
    h.remote.invite(ALICE, audio_sdp("remote") if body is None else body)
    await h.wait(lambda: "ringing" in h.states() or session.terminated)
    return session


async def established(h: Harness):
    session = await incoming_call(h)
    await session.answer()
    await h.wait_state("established")
    await h.remote.wait(lambda: "established" in h.remote.call.states())
    return session


async def outgoing_call(h: Harness):
    session = h.open("outgoing")
    session.start_soon(session.place, BOB)
    await h.remote.wait(lambda: bool(h.remote.parties))
    return session


async def idle(h: Harness, session: Any) -> None:
    """Until no exchange is under way on either leg (virtual time runs meanwhile)."""
    await trio.sleep(0.5)
    await session.settled(limit=60)
    await trio.sleep(0.5)


async def test_an_incoming_call_is_answered_through_the_worker(nursery, autojump_clock):
    h = Harness(nursery)
    session = await established(h)
    assert session.state is SessionState.ESTABLISHED
    answer = h.remote.call.session.remote_sdp or b""
    assert b"m=audio 40000" in answer and b"s=sipd" in answer  # the worker's, sanitised
    assert [cmd for cmd, _ in h.worker.commands] == []  # we INVITEd it: no "call" command
    session.end()
    await h.wait_state("ended")
    await h.remote.wait(lambda: "ended" in h.remote.call.states())
    await h.worker.wait(lambda: "ended" in h.worker.parties[-1].states())


async def test_an_outgoing_call_carries_the_workers_offer(nursery, autojump_clock):
    h = Harness(nursery)
    session = await outgoing_call(h)
    call = h.remote.call
    assert b"m=audio 40000" in (call.session.remote_sdp or b"")
    call.feed(call.session.ring(call.leg.now()))
    await h.wait_state("ringing")
    call.feed(call.session.accept(audio_sdp("remote"), call.leg.now()))
    await h.wait_state("established")
    worker = h.worker.parties[-1]
    await h.worker.wait(lambda: "established" in worker.states())
    assert b"o=remote" not in (worker.session.remote_sdp or b"")  # our o= line, not theirs
    assert session.state is SessionState.ESTABLISHED


async def test_a_cancel_crossing_our_200_ends_the_call_on_both_sides(nursery, autojump_clock):
    h = Harness(nursery)
    session = await incoming_call(h)
    h.net.pause_at = f"200 INVITE {REMOTE_PORT}"  # our 200 to the remote, held back
    await session.answer()
    await h.wait(lambda: h.net.pause_at is None)
    call = h.remote.call
    call.feed(call.session.end(call.leg.now()))  # its CANCEL, sent before our 200 arrives
    h.net.resume()
    await h.remote.wait(lambda: call.session.terminated)
    await h.wait(lambda: session.terminated)
    await h.worker.wait(lambda: h.worker.parties[-1].session.terminated)
    assert "BYE 5070->5060" in h.net.log  # the caller took the 200 and hung up with BYE
    assert h.states()[-1] == "ended"


async def test_glare_between_the_remote_and_the_worker_settles(nursery, autojump_clock):
    h = Harness(nursery)
    session = await established(h)
    call = h.remote.call
    h.net.pause()
    call.feed(call.session.reinvite(audio_sdp("remote", 2, direction="sendonly"),
                                    call.leg.now()))
    await h.worker.request(session.id, "hold")  # the worker's re-INVITE, crossing it
    h.net.resume()
    await idle(h, session)
    await h.remote.wait(lambda: call.session.can_reinvite)
    assert any(entry.startswith("491 INVITE") for entry in h.net.log)
    assert session.state is SessionState.ESTABLISHED and not session.exchanging
    # One hold went through after the 491s (the other may give up: its offer is stale),
    # and what the session says is what the remote's dialog holds.
    assert session.on_hold or session.remote_hold
    assert session.remote_hold == (b"a=sendonly" in (call.session.local_sdp or b""))
    assert session.on_hold == (b"a=sendonly" in (call.session.remote_sdp or b""))
    # and both legs still take re-INVITEs (nothing left half-done)
    assert call.session.can_reinvite and session.media is not None
    assert session.media.session.can_reinvite


async def test_an_offerless_reinvite_is_answered_with_our_description(nursery,
                                                                      autojump_clock):
    h = Harness(nursery)
    session = await established(h)
    dialog = h.remote.call.session.dialog
    assert dialog is not None
    before = len(h.worker.parties[-1].offers())
    reinvite = dialog.create_request("INVITE")
    handle: ClientHandle = await h.remote.stack.start_client_transaction(
        reinvite, target(SESSION_PORT))
    responses: list[Any] = []
    handle.listen(lambda response: (responses.append(response),
                                    h.publish("test.response", {})))
    await h.wait(lambda: any(r.status >= 200 for r in responses))
    assert [r.status for r in responses] == [200], [(r.status, r.reason) for r in responses]
    ok = next(r for r in responses if r.status == 200)
    offer = parse_sdp(ok.body)
    assert offer.media[0].port == 40000  # what we have, as our offer
    assert reinvite.cseq is not None
    ack = dialog.create_ack(reinvite.cseq.number, body=audio_sdp("remote"),
                            content_type="application/sdp")
    await h.remote.stack.send_stateless(ack, target(SESSION_PORT))
    await idle(h, session)
    assert len(h.worker.parties[-1].offers()) == before  # the same answer: nothing to pass on
    assert session.state is SessionState.ESTABLISHED


async def test_hold_waits_for_the_offer_pending_on_the_outside(nursery, autojump_clock):
    h = Harness(nursery)
    session = await established(h)
    call = h.remote.call
    h.net.pause_at = f"ACK {REMOTE_PORT}->{SESSION_PORT}"  # the remote's ACK, held back
    call.feed(call.session.reinvite(audio_sdp("remote", 2), call.leg.now()))
    await h.wait(lambda: h.net.pause_at is None)
    async with trio.open_nursery() as waiting:
        waiting.start_soon(session.hold, True)
        await trio.sleep(1)
        assert ("hold", {"call": 1}) not in h.worker.commands  # waits for the ACK
        h.net.resume()
    assert ("hold", {"call": 1}) in h.worker.commands
    await idle(h, session)
    assert not any(entry.startswith("491") for entry in h.net.log)
    assert session.on_hold
    assert b"a=sendonly" in (call.session.remote_sdp or b"")


async def test_a_worker_that_never_calls_fails_the_call_with_why(nursery, autojump_clock):
    h = Harness(nursery)
    h.worker.drop_call = True
    session = h.open("outgoing")
    session.start_soon(session.place, BOB)
    await h.wait(lambda: session.terminated)
    assert session.state is SessionState.FAILED and session.code == 500
    assert session.reason == "media unavailable: TURN refused"
    assert not h.remote.parties  # nothing went out


async def test_a_worker_dying_while_the_remote_rings_cancels_the_call(nursery,
                                                                      autojump_clock):
    h = Harness(nursery)
    session = await outgoing_call(h)
    call = h.remote.call
    call.feed(call.session.ring(call.leg.now()))
    await h.wait_state("ringing")
    session.media_lost("media engine crashed (signal 11)")
    await h.remote.wait(lambda: call.session.terminated)
    await h.wait(lambda: session.terminated)
    assert f"CANCEL {SESSION_PORT}->{REMOTE_PORT}" in h.net.log
    assert session.reason == "media engine crashed (signal 11)"
    await h.forgotten.wait()  # and the session is over for the manager


async def test_an_unknown_line_beside_audio_gets_port_0(nursery, autojump_clock):
    h = Harness(nursery)
    session = await incoming_call(h, audio_sdp("remote", extra=VIDEO))
    await session.answer()
    await h.wait_state("established")
    answer = parse_sdp(h.remote.call.session.remote_sdp or b"")
    assert [(m.type, m.port) for m in answer.media] == [("audio", 40000), ("video", 0)]
    offered = parse_sdp(h.worker.parties[-1].session.remote_sdp or b"")
    assert [m.type for m in offered.media] == ["audio"]  # the worker sees audio only


async def test_an_offer_of_only_unknown_lines_is_refused_488(nursery, autojump_clock):
    h = Harness(nursery)
    body = audio_sdp("remote").split(b"m=audio")[0] + VIDEO.encode()
    session = await incoming_call(h, body)
    call = h.remote.call
    await h.remote.wait(lambda: call.session.terminated)
    assert call.session.code == 488 and session.terminated
    assert not h.worker.parties and h.worker.session_id == session.id  # no worker used
    assert f"INVITE {SESSION_PORT}->{WORKER_PORT}" not in h.net.log


DUMMY = "m=application 7000 TCP/DUMMY *\r\na=dummy:theirs\r\n"


def with_dummy() -> tuple[DummyKind, StreamRegistry]:
    kind = DummyKind()
    return kind, StreamRegistry([*default_registry(), kind])


async def test_a_session_without_audio_needs_no_worker(nursery, autojump_clock):
    kind, registry = with_dummy()
    h = Harness(nursery, streams=registry)
    body = audio_sdp("remote").split(b"m=audio")[0] + DUMMY.encode()
    session = await incoming_call(h, body)
    assert session.streams == ["dummy"]
    await session.answer()
    await h.wait_state("established")
    answer = parse_sdp(h.remote.call.session.remote_sdp or b"")
    assert [(m.type, m.port, m.attribute("dummy")) for m in answer.media] == [
        ("application", 9999, "ours")]
    assert not h.worker.parties and h.worker.commands == []  # no worker at all
    stream = kind.streams[0]
    await h.wait(lambda: stream.started is not None)
    session.end()
    await h.wait(lambda: stream.ended is not None)
    assert h.states()[-1] == "ended"


async def test_audio_and_another_kind_are_answered_line_by_line(nursery, autojump_clock):
    kind, registry = with_dummy()
    h = Harness(nursery, streams=registry)
    session = await incoming_call(h, audio_sdp("remote", extra=DUMMY + VIDEO))
    await session.answer()
    await h.wait_state("established")
    answer = parse_sdp(h.remote.call.session.remote_sdp or b"")
    assert [(m.type, m.port) for m in answer.media] == [
        ("audio", 40000), ("application", 9999), ("video", 0)]
    # a re-INVITE passed to the worker keeps the other stream's line in the answer
    call = h.remote.call
    call.feed(call.session.reinvite(audio_sdp("remote", 2, direction="sendonly",
                                              extra=DUMMY + VIDEO), call.leg.now()))
    await idle(h, session)
    assert session.remote_hold
    again = parse_sdp(call.session.remote_sdp or b"")
    assert [(m.type, m.port) for m in again.media] == [
        ("audio", 40000), ("application", 9999), ("video", 0)]


async def test_a_stream_refusing_its_line_refuses_the_call_488(nursery, autojump_clock):
    _, registry = with_dummy()
    h = Harness(nursery, streams=registry)
    body = audio_sdp("remote").split(b"m=audio")[0] + DUMMY.replace(
        "theirs", "refuse").encode()
    session = await incoming_call(h, body)
    await session.answer()
    call = h.remote.call
    await h.remote.wait(lambda: call.session.terminated)
    assert call.session.code == 488 and not h.worker.parties


async def test_an_outgoing_session_of_another_kind_offers_its_line(nursery, autojump_clock):
    kind, registry = with_dummy()
    h = Harness(nursery, streams=registry)
    session = h.open("outgoing", ["dummy"])
    session.start_soon(session.place, BOB)
    await h.remote.wait(lambda: bool(h.remote.parties))
    call = h.remote.call
    offer = parse_sdp(call.session.remote_sdp or b"")
    assert [(m.type, m.port, m.attribute("dummy")) for m in offer.media] == [
        ("application", 9999, "ours")]
    call.feed(call.session.accept(audio_sdp("remote").split(b"m=audio")[0] + DUMMY.encode(),
                                  call.leg.now()))
    await h.wait_state("established")
    stream = kind.streams[0]
    await h.wait(lambda: stream.started is not None)
    assert stream.started is not None and stream.started[1].attribute("dummy") == "theirs"
    assert not h.worker.parties and h.worker.commands == []


async def test_a_worker_hold_keeps_the_other_streams_line(nursery, autojump_clock):
    kind, registry = with_dummy()
    h = Harness(nursery, streams=registry)
    session = h.open("outgoing", ["audio", "dummy"])
    session.start_soon(session.place, BOB)
    await h.remote.wait(lambda: bool(h.remote.parties))
    call = h.remote.call
    offer = parse_sdp(call.session.remote_sdp or b"")
    assert [(m.type, m.port) for m in offer.media] == [("audio", 40000), ("application", 9999)]
    call.feed(call.session.accept(audio_sdp("remote", extra=DUMMY), call.leg.now()))
    await h.wait_state("established")
    await idle(h, session)
    await session.hold(True)
    await idle(h, session)
    assert session.on_hold
    again = parse_sdp(call.session.remote_sdp or b"")
    assert [(m.type, m.port) for m in again.media] == [("audio", 40000), ("application", 9999)]
    assert again.media[0].direction == "sendonly"


async def test_a_session_whose_only_stream_the_remote_refuses_ends(nursery, autojump_clock):
    kind, registry = with_dummy()
    h = Harness(nursery, streams=registry)
    session = h.open("outgoing", ["dummy"])
    session.start_soon(session.place, BOB)
    await h.remote.wait(lambda: bool(h.remote.parties))
    call = h.remote.call
    refused = audio_sdp("remote").split(b"m=audio")[0] + DUMMY.replace("7000", "0").encode()
    call.feed(call.session.accept(refused, call.leg.now()))
    await h.wait_state("ended")
    assert session.reason == "the remote party took none of the streams"
    assert kind.streams[0].ended == "rejected by the remote party"
