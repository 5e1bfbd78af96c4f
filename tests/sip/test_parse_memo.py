"""Values parsed lately are kept by text (sipd/sip/parsed_headers.py for addresses and Vias,
sipd/sessions/sdp_fields.py and sdp_model.py for SDP lines): a value seen again is not parsed
again, and that changes nothing a caller can see."""

from __future__ import annotations

import pytest

from sipd.sessions.sdp import SDPError, parse_sdp
from sipd.sessions.sdp import fields as sdp_fields
from sipd.sessions.sdp import model as sdp_model
from sipd.sip import parsed_headers
from sipd.sip.errors import SipParseError
from sipd.sip.message import parse_datagram

from .helpers import INVITE, sip

FROM = "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774"


def counting(monkeypatch) -> list[str]:
    seen: list[str] = []
    parse = parsed_headers.parse_address

    def counted(value: str, what: str = "Address") -> object:
        seen.append(value)
        return parse(value, what)
    monkeypatch.setattr(parsed_headers, "parse_address", counted)
    return seen


def test_a_from_seen_before_is_not_parsed_again_and_each_message_has_its_own(monkeypatch):
    parsed_headers.forget()
    seen = counting(monkeypatch)
    first, second = parse_datagram(sip(INVITE)), parse_datagram(sip(INVITE))
    assert seen.count("Alice <sip:alice@atlanta.example.com>;tag=1928301774") == 1
    mine = first.from_
    assert mine is not None
    mine.tag = "changed"
    mine.uri.user = "mallory"
    assert str(second.from_) == str(first.from_) == '"Alice" <sip:alice@atlanta.example.com>' \
        ";tag=1928301774"
    assert first.from_ is not second.from_


def test_a_malformed_value_is_refused_in_every_message():
    bad = sip(INVITE.replace(FROM, "From: Alice <sip:alice@@atlanta.example.com>;tag=1"))
    for _ in range(3):
        with pytest.raises(SipParseError, match="From"):
            parse_datagram(bad)


def test_the_tables_stay_bounded():
    parsed_headers.forget()
    for i in range(parsed_headers.MEMO_LIMIT + 50):
        parse_datagram(sip(INVITE.replace("tag=1928301774", f"tag=t{i}")))
    assert all(len(done) <= parsed_headers.MEMO_LIMIT for done in parsed_headers._MEMOS.values())


OFFER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def test_sdp_lines_checked_before_still_name_their_line_when_wrong():
    assert str(parse_sdp(OFFER)) == str(parse_sdp(OFFER)) == OFFER
    for _ in range(2):  # the bad line is never remembered as good
        with pytest.raises(SDPError) as error:
            parse_sdp(OFFER + "a=rtpmap:0 PCMU\r\n")
        assert error.value.line == 8
    moved = OFFER.replace("t=0 0\r\n", "") + "m=audio x RTP/AVP 0\r\n"
    with pytest.raises(SDPError) as error:
        parse_sdp(moved)
    assert error.value.line == 7


def test_sdp_memos_stay_bounded():
    for port in range(1, sdp_fields.MEMO_LIMIT + 50):
        line = sdp_model.check_line("m", f"audio {port} RTP/AVP 0")
        assert sdp_fields.MediaLine.parse(line.value).port == port
    assert len(sdp_model._CHECKED) <= sdp_fields.MEMO_LIMIT
