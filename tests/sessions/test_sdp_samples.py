"""Real-world style descriptions (written for these tests in the manner of what pjsua, baresip,
linphone and Blink send) and what the typed accessors read from them. The other SDP tests
import the samples from here."""

from __future__ import annotations

import pytest

from sipd.sessions.sdp import (
    Connection,
    Crypto,
    Direction,
    FileSelector,
    Origin,
    Rtcp,
    RtpMap,
    parse_sdp,
)


def crlf(text: str) -> str:
    """The sample as it is sent: CRLF line ends."""
    return text.replace("\n", "\r\n")


# pjsua 2.x offering G722, PCMU, PCMA and telephone-event, with its private lines.
PJSUA_OFFER = crlf("""\
v=0
o=- 3908617734 3908617734 IN IP4 192.0.2.10
s=pjmedia
b=AS:84
t=0 0
a=X-nat:0
m=audio 4000 RTP/AVP 9 0 8 101
c=IN IP4 192.0.2.10
b=AS:64000
b=TIAS:64000
a=rtcp:4001 IN IP4 192.0.2.10
a=sendrecv
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ssrc:1208379624 cname:2a3b4c5d6e7f8091
""")

# The worker's answer to a Blink audio+chat offer whose audio part it got (one audio line).
PJSUA_ANSWER = crlf("""\
v=0
o=- 3908617800 3908617801 IN IP4 192.0.2.10
s=pjmedia
b=AS:84
t=0 0
a=X-nat:0
m=audio 4002 RTP/AVP 9 101
c=IN IP4 192.0.2.10
b=AS:64000
b=TIAS:64000
a=rtcp:4003 IN IP4 192.0.2.10
a=sendrecv
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ssrc:99887766 cname:0f1e2d3c4b5a6978
a=ssrc-group:FID 99887766 99887767
a=msid:stream track
""")

# baresip with opus, ICE candidates and its own attributes.
BARESIP_OFFER = crlf("""\
v=0
o=- 1686327093 3216514283 IN IP4 192.0.2.20
s=-
c=IN IP4 192.0.2.20
t=0 0
a=ice-lite
m=audio 10000 RTP/AVP 96 9 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-rsize
a=sendrecv
a=label:1
a=ssrc:2581929221 cname:baresip-cname
a=mid:0
a=ice-ufrag:c3vb
a=ice-pwd:8a5f0d2d1a0a6e9c3b8f1c2d
a=candidate:1 1 UDP 2130706431 192.0.2.20 10000 typ host
a=candidate:1 2 UDP 2130706430 192.0.2.20 10001 typ host
a=ptime:20
""")

# linphone offering SDES-SRTP with two crypto suites and session-level extras.
LINPHONE_SRTP_OFFER = crlf("""\
v=0
o=alice 1234 678 IN IP4 192.0.2.30
s=Talk
c=IN IP4 192.0.2.30
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/SAVP 96 97 98 0 8 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
""")

# Blink: audio and an MSRP chat stream over TLS.
BLINK_AUDIO_CHAT_OFFER = crlf("""\
v=0
o=- 3913364405 3913364405 IN IP4 192.0.2.40
s=Blink 5.1.0 (MacOSX)
t=0 0
m=audio 50010 RTP/AVP 113 9 0 8 101
c=IN IP4 192.0.2.40
a=rtcp:50011
a=rtpmap:113 opus/48000/2
a=fmtp:113 useinbandfec=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
m=message 2855 TCP/TLS/MSRP *
c=IN IP4 192.0.2.40
a=path:msrps://192.0.2.40:2855/a4c2f1e0b3d5;tcp
a=accept-types:message/cpim text/* application/im-iscomposing+xml
a=accept-wrapped-types:*
a=setup:active
""")

# Blink sending a file (RFC 5547): chat-less, audio-less.
BLINK_FILE_OFFER = crlf("""\
v=0
o=- 3913364500 3913364500 IN IP4 192.0.2.40
s=Blink 5.1.0 (MacOSX)
t=0 0
m=message 2856 TCP/TLS/MSRP *
c=IN IP4 192.0.2.40
a=sendonly
a=path:msrps://192.0.2.40:2856/f81d4fae7dec;tcp
a=accept-types:*
a=file-selector:name:"My cool picture.jpg" type:image/jpeg size:32349 \
hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E
a=file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd
a=file-disposition:attachment
a=max-size:33554432
a=setup:active
""")

# Blink screen sharing offer next to audio (the MSRP stream carries RFB).
BLINK_SCREEN_SHARING_OFFER = crlf("""\
v=0
o=- 3913364600 3913364600 IN IP4 192.0.2.40
s=Blink 5.1.0 (MacOSX)
c=IN IP4 192.0.2.40
t=0 0
m=audio 50012 RTP/AVP 9 0 101
a=rtpmap:101 telephone-event/8000
a=sendrecv
m=application 2857 TCP/TLS/MSRP *
a=path:msrps://192.0.2.40:2857/55aa66bb;tcp
a=accept-types:application/x-rfb
a=rfbsetup:active
a=setup:active
""")

