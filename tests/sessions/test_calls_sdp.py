"""What a back-to-back call passes between its legs (sipd.sessions.streams.audio.sdp), no I/O."""

from __future__ import annotations

import pytest

from sipd.sessions.sdp import SessionVersion, parse_sdp
from sipd.sessions.streams.audio import sdp

# What a pjsua2 worker offers (docs/design.md §2: lines that do not belong outside).
WORKER_OFFER = (
    b"v=0\r\no=- 4004474012 4004474012 IN IP4 127.0.0.1\r\ns=pjmedia\r\nb=AS:84\r\nt=0 0\r\n"
    b"a=X-nat:0\r\nm=audio 53826 RTP/AVP 0 8 120\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\n"
    b"a=rtcp:53827 IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\n"
    b"a=ssrc:973411625 cname:0c7c7afd45db4cfd\r\n"
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:dqEhvDabf28pHljRu/ED/+TYg5Lb6f89V0BdsVHn\r\n"
)

# A remote offer with audio and an MSRP chat stream (which the worker must never see).
REMOTE_OFFER = (
    b"v=0\r\no=bob 7 7 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    b"m=message 2855 TCP/TLS/MSRP *\r\na=accept-types:text/plain\r\n"
    b"a=path:msrps://192.0.2.9:2855/abc;tcp\r\n"
)


def test_the_outside_offer_is_sanitised_and_versioned():
    versions = SessionVersion("192.0.2.5")
    offer = sdp.outside_offer(sdp.parse(WORKER_OFFER), versions)
    text = offer.decode()
    for foreign in ("pjmedia", "b=AS", "b=TIAS", "X-nat", "a=ssrc"):
        assert foreign not in text
    assert "a=crypto:1" in text and "m=audio 53826" in text
    origin = parse_sdp(offer).origin
    assert origin.address == "192.0.2.5"
    # The same description again keeps its version (a refresh is no change, RFC 3264 §8)...
    again = parse_sdp(sdp.outside_offer(sdp.parse(WORKER_OFFER), versions, offer)).origin
    assert again.session_version == origin.session_version
    # ...a hold is a change.
    held = sdp.parse(WORKER_OFFER.replace(b"a=sendrecv", b"a=sendonly"))
    assert sdp.holds(held)
    changed = parse_sdp(sdp.outside_offer(held, versions, offer))
    assert changed.origin.session_version == origin.session_version + 1


def test_the_worker_sees_only_the_audio_and_the_answer_keeps_the_layout():
    remote = sdp.parse(REMOTE_OFFER)
    assert sdp.has_audio(remote)
    to_worker = parse_sdp(sdp.for_worker(remote, SessionVersion("127.0.0.1")))
    assert [m.type for m in to_worker.media] == ["audio"]
    assert to_worker.origin.address == "127.0.0.1"

    worker_answer = sdp.parse(WORKER_OFFER.replace(b" 0 8 120", b" 0 120"))
    answer = parse_sdp(sdp.outside_answer(remote, worker_answer, SessionVersion("192.0.2.5")))
    assert [m.type for m in answer.media] == ["audio", "message"]
    assert not answer.media[0].is_rejected and answer.media[1].is_rejected
    # A re-offer keeps the message line's position, rejected.
    assert [None if m is None else m.type for m in sdp.layout_of(bytes(answer))] == \
        [None, "message"]


def test_what_cannot_be_passed_on_says_why():
    with pytest.raises(sdp.SdpMismatch, match="no SDP"):
        sdp.parse(b"")
    with pytest.raises(sdp.SdpMismatch, match="malformed"):
        sdp.parse(b"v=0\r\nnonsense\r\n")
    chat_only = sdp.parse(REMOTE_OFFER.split(b"m=audio")[0] + b"m=message" +
                          REMOTE_OFFER.split(b"m=message")[1])
    assert not sdp.has_audio(chat_only)
    with pytest.raises(sdp.SdpMismatch, match="no audio"):
        sdp.for_worker(chat_only, SessionVersion("127.0.0.1"))
