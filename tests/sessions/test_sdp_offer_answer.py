"""Offer/answer helpers for the media worker: split, merge, sanitise, versions, hold, changes."""

from __future__ import annotations

import pytest

from sipd.sessions.sdp import (
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SessionVersion,
    changed_media,
    held_by_remote,
    media_changed,
    merge_answer,
    merge_offer,
    parse_sdp,
    sanitize_worker_sdp,
    set_hold,
    split_media,
    stream_is_held,
)

from .test_sdp_samples import (
    BARESIP_OFFER,
    BLINK_AUDIO_CHAT_OFFER,
    BLINK_FILE_OFFER,
    BLINK_SCREEN_SHARING_OFFER,
    LINPHONE_HOLD_REINVITE,
    LINPHONE_PLAIN_OFFER,
    LINPHONE_SRTP_OFFER,
    PJSUA_ANSWER,
    PJSUA_OFFER,
    RFC2543_HOLD,
    TWO_AUDIO_OFFER,
    crlf,
)

OURS = Origin("-", "777", 777, "IN", "IP4", "203.0.113.5")
PRIVATE = ("s=pjmedia", "b=AS", "b=TIAS", "a=X-nat", "a=ssrc", "a=ssrc-group", "a=msid")


def chat_answer(port: int = 2860) -> MediaDescription:
    chat = MediaDescription.new("message", port, "TCP/TLS/MSRP", ["*"],
                                connection=Connection("203.0.113.5"))
    chat.path = [f"msrps://203.0.113.5:{port}/ours;tcp"]
    chat.accept_types = ["message/cpim", "text/plain"]
    chat.set_attribute("setup", "passive")
    return chat


def assert_private_lines_gone(text: str) -> None:
    for line in text.split("\r\n"):
        assert not line.startswith(PRIVATE), line


# --- split ----------------------------------------------------------------------------------

def test_split_audio_and_chat():
    offer = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    split = split_media(offer)
    assert split.worker_indices == (0,) and list(split.others) == [1] and split.count == 2
    assert split.has_active_worker_media
    worker = split.worker
    assert [m.type for m in worker.media] == ["audio"]
    assert "m=message" not in str(worker)
    # session-level lines are kept whole, the audio section is the offer's
    assert worker.lines == offer.lines
    assert worker.media[0] == offer.media[0]
    assert split.others[1] == offer.media[1]
    # what goes to the worker is a complete description it can parse
    assert parse_sdp(bytes(worker)) == worker
    # copies: editing the parts leaves the offer alone
    worker.media[0].port = 1
    split.others[1].port = 1
    assert offer.media[0].port == 50010 and offer.media[1].port == 2855


def test_split_keeps_session_level_connection_for_the_worker():
    split = split_media(parse_sdp(BLINK_SCREEN_SHARING_OFFER))
    assert split.worker_indices == (0,) and list(split.others) == [1]
    assert split.worker.connection == Connection("192.0.2.40")
    assert split.worker.connection_of(0) == Connection("192.0.2.40")


def test_split_message_only_has_no_worker_part():
    split = split_media(parse_sdp(BLINK_FILE_OFFER))
    assert split.worker is None and split.worker_indices == ()
    assert not split.has_active_worker_media
    assert list(split.others) == [0]


def test_split_two_audio_lines_and_a_rejected_one():
    text = TWO_AUDIO_OFFER + crlf("m=message 0 TCP/MSRP *\nm=audio 0 RTP/AVP 0\n")
    split = split_media(parse_sdp(text))
    assert split.worker_indices == (0, 1, 3)
    assert [m.port for m in split.worker.media] == [6000, 6002, 0]
    assert list(split.others) == [2]


def test_split_with_only_rejected_audio_and_own_origin():
    offer = parse_sdp(crlf("v=0\no=- 1 5 IN IP4 h\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\n"
                           "m=audio 0 RTP/AVP 0\nm=message 2855 TCP/MSRP *\n"))
    leg = Origin("-", "9", 3, address="127.0.0.1")
    split = split_media(offer, origin=leg)
    assert split.worker is not None and not split.has_active_worker_media
    assert split.worker.origin == leg and offer.origin.session_version == 5


# --- sanitise -------------------------------------------------------------------------------

def test_sanitize_worker_sdp():
    worker = parse_sdp(PJSUA_ANSWER)
    clean = sanitize_worker_sdp(worker)
    text = str(clean)
    assert_private_lines_gone(text)
    assert clean.session_name == "sipd"
    audio = clean.media[0]
    assert audio.rtcp is not None and audio.direction is Direction.SENDRECV
    assert [c.encoding for c in audio.codecs()] == ["G722", "telephone-event"]
    assert audio.fmtp(101).parameters == "0-16"
    assert audio.bandwidths == []
    assert str(worker) == PJSUA_ANSWER  # the worker's own description is left alone
    assert sanitize_worker_sdp(worker, "Custom").session_name == "Custom"