# A linphone hold re-INVITE: same session, next version, sendonly.
LINPHONE_HOLD_REINVITE = crlf("""\
v=0
o=alice 1234 679 IN IP4 192.0.2.30
s=Talk
c=IN IP4 192.0.2.30
t=0 0
m=audio 7078 RTP/AVP 96 0 8 101
a=rtpmap:96 opus/48000/2
a=rtpmap:101 telephone-event/48000
a=sendonly
""")
LINPHONE_PLAIN_OFFER = LINPHONE_HOLD_REINVITE.replace(" 679 ", " 678 ").replace(
    "a=sendonly", "a=sendrecv")

# An old-style (RFC 2543) hold: the connection address 0.0.0.0, no direction attribute.
RFC2543_HOLD = crlf("""\
v=0
o=bob 2890844526 2890844527 IN IP4 198.51.100.7
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 49170 RTP/AVP 0
""")

# Two audio lines (pjsua answers the second with port 0 unless asked for two streams).
TWO_AUDIO_OFFER = crlf("""\
v=0
o=- 10 10 IN IP6 2001:db8::5
s=-
c=IN IP6 2001:db8::5
t=0 0
m=audio 6000 RTP/AVP 0 8
a=sendrecv
m=audio 6002 RTP/AVP 9
a=recvonly
""")

SAMPLES = {
    "pjsua offer": PJSUA_OFFER, "pjsua answer": PJSUA_ANSWER, "baresip": BARESIP_OFFER,
    "linphone srtp": LINPHONE_SRTP_OFFER, "blink chat": BLINK_AUDIO_CHAT_OFFER,
    "blink file": BLINK_FILE_OFFER, "blink screen": BLINK_SCREEN_SHARING_OFFER,
    "linphone hold": LINPHONE_HOLD_REINVITE, "rfc2543 hold": RFC2543_HOLD,
    "two audio": TWO_AUDIO_OFFER,
}


@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip_is_byte_exact(name):
    text = SAMPLES[name]
    assert str(parse_sdp(text)) == text
    assert bytes(parse_sdp(text.encode())) == text.encode()


@pytest.mark.parametrize("name", SAMPLES)
def test_bare_lf_is_read_and_written_with_crlf(name):
    text = SAMPLES[name]
    assert str(parse_sdp(text.replace("\r\n", "\n"))) == text
    without_last_end = text.replace("\r\n", "\n").removesuffix("\n")
    assert str(parse_sdp(without_last_end)) == text


def test_pjsua_offer_fields():
    sdp = parse_sdp(PJSUA_OFFER)
    assert sdp.version == 0
    assert sdp.origin == Origin("-", "3908617734", 3908617734, "IN", "IP4", "192.0.2.10")
    assert sdp.session_name == "pjmedia"
    assert sdp.connection is None
    assert [str(b) for b in sdp.bandwidths] == ["AS:84"]
    assert sdp.timing.start == 0 and sdp.timing.stop == 0
    assert sdp.attribute("X-nat") == "0"
    (audio,) = sdp.media
    assert (audio.type, audio.port, audio.port_count, audio.proto) == ("audio", 4000, None,
                                                                       "RTP/AVP")
    assert audio.formats == ["9", "0", "8", "101"]
    assert sdp.connection_of(audio) == Connection("192.0.2.10")
    assert audio.rtcp == Rtcp(4001, Connection("192.0.2.10"))
    assert [c.encoding for c in audio.codecs()] == ["G722", "PCMU", "PCMA", "telephone-event"]
    assert audio.rtpmap(101) == RtpMap(101, "telephone-event", 8000)
    assert audio.fmtp("101").parameters == "0-16"
    assert audio.direction is Direction.SENDRECV and sdp.direction_of(0) is Direction.SENDRECV
    assert audio.is_rtp and not audio.is_secure and not audio.is_msrp
    assert audio.attribute_values("ssrc") == ["1208379624 cname:2a3b4c5d6e7f8091"]


def test_baresip_opus_ice_and_ptime():
    sdp = parse_sdp(BARESIP_OFFER)
    audio = sdp.media[0]
    opus = audio.rtpmap(96)
    assert (opus.encoding, opus.clock_rate, opus.channels,
            opus.channel_count) == ("opus", 48000, 2, 2)
    assert audio.rtpmap(0).channel_count == 1
    assert audio.fmtp(96).params() == {"stereo": "1", "sprop-stereo": "1"}
    assert audio.ptime == 20.0
    assert audio.candidates == ["1 1 UDP 2130706431 192.0.2.20 10000 typ host",
                                "1 2 UDP 2130706430 192.0.2.20 10001 typ host"]
    assert audio.has_attribute("rtcp-rsize") and audio.attribute("rtcp-rsize") is None
    assert sdp.has_attribute("ice-lite")
    assert audio.rtcp is None
    assert sdp.connection_of(audio).address == "192.0.2.20"


