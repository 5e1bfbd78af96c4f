"""Stream kinds and the line-by-line answer plan (sipd.sessions.streams): no daemon, no I/O."""

from __future__ import annotations

import pytest

from sipd.sessions.sdp import MediaDescription, SessionDescription, parse_sdp
from sipd.sessions.streams import (
    AudioKind,
    NothingAccepted,
    Stream,
    StreamContext,
    StreamKind,
    StreamRegistry,
    UnknownStreamKind,
    default_registry,
    plan_answer,
)


def offer(*media: str) -> SessionDescription:
    return parse_sdp(("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                      "t=0 0\r\n" + "".join(m + "\r\n" for m in media)).encode())


AUDIO = "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000"
VIDEO = "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000"
CHAT = "m=message 2855 TCP/MSRP *\r\na=path:msrp://192.0.2.1:2855/abc;tcp"
CONTEXT = StreamContext("s1", lambda name, data: None, audio_codecs=("PCMU/8000",))


class DummyStream(Stream):
    async def offer(self) -> MediaDescription:
        raise NotImplementedError

    async def answer(self, offer: SessionDescription,
                     offered: MediaDescription) -> MediaDescription:
        raise NotImplementedError


class FakeMsrpKind(StreamKind):
    """What an MSRP kind declares: m=message lines over MSRP."""

    name = "fake-msrp"

    def recognises(self, media: MediaDescription) -> bool:
        return media.type == "message" and media.is_msrp

    def new_stream(self, context: StreamContext, index: int) -> Stream:
        return DummyStream(self, context, index)


def test_an_unknown_line_beside_audio_is_refused_alone():
    plan = plan_answer(offer(AUDIO, VIDEO), default_registry(), CONTEXT)
    assert [line.accepted for line in plan.lines] == [True, False]
    assert "video" in (plan.lines[1].refusal or "")
    assert [kind.name for kind in plan.kinds()] == ["audio"] and plan.uses_media_worker


def test_an_offer_of_only_unknown_lines_is_refused_with_why():
    with pytest.raises(NothingAccepted, match="video"):
        plan_answer(offer(VIDEO), default_registry(), CONTEXT)


def test_audio_without_a_common_codec_is_refused_with_the_codecs():
    with pytest.raises(NothingAccepted, match="no common audio codec: offered GSM/8000"):
        plan_answer(offer("m=audio 4000 RTP/AVP 3"), default_registry(), CONTEXT)


def test_a_line_the_offer_rejected_stays_rejected():
    plan = plan_answer(offer("m=audio 0 RTP/AVP 0", AUDIO), default_registry(), CONTEXT)
    assert [line.accepted for line in plan.lines] == [False, True]


def test_a_session_of_a_kind_without_worker_needs_none():
    registry = StreamRegistry([AudioKind(), FakeMsrpKind()])
    plan = plan_answer(offer(CHAT, VIDEO), registry, CONTEXT)
    assert [kind.name for kind in plan.kinds()] == ["fake-msrp"]
    assert not plan.uses_media_worker and not plan.takes("audio")
    stream = plan.kinds()[0].new_stream(CONTEXT, 0)
    assert stream.index == 0 and stream.state.value == "new"


def test_the_registry_names_its_kinds():
    registry = default_registry()
    assert registry.names() == ["audio", "file-transfer", "chat", "screen-sharing"]
    assert "chat" in registry
    with pytest.raises(UnknownStreamKind,
                       match="known: audio, file-transfer, chat, screen-sharing"):
        registry.get("video")
    with pytest.raises(ValueError):
        registry.register(registry.get("audio"))
