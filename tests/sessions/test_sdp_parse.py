"""Parsing errors (with line numbers), limits, building and editing descriptions."""

from __future__ import annotations

import pytest

from sipd.sessions.sdp import (
    MAX_MEDIA,
    MAX_SDP_SIZE,
    Attribute,
    Bandwidth,
    Connection,
    CryptoKey,
    Direction,
    MediaDescription,
    Origin,
    SDPError,
    SessionDescription,
    Timing,
    parse_sdp,
)

from .test_sdp_samples import BLINK_AUDIO_CHAT_OFFER, PJSUA_OFFER, crlf

HEAD = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"  # lines 1-5


def error_of(text: str | bytes) -> SDPError:
    with pytest.raises(SDPError) as caught:
        parse_sdp(text)
    return caught.value


@pytest.mark.parametrize("text, line, words", [
    ("", None, "empty"),
    ("\r\n\r\n", None, "empty"),
    ("o=- 1 1 IN IP4 h\ns=-\n", 1, "v=0"),
    ("v=1\no=- 1 1 IN IP4 h\ns=-\n", 1, "version 0"),
    ("v=0\ns=-\nt=0 0\n", None, "o="),
    ("v=0\no=- 1 1 IN IP4 h\nt=0 0\n", None, "s="),
    ("v=0\no=- 1 1 IN IP4 h\ns=-\nv=0\n", 4, "first line"),
    ("v=0\no=- 1 1 IN IP4 h\no=- 1 1 IN IP4 h\ns=-\n", 3, "more than one o="),
    ("v=0\no=- 1 1 IN IP4 h\ns=-\ns=-\n", 4, "more than one s="),
    ("v=0\no=- 1 IN IP4 h\ns=-\n", 2, "6 fields"),
    ("v=0\no=- 1 x IN IP4 h\ns=-\n", 2, "session version"),
    (HEAD + "c=IN IP4 192.0.2.2\n", 6, "more than one c="),
    (HEAD + "\n", None, None),  # trailing blank line: accepted
    (HEAD + "\nm=audio 1 RTP/AVP 0\n", 6, "<type>=<value>"),
    (HEAD + "m audio\n", 6, "<type>=<value>"),
    (HEAD + "1=x\n", 6, "not a letter"),
    (HEAD + "a=foo\x00bar\n", 6, "not allowed"),
    (HEAD + "a=foo\rbar\n", 6, "not allowed"),
    (HEAD + "i=\ud800\n", 6, "not allowed"),
    (HEAD + "b=AS\n", 6, "<type>:<bandwidth>"),
    (HEAD + "b=AS:fast\n", 6, "bandwidth"),
    (HEAD + "t=0\n", 6, "2 fields"),
    (HEAD + "r=7d 1h\n", 6, "r="),
    (HEAD + "r=7d 1h x\n", 6, "r= time"),
    (HEAD + "z=2882844526\n", 6, "z="),
    (HEAD + "z=2882844526 -1h 5\n", 6, "pairs"),
    ("v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4\n", 4, "3 fields"),
    ("v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 224.2.1.1/127/3/1\n", 4, "/ttl/count"),
    ("v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP6 ff15::101/3/1\n", 4, "one /count"),
    ("v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 224.2.1.1/x\n", 4, "multicast"),
    (HEAD + "m=audio\n", 6, "at least 3"),
    (HEAD + "m=audio 70000 RTP/AVP 0\n", 6, "larger than 65535"),
    (HEAD + "m=audio -1 RTP/AVP 0\n", 6, "port"),
    (HEAD + "m=audio 4000/0 RTP/AVP 0\n", 6, "port count"),
    (HEAD + "m=audio 4000 RTP/AVP\n", 6, "no media format"),
    (HEAD + "m=audio 4000 RTP//AVP 0\n", 6, "transport protocol"),
    (HEAD + "m=audio 4000 RTP/AVP 0\nt=0 0\n", 7, "not allowed after m="),
    (HEAD + "m=audio 4000 RTP/AVP 0\no=- 1 1 IN IP4 h\n", 7, "session-level"),
    ("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n", 5, "no c= line"),
    (HEAD + "a=\n", 6, "attribute name"),
    (HEAD + "a=bad name:1\n", 6, "attribute name"),
    (HEAD + "a=sendonly:yes\n", 6, "takes no value"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=rtpmap\n", 7, "needs a value"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU\n", 7, "clock rate"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/fast\n", 7, "clock rate"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=rtpmap:200 X/8000\n", 7, "larger than 127"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/8000/two\n", 7, "channels"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=fmtp:\n", 7, "fmtp format"),
    (HEAD + "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80\n", 7, "at least 3"),
    (HEAD + "m=audio 4000 RTP/SAVP 0\na=crypto:x AES inline:QUJD\n", 7, "tag"),
    (HEAD + "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES inline\n", 7, "<method>:<info>"),
    (HEAD + "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES inline:!!!\n", 7, "inline key"),
    (HEAD + "m=audio 4000 RTP/SAVP 0\na=crypto:1 AES inline:QUJD|forever\n", 7, "lifetime"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=rtcp:port\n", 7, "rtcp port"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=rtcp:4001 IN IP4\n", 7, "a=rtcp"),
    (HEAD + "m=audio 4000 RTP/AVP 0\na=ptime:twenty\n", 7, "packet time"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=path:sip:bob@h\n", 7, "msrp"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=path: \n", 7, "empty"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=accept-types:text\n", 7, "<type>/<subtype>"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=max-size:big\n", 7, "max-size"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=setup:sideways\n", 7, "setup role"),
    (HEAD + 'm=message 2855 TCP/MSRP *\na=file-selector:name:"x\n', 7, "closing quote"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=file-selector:name:x\n", 7, "quoted"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=file-selector:size:1 size:2\n", 7, "selector"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=file-selector:hash:sha-1:zz\n", 7, "hash"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=file-selector:type:text\n", 7, "type/subtype"),
    (HEAD + 'm=message 2855 TCP/MSRP *\na=file-selector:name:"a"size:1\n', 7, "closing quote"),
    (HEAD + "m=message 2855 TCP/MSRP *\na=file-transfer-id: \n", 7, "empty"),
])
def test_malformed_descriptions_name_the_line(text, line, words):
    if words is None:
        parse_sdp(text)
        return
    error = error_of(text)
    assert error.line == line
    assert words.lower() in error.detail.lower()
    assert str(error).startswith(f"line {line}: " if line else error.detail)


def test_line_numbers_count_crlf_lines():
    text = PJSUA_OFFER.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMU/")
    error = error_of(text)
    assert error.line == PJSUA_OFFER.split("\r\n").index("a=rtpmap:0 PCMU/8000") + 1


def test_size_limits():
    big = HEAD + "a=x:" + "y" * MAX_SDP_SIZE + "\n"
    assert "more than" in error_of(big).detail
    assert "more than" in error_of(big.encode()).detail
    assert "more than" in error_of(HEAD + "a=\u20ac" * (MAX_SDP_SIZE // 3)).detail
    many = HEAD + "m=audio 0 RTP/AVP 0\n" * (MAX_MEDIA + 1)
    assert error_of(many).line == 5 + MAX_MEDIA + 1
    assert "lines" in error_of(HEAD + "a=x\n" * 5000).detail


def test_only_text_or_bytes():
    assert "not int" in error_of(5).detail  # type: ignore[arg-type]
    assert parse_sdp(memoryview(PJSUA_OFFER.encode())) == parse_sdp(bytearray(PJSUA_OFFER.encode()))
    assert "more than" in error_of("\ud800" * MAX_SDP_SIZE).detail


def test_code_cannot_inject_lines():
    sdp = parse_sdp(PJSUA_OFFER)
    for setter in (lambda: setattr(sdp, "session_name", "x\r\na=evil"),
                   lambda: setattr(sdp, "information", "x\nm=audio 1 RTP/AVP 0"),
                   lambda: setattr(sdp, "connection", Connection("a b")),
                   lambda: sdp.media[0].add_attribute("label", "1\r\nc=IN IP4 6.6.6.6"),
                   lambda: sdp.media[0].set_attribute("ptime", "20\x00")):
        with pytest.raises(SDPError):
            setter()
    assert str(sdp) == PJSUA_OFFER


def test_lenient_but_kept_lines():
    text = crlf(HEAD + "x=unknown line\nk=prompt\nm=audio 0 RTP/AVP\nq=media unknown\n"
                "m=video 5000 RTP/AVP 31\na=Sendonly\n")
    sdp = parse_sdp(text)
    assert str(sdp) == text
    assert sdp.value("x") == "unknown line" and sdp.media[0].value("q") == "media unknown"
    assert sdp.media[0].formats == [] and sdp.media[0].is_rejected
    assert sdp.media[1].direction is Direction.SENDONLY  # names compare case-insensitively


def test_non_utf8_bytes_round_trip():
    data = (crlf(HEAD).replace("s=-", "s=Caf\xe9") ).encode("latin-1")
    sdp = parse_sdp(data)
    assert bytes(sdp) == data


def test_multicast_connections():
    sdp = parse_sdp(crlf("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=video 5000 RTP/AVP 31\n"
                         "c=IN IP4 224.2.1.1/127/2\nc=IN IP4 224.2.1.3/127\n"
                         "m=audio 5002/2 RTP/AVP 0\nc=IN IP6 ff15::101/3\n"))
    video, audio = sdp.media
    assert video.connections == [Connection("224.2.1.1", ttl=127, count=2),
                                 Connection("224.2.1.3", ttl=127)]
    assert audio.connection == Connection("ff15::101", "IP6", count=3)
    assert audio.port_count == 2
    assert str(video.connections[0]) == "IN IP4 224.2.1.1/127/2"


def test_build_a_description_from_scratch():
    sdp = SessionDescription.new(Origin("-", "42", 42, address="192.0.2.1"), "sipd",
                                 connection=Connection("192.0.2.1"))
    audio = MediaDescription.new("audio", 4000, "RTP/AVP", ["0", "101"])
    audio.add_attribute("rtpmap", "101 telephone-event/8000")
    audio.add_attribute("fmtp", "101 0-16")
    audio.direction = Direction.SENDRECV
    chat = MediaDescription.new("message", 2855, "TCP/TLS/MSRP", ["*"],
                                connection=Connection("192.0.2.1"))
    chat.path = ["msrps://192.0.2.1:2855/abc;tcp"]
    chat.accept_types = ["message/cpim", "text/plain"]
    chat.accept_wrapped_types = ["text/plain"]
    sdp.media = [audio, chat]
    sdp.add_bandwidth(Bandwidth("CT", 1000))
    expected = crlf("v=0\no=- 42 42 IN IP4 192.0.2.1\ns=sipd\nc=IN IP4 192.0.2.1\nb=CT:1000\n"
                    "t=0 0\nm=audio 4000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n"
                    "a=fmtp:101 0-16\na=sendrecv\nm=message 2855 TCP/TLS/MSRP *\n"
                    "c=IN IP4 192.0.2.1\na=path:msrps://192.0.2.1:2855/abc;tcp\n"
                    "a=accept-types:message/cpim text/plain\n"
                    "a=accept-wrapped-types:text/plain\n")
    assert str(sdp) == expected
    assert parse_sdp(expected) == sdp
    chat.accept_wrapped_types = []
    assert not chat.has_attribute("accept-wrapped-types")


def test_editing_keeps_positions():
    sdp = parse_sdp(PJSUA_OFFER)
    audio = sdp.media[0]
    audio.direction = Direction.INACTIVE
    lines = str(sdp).split("\r\n")
    assert lines.index("a=inactive") == PJSUA_OFFER.split("\r\n").index("a=sendrecv")
    audio.direction = None
    assert audio.direction is None and "a=inactive" not in str(sdp)
    audio.port = 0
    audio.formats = ["0"]
    assert audio.media_line.value == "audio 0 RTP/AVP 0"
    audio.connection = Connection("198.51.100.1")
    assert audio.connections == [Connection("198.51.100.1")]
    assert str(audio).startswith("m=audio 0 RTP/AVP 0\r\nc=IN IP4 198.51.100.1\r\n")
    assert audio.remove_bandwidths("tias") == 1 and [b.type for b in audio.bandwidths] == ["AS"]
    assert audio.remove_attributes("rtpmap", "FMTP") == 5
    sdp.session_name = ""
    assert sdp.session_name == "-"
    sdp.timing = Timing(3, 4)
    assert sdp.timing == Timing(3, 4)
    sdp.information = "call"
    assert str(sdp).split("\r\n")[3] == "i=call"
    assert sdp.information == "call"


def test_set_attribute_replaces_the_first_and_drops_the_rest():
    media = MediaDescription.new("audio", 1, "RTP/AVP", ["0"])
    for value in ("20", "30", "40"):
        media.add_attribute("ptime", value)
    media.add_attribute("sendrecv")
    media.set_attribute("PTIME", "10")
    assert media.attributes == [Attribute("PTIME", "10"), Attribute("sendrecv")]
    assert media.ptime == 10.0


def test_editing_refuses_malformed_values():
    media = MediaDescription.new("audio", 1, "RTP/AVP", ["0"])
    with pytest.raises(SDPError):
        media.add_attribute("rtpmap", "0 PCMU")
    with pytest.raises(SDPError):
        media.set_attribute("bad name")
    with pytest.raises(SDPError):
        media.port = 70000
    with pytest.raises(SDPError):
        MediaDescription.new("audio", 1, "RTP/AVP", [])
    with pytest.raises(SDPError):
        media.path = ["http://example.com/"]


def test_crypto_key_of_another_method():
    key = CryptoKey.parse("uri:https://keys.example/k1")
    assert key.key_salt is None and key.lifetime is None and key.mki is None
    assert str(key) == "uri:https://keys.example/k1"


def test_direction_algebra():
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.SENDONLY.answer() is Direction.RECVONLY
    assert Direction.RECVONLY.answer() is Direction.SENDONLY
    assert Direction.SENDRECV.answer(Direction.RECVONLY) is Direction.RECVONLY
    assert Direction.SENDONLY.answer(Direction.SENDONLY) is Direction.INACTIVE
    assert Direction.SENDRECV.held() is Direction.SENDONLY
    assert Direction.RECVONLY.held() is Direction.INACTIVE
    assert Direction.SENDRECV.held(inactive=True) is Direction.INACTIVE
    assert Direction.INACTIVE.resumed() is Direction.SENDRECV
    assert [d.sends for d in Direction] == [True, True, False, False]


def test_equality_ignores_line_numbers():
    sdp = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    assert sdp == sdp.copy() and sdp.media[1] == sdp.copy().media[1]
    copy = sdp.copy()
    copy.media[1].port = 1
    assert sdp.media[1].port == 2855  # copies are independent
    assert sdp != copy and sdp != str(sdp)
    assert "message" in repr(sdp) and "2855" in repr(sdp.media[1])