def test_sanitize_keeps_crypto_ice_and_ptime():
    worker = parse_sdp(LINPHONE_SRTP_OFFER.replace("a=record:off", "a=X-nat:0")
                       + crlf("a=ptime:20\na=candidate:1 1 UDP 1 192.0.2.30 7078 typ host\n"
                              "a=ssrc:1 cname:x\n"))
    clean = sanitize_worker_sdp(worker)
    audio = clean.media[0]
    assert len(audio.crypto) == 2 and audio.ptime == 20 and len(audio.candidates) == 1
    assert not audio.has_attribute("ssrc") and not clean.has_attribute("x-nat")
    assert clean.has_attribute("rtcp-xr")


# --- merge an answer ------------------------------------------------------------------------

def test_merge_audio_and_chat_answer():
    offer = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    answer = merge_answer(offer, parse_sdp(PJSUA_ANSWER), {1: chat_answer()}, origin=OURS)
    assert [m.type for m in answer.media] == ["audio", "message"]
    assert answer.origin == OURS and answer.session_name == "sipd"
    assert answer.timing == offer.timing
    audio, chat = answer.media
    assert audio.port == 4002 and answer.connection_of(audio) == Connection("192.0.2.10")
    assert chat.port == 2860 and chat.path == ["msrps://203.0.113.5:2860/ours;tcp"]
    assert answer.connection is None  # every stream carries its own c=
    assert_private_lines_gone(str(answer))
    assert parse_sdp(bytes(answer)) == answer


def test_merge_rejects_what_nobody_answered():
    offer = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    answer = merge_answer(offer, parse_sdp(PJSUA_ANSWER), {}, origin=OURS)
    assert [(m.type, m.port, m.proto, m.formats) for m in answer.media] == [
        ("audio", 4002, "RTP/AVP", ["9", "101"]), ("message", 0, "TCP/TLS/MSRP", ["*"])]
    assert answer.media[1].lines == []
    # the rejected line still has a connection through the session level
    assert answer.connection == Connection("192.0.2.10")
    assert merge_answer(offer, parse_sdp(PJSUA_ANSWER), {1: None}, origin=OURS) == answer


def test_merge_without_worker_rejects_audio():
    offer = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    answer = merge_answer(offer, None, {1: chat_answer()}, origin=OURS)
    assert [(m.type, m.port) for m in answer.media] == [("audio", 0), ("message", 2860)]
    assert answer.media[0].formats == ["113", "9", "0", "8", "101"]
    assert answer.connection == Connection("203.0.113.5")


def test_merge_message_only_offer():
    offer = parse_sdp(BLINK_FILE_OFFER)
    ours = chat_answer()
    ours.direction = Direction.SENDONLY.answer()
    answer = merge_answer(offer, None, {0: ours}, origin=OURS)
    assert len(answer.media) == 1 and answer.direction_of(0) is Direction.RECVONLY
    assert answer.connection is None


def test_merge_two_audio_lines_second_rejected_by_the_worker():
    offer = parse_sdp(TWO_AUDIO_OFFER + crlf("m=message 2855 TCP/MSRP *\n"
                                             "a=path:msrp://[2001:db8::5]:2855/x;tcp\n"
                                             "a=accept-types:text/plain\n"))
    worker_answer = parse_sdp(crlf("v=0\no=- 5 5 IN IP6 2001:db8::10\ns=pjmedia\nt=0 0\n"
                                   "m=audio 4000 RTP/AVP 0\nc=IN IP6 2001:db8::10\n"
                                   "a=sendrecv\nm=audio 0 RTP/AVP 9\n"))
    answer = merge_answer(offer, worker_answer, {2: chat_answer()}, origin=OURS)
    assert [(m.type, m.port) for m in answer.media] == [("audio", 4000), ("audio", 0),
                                                        ("message", 2860)]
    assert answer.connection == Connection("2001:db8::10", "IP6")


def test_merge_when_the_worker_answers_fewer_lines():
    offer = parse_sdp(TWO_AUDIO_OFFER)
    worker_answer = parse_sdp(crlf("v=0\no=- 5 5 IN IP4 192.0.2.10\ns=pjmedia\nt=0 0\n"
                                   "m=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.10\n"))
    answer = merge_answer(offer, worker_answer, {}, origin=OURS)
    assert [(m.port, m.formats) for m in answer.media] == [(4000, ["0"]), (0, ["9"])]


def test_merge_keeps_offered_rejections_rejected():
    offer = parse_sdp(BLINK_AUDIO_CHAT_OFFER.replace("m=message 2855", "m=message 0"))
    answer = merge_answer(offer, parse_sdp(PJSUA_ANSWER), {1: chat_answer()}, origin=OURS)
    assert answer.media[1].port == 0


