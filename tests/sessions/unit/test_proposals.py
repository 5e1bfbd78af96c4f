"""Streams added and removed by re-INVITE (sipd.sessions.proposals) over the in-memory SIP
network, with the dummy kind standing for chat: the remote's proposals, refreshes that are
no proposal, removals; our additions (no daemon, virtual time)."""

from __future__ import annotations

import trio

from sipd.sessions.invite.events import ReinviteCompleted
from sipd.sessions.proposals import PROPOSAL_TIMEOUT
from sipd.sessions.sdp import parse_sdp
from sipd.sessions.streams import StreamRegistry, default_registry
from sipd.sip.uri import SipUri

from .dummy_kind import DummyKind
from .memory import SESSION_PORT, Harness, audio_sdp

DUMMY = "m=application 7000 TCP/DUMMY *\r\na=dummy:theirs\r\n"


def events(h: Harness, name: str) -> list[dict]:
    return [data for got, data in h.events if got == name]


async def call_with_dummy_kind(nursery):
    """An audio call from the remote party, answered: (the dummy kind, harness, session)."""
    kind = DummyKind()
    h = Harness(nursery, streams=StreamRegistry([*default_registry(), kind]))
    session = h.open("incoming")
    h.remote.invite(SipUri("127.0.0.1", user="alice", port=SESSION_PORT),
                    audio_sdp("remote"))
    await h.wait(lambda: "ringing" in h.states())
    await session.answer()
    await h.wait_state("established")
    await h.remote.wait(lambda: "established" in h.remote.call.states())
    return kind, h, session


async def test_a_remote_addition_is_a_proposal_then_a_stream(nursery, autojump_clock):
    kind, h, session = await call_with_dummy_kind(nursery)
    call = h.remote.call
    call.feed(call.session.reinvite(audio_sdp("remote", 2, extra=DUMMY), call.leg.now()))
    await h.wait(lambda: bool(events(h, "session.proposal")))
    (proposal,) = events(h, "session.proposal")
    assert proposal["streams"] == ["dummy"] and proposal["state"] == "pending"
    assert call.session.remote_sdp is not None and b"TCP/DUMMY" not in call.session.remote_sdp

    await session.changes.accept(proposal["proposal"])
    await h.remote.wait(lambda: b"TCP/DUMMY" in (call.session.remote_sdp or b""))
    answer = parse_sdp(call.session.remote_sdp or b"")
    assert [(m.type, m.port) for m in answer.media] == [("audio", 40000), ("application", 9999)]
    stream = kind.streams[0]
    await h.wait(lambda: stream.started is not None)
    assert session.streams == ["audio", "dummy"]
    assert events(h, "session.streams")[-1]["change"] == "added"

    # the remote takes it away again: at once, no proposal
    call.feed(call.session.reinvite(audio_sdp("remote", 3, extra=DUMMY.replace("7000", "0")),
                                    call.leg.now()))
    await h.wait(lambda: stream.ended is not None)
    assert session.streams == ["audio"] and len(events(h, "session.proposal")) == 2
    assert events(h, "session.streams")[-1]["change"] == "removed"


async def test_a_refresh_is_no_proposal(nursery, autojump_clock):
    _, h, session = await call_with_dummy_kind(nursery)
    call = h.remote.call
    before = call.session.remote_sdp
    call.feed(call.session.reinvite(audio_sdp("remote"), call.leg.now()))  # same o= line
    await trio.sleep(1)
    await session.settled(limit=60)
    assert not events(h, "session.proposal") and call.session.remote_sdp == before


async def test_a_proposal_left_alone_is_refused(nursery, autojump_clock):
    kind, h, session = await call_with_dummy_kind(nursery)
    call = h.remote.call
    call.feed(call.session.reinvite(audio_sdp("remote", 2, extra=DUMMY), call.leg.now()))
    await h.wait(lambda: bool(events(h, "session.proposal")))
    await trio.sleep(PROPOSAL_TIMEOUT + 1)
    assert [e["state"] for e in events(h, "session.proposal")] == ["pending", "expired"]
    assert b"TCP/DUMMY" not in (call.session.remote_sdp or b"") and not kind.streams
    assert session.streams == ["audio"]


async def test_our_addition_goes_out_and_starts(nursery, autojump_clock):
    kind, h, session = await call_with_dummy_kind(nursery)
    call = h.remote.call
    result = await session.changes.add("dummy")
    assert result["index"] == 1
    await h.remote.wait(lambda: b"TCP/DUMMY" in (call.session.remote_sdp or b""))
    offer = parse_sdp(call.session.remote_sdp or b"")
    assert [m.type for m in offer.media] == ["audio", "application"]


async def test_a_change_nobody_can_take_in_a_session_without_audio_is_488(nursery,
                                                                         autojump_clock):
    kind = DummyKind()
    h = Harness(nursery, streams=StreamRegistry([*default_registry(), kind]))
    session = h.open("incoming")
    head = audio_sdp("remote").split(b"m=audio")[0]
    h.remote.invite(SipUri("127.0.0.1", user="alice", port=SESSION_PORT),
                    head + DUMMY.encode())
    await h.wait(lambda: "ringing" in h.states())
    await session.answer()
    await h.wait_state("established")
    call = h.remote.call
    await h.remote.wait(lambda: "established" in call.states())
    changed = head.replace(b"remote 100 1", b"remote 100 2") + DUMMY.replace(
        "theirs", "changed").encode()
    call.feed(call.session.reinvite(changed, call.leg.now()))

    def outcome() -> list[ReinviteCompleted]:
        return [e for e in call.events if isinstance(e, ReinviteCompleted)]

    await h.remote.wait(lambda: bool(outcome()))
    assert [(o.accepted, o.code) for o in outcome()] == [(False, 488)]  # not 491: no retry
    assert session.streams == ["dummy"] and kind.streams[0].ended is None  # as it was


def test_a_chat_follows_a_new_relay_path_but_not_a_new_peer():
    from sipd.msrp.sdp import MsrpMedia
    from sipd.msrp.uri import parse_path
    from sipd.sessions.sdp import MediaDescription
    from sipd.sessions.streams import ChatKind, StreamContext

    stream = ChatKind().new_stream(StreamContext("s1", lambda name, data: None), 0)
    peer = "msrp://192.0.2.9:2855/peer;tcp"
    stream.remote_media = MsrpMedia(parse_path(peer), ["text/plain"])  # type: ignore[attr-defined]

    def line(path: str) -> MediaDescription:
        media = MediaDescription.new("message", 2855, "TCP/MSRP", ["*"])
        media.add_attribute("accept-types", "text/plain")
        media.add_attribute("path", path)
        return media

    assert stream.takes_update(line(f"msrps://relay.example:2855/r1;tcp {peer}"))
    assert not stream.takes_update(line("msrp://192.0.2.9:2855/another;tcp"))
    assert not stream.takes_update(line(peer).rejected())