def test_linphone_srtp_crypto():
    sdp = parse_sdp(LINPHONE_SRTP_OFFER)
    audio = sdp.media[0]
    assert audio.proto == "RTP/SAVP" and audio.is_secure
    first, second = audio.crypto
    assert isinstance(first, Crypto)
    assert (first.tag, first.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    (key,) = first.keys
    assert key.method == "inline"
    assert key.key_salt == "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    assert key.lifetime == "2^31" and key.mki is None
    assert second.keys[0].lifetime == "2^20" and second.keys[0].mki == "1:32"
    assert str(second) == ("2 AES_CM_128_HMAC_SHA1_32 "
                           "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32")
    assert audio.rtpmap(97) == RtpMap(97, "speex", 16000)
    assert sdp.attribute("record") == "off"
    assert audio.attribute_values("rtcp-fb") == ["* trr-int 1000", "* ccm tmmbr"]


def test_blink_chat_msrp_attributes():
    sdp = parse_sdp(BLINK_AUDIO_CHAT_OFFER)
    audio, chat = sdp.media
    assert audio.rtcp == Rtcp(50011)
    assert (chat.type, chat.port, chat.proto, chat.formats) == ("message", 2855, "TCP/TLS/MSRP",
                                                                ["*"])
    assert chat.is_msrp and chat.is_secure and not chat.is_rtp
    assert chat.path == ["msrps://192.0.2.40:2855/a4c2f1e0b3d5;tcp"]
    assert chat.accept_types == ["message/cpim", "text/*", "application/im-iscomposing+xml"]
    assert chat.accept_wrapped_types == ["*"]
    assert chat.setup == "active"
    assert chat.max_size is None and chat.file_selector is None
    assert sdp.direction_of(chat) is Direction.SENDRECV


def test_blink_file_transfer_attributes():
    sdp = parse_sdp(BLINK_FILE_OFFER)
    (stream,) = sdp.media
    assert sdp.direction_of(stream) is Direction.SENDONLY
    assert stream.file_selector == FileSelector(
        "My cool picture.jpg", "image/jpeg", 32349,
        "sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E")
    assert stream.file_transfer_id == "vBnG916bdberum2fFEABR1FR3ExZMUrd"
    assert stream.file_disposition == "attachment"
    assert stream.max_size == 33554432
    assert stream.accept_types == ["*"]


def test_file_selector_round_trip_quotes_and_percent():
    selector = FileSelector('a "quoted" 100% name.txt', "text/plain", 5, None)
    text = str(selector)
    assert text == 'name:"a %22quoted%22 100% name.txt" type:text/plain size:5'
    assert FileSelector.parse(text) == selector
    assert FileSelector.parse("size:10") == FileSelector(size=10)


def test_file_selectors_real_peers_write_parse():
    """Blink's raw `"` in a name, doubango's selector without a size, later selector kinds:
    the description parses (a=file-selector is read as sipd/files/selector.py reads it)."""
    head = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=message 2855 TCP/MSRP *\r\na=path:msrp://127.0.0.1:2855/x;tcp\r\n"
            "a=accept-types:*\r\na=sendonly\r\n")
    blink = parse_sdp(head + 'a=file-selector:name:"say "hi".txt" type:text/plain size:3\r\n')
    assert blink.media[0].file_selector == FileSelector('say "hi".txt', "text/plain", 3, None)
    doubango = parse_sdp(head + 'a=file-selector:name:"x" type:application/octet-stream\r\n')
    assert doubango.media[0].file_selector == FileSelector("x", "application/octet-stream")
    later = parse_sdp(head + 'a=file-selector:NAME:"x"\tsize:1 x-new:thing\r\n')
    assert later.media[0].file_selector == FileSelector("x", None, 1, None)


def test_screen_sharing_and_session_level_connection():
    sdp = parse_sdp(BLINK_SCREEN_SHARING_OFFER)
    audio, screen = sdp.media
    assert screen.type == "application" and screen.accept_types == ["application/x-rfb"]
    assert screen.attribute("rfbsetup") == "active"
    assert sdp.connection_of(screen) == Connection("192.0.2.40")
    assert screen.connection is None


def test_ipv6_and_two_audio_lines():
    sdp = parse_sdp(TWO_AUDIO_OFFER)
    assert sdp.connection == Connection("2001:db8::5", "IP6")
    assert sdp.origin.addrtype == "IP6"
    assert [sdp.direction_of(m) for m in sdp.media] == [Direction.SENDRECV, Direction.RECVONLY]
    assert len(sdp.media_of_type("audio")) == 2


def test_rfc2543_hold_connection():
    sdp = parse_sdp(RFC2543_HOLD)
    assert sdp.connection.is_hold
    assert sdp.media[0].direction is None and sdp.direction_of(0) is Direction.SENDRECV