def test_merge_refuses_an_answer_of_another_type():
    offer = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    video = MediaDescription.new("video", 5000, "RTP/AVP", ["31"])
    with pytest.raises(ValueError):
        merge_answer(offer, None, {1: video}, origin=OURS)
    no_address = chat_answer()
    no_address.connection = None
    with pytest.raises(ValueError):
        merge_answer(offer, None, {1: no_address}, origin=OURS)
    with pytest.raises(ValueError):
        merge_offer(None, [no_address], origin=OURS)
    # a worker answering with another type gets its line rejected instead
    odd = parse_sdp(PJSUA_ANSWER.replace("m=audio 4002", "m=video 4002"))
    assert merge_answer(offer, odd, {}, origin=OURS).media[0].port == 0


def test_merge_pushes_the_worker_session_level_down_to_its_streams():
    worker_answer = parse_sdp(crlf("v=0\no=- 5 5 IN IP4 192.0.2.10\ns=pjmedia\n"
                                   "c=IN IP4 192.0.2.10\nb=CT:500\nt=0 0\na=sendonly\n"
                                   "a=ice-options:trickle\nm=audio 4000 RTP/AVP 0\n"))
    offer = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    answer = merge_answer(offer, worker_answer, {1: chat_answer()}, origin=OURS)
    audio, chat = answer.media
    assert audio.connection == Connection("192.0.2.10") and audio.direction is Direction.SENDONLY
    assert answer.direction is None and answer.direction_of(chat) is Direction.SENDRECV
    assert answer.connection is None
    assert answer.attribute("ice-options") == "trickle"
    assert [str(b) for b in answer.bandwidths] == ["CT:500"]


# --- merge an offer -------------------------------------------------------------------------

def test_merge_offer_with_worker_audio_and_our_chat():
    worker_offer = parse_sdp(PJSUA_OFFER)
    offer = merge_offer(worker_offer, [None, chat_answer()], origin=OURS, session_name="sipd 0.1")
    assert [m.type for m in offer.media] == ["audio", "message"]
    assert offer.session_name == "sipd 0.1" and offer.timing.start == 0
    assert_private_lines_gone(str(offer))
    assert offer.media[0].rtcp.port == 4001
    # the description that reaches the remote party splits back into the same parts
    split = split_media(parse_sdp(bytes(offer)))
    assert split.worker.media[0] == offer.media[0] and split.others[1] == offer.media[1]


def test_merge_offer_layout_must_fit_the_worker():
    worker_offer = parse_sdp(PJSUA_OFFER)
    with pytest.raises(ValueError):
        merge_offer(worker_offer, [None, None], origin=OURS)
    with pytest.raises(ValueError):
        merge_offer(worker_offer, [chat_answer()], origin=OURS)
    chat_only = merge_offer(None, [chat_answer()], origin=OURS)
    assert [m.type for m in chat_only.media] == ["message"]


def test_remote_answer_goes_back_to_the_worker():
    """Outgoing call: our merged offer, the remote's answer split for the worker."""
    offer = merge_offer(parse_sdp(PJSUA_OFFER), [None, chat_answer()], origin=OURS)
    remote = parse_sdp(BLINK_AUDIO_CHAT_OFFER)  # stands in for the remote answer
    split = split_media(remote)
    assert len(split.worker.media) == len(split_media(offer).worker.media)


# --- versions -------------------------------------------------------------------------------

def test_session_version():
    versions = SessionVersion("203.0.113.5", session_id=100)
    first = versions.next()
    assert (first.session_id, first.session_version, first.address, first.addrtype) == (
        "100", 100, "203.0.113.5", "IP4")
    assert versions.current() == first
    assert versions.next().session_version == 101
    assert versions.current().session_version == 101
    assert SessionVersion("2001:db8::1").current().addrtype == "IP6"
    random = SessionVersion("h")
    assert 0 < random.session_id < 2**62 + 1 and random.next().session_version == random.session_id


def test_session_version_stamp():
    versions = SessionVersion("203.0.113.5", session_id=7)
    sdp = merge_offer(parse_sdp(PJSUA_OFFER), [None], origin=OURS)
    assert versions.stamp(sdp).origin.session_version == 7
    assert versions.stamp(sdp).origin.session_version == 8  # every new description
    assert versions.stamp(sdp, only_if_changed=True).origin.session_version == 8
    set_hold(sdp, True)
    assert versions.stamp(sdp, only_if_changed=True).origin.session_version == 9
    assert sdp.origin.session_id == "7"


# --- hold -----------------------------------------------------------------------------------

def test_set_hold_and_resume():
    sdp = merge_offer(parse_sdp(PJSUA_OFFER), [None, chat_answer()], origin=OURS)
    set_hold(sdp, True)
    assert sdp.direction_of(0) is Direction.SENDONLY
    assert sdp.direction_of(1) is Direction.SENDRECV  # the chat is not held
    set_hold(sdp, True, inactive=True)
    assert sdp.direction_of(0) is Direction.INACTIVE
    set_hold(sdp, False)
    assert sdp.direction_of(0) is Direction.SENDRECV
    assert str(sdp).count("a=sendrecv") == 1  # replaced in place, not added


def test_hold_when_we_only_receive_becomes_inactive():
    sdp = parse_sdp(TWO_AUDIO_OFFER)
    set_hold(sdp, True)
    assert [sdp.direction_of(m) for m in sdp.media] == [Direction.SENDONLY, Direction.INACTIVE]


def test_hold_leaves_rejected_lines_alone():
    sdp = parse_sdp(RFC2543_HOLD + crlf("m=audio 0 RTP/AVP 0\n"))
    set_hold(sdp, True)
    assert sdp.media[0].direction is Direction.SENDONLY and sdp.media[1].direction is None


def test_held_by_remote():
    assert held_by_remote(parse_sdp(LINPHONE_HOLD_REINVITE))
    assert not held_by_remote(parse_sdp(LINPHONE_PLAIN_OFFER))
    assert held_by_remote(parse_sdp(RFC2543_HOLD))
    assert not held_by_remote(parse_sdp(BLINK_FILE_OFFER))  # sendonly, but no audio
    inactive = parse_sdp(LINPHONE_PLAIN_OFFER.replace("a=sendrecv", "a=inactive"))
    assert held_by_remote(inactive)
    recvonly = parse_sdp(LINPHONE_PLAIN_OFFER.replace("a=sendrecv", "a=recvonly"))
    assert not held_by_remote(recvonly)
    session_level = parse_sdp(crlf("v=0\no=- 1 2 IN IP4 h\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
                                   "a=sendonly\nm=audio 4000 RTP/AVP 0\n"))
    assert held_by_remote(session_level)
    # one audio line held, the other not: not held
    assert not held_by_remote(parse_sdp(TWO_AUDIO_OFFER.replace("a=recvonly", "a=sendonly")))
    assert stream_is_held(parse_sdp(TWO_AUDIO_OFFER.replace("a=recvonly", "a=sendonly")), 1)


# --- changes --------------------------------------------------------------------------------

def test_same_origin_means_no_change():
    old = parse_sdp(LINPHONE_PLAIN_OFFER)
    same_version = parse_sdp(LINPHONE_HOLD_REINVITE.replace(" 679 ", " 678 "))
    assert not media_changed(old, same_version)  # RFC 3264 §8: the version decides
    assert changed_media(old, same_version) == []
    assert media_changed(old, parse_sdp(LINPHONE_HOLD_REINVITE))
    assert changed_media(old, parse_sdp(LINPHONE_HOLD_REINVITE)) == [0]


def test_new_version_without_change():
    old = parse_sdp(LINPHONE_PLAIN_OFFER)
    bumped = parse_sdp(LINPHONE_PLAIN_OFFER.replace(" 678 ", " 680 ").replace("s=Talk", "s=X"))
    assert not media_changed(old, bumped)
    assert changed_media(old, bumped) == []


def test_changed_media_by_stream():
    old = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    new_version = " 3913364406 IN"
    chat_moved = parse_sdp(BLINK_AUDIO_CHAT_OFFER.replace(" 3913364405 IN", new_version)
                           .replace("m=message 2855", "m=message 2999"))
    assert media_changed(old, chat_moved) and changed_media(old, chat_moved) == [1]
    added = parse_sdp(BLINK_AUDIO_CHAT_OFFER.replace(" 3913364405 IN", new_version)
                      + crlf("m=video 0 RTP/AVP 31\n"))
    assert changed_media(old, added) == [2]
    # a session-level c= change moves every stream that relies on it
    screen = parse_sdp(BLINK_SCREEN_SHARING_OFFER)
    moved = parse_sdp(BLINK_SCREEN_SHARING_OFFER
                      .replace("c=IN IP4 192.0.2.40", "c=IN IP4 192.0.2.41")
                      .replace("3913364600 IN", "3913364601 IN"))
    assert changed_media(screen, moved) == [0, 1]
    # the same direction written at the session level instead of the media level: no change
    baresip = parse_sdp(BARESIP_OFFER)
    session_level = parse_sdp(BARESIP_OFFER.replace("a=sendrecv\r\n", "")
                              .replace("a=ice-lite", "a=ice-lite\r\na=sendrecv")
                              .replace(" 3216514283 ", " 3216514284 "))
    assert changed_media(baresip, session_level) == []
    assert not media_changed(baresip, session_level)
