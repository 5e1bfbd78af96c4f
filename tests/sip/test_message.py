"""Parsing and serialising whole messages (datagram rules), accessors and parse errors."""

from __future__ import annotations

import pytest

from sipd.sip.builder import error_response
from sipd.sip.errors import SipParseError
from sipd.sip.headers import Headers
from sipd.sip.message import Request, Response, parse_datagram
from sipd.sip.uri import parse_uri

from .helpers import INVITE, request, sip


def test_request_accessors():
    message = request(INVITE + "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n"
                      "Record-Route: <sip:rr.example.com;lr>\nExpires: 120\n"
                      "Allow: INVITE, ACK,BYE\nSupported: replaces, timer\nRequire: 100rel\n"
                      "Content-Type: application/sdp\n", b"v=0\r\n")
    assert message.method == "INVITE" and str(message.uri) == "sip:bob@biloxi.example.com"
    assert message.top_via.host == "pc33.atlanta.example.com" and message.top_via.port == 5060
    assert message.from_.display_name == "Alice" and message.from_.tag == "1928301774"
    assert message.to.tag is None and message.to.uri.user == "bob"
    assert message.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (message.cseq.number, message.cseq.method) == (314159, "INVITE")
    assert message.max_forwards == 70 and message.expires == 120
    assert [str(r.uri) for r in message.routes] == ["sip:p1.example.com;lr",
                                                    "sip:p2.example.com;lr"]
    assert [str(r.uri) for r in message.record_routes] == ["sip:rr.example.com;lr"]
    assert message.allow == ["INVITE", "ACK", "BYE"]
    assert message.supported == ["replaces", "timer"] and message.require == ["100rel"]
    assert message.content_type.mime == "application/sdp" and message.body == b"v=0\r\n"


def test_absent_headers_read_as_none_or_empty():
    message = Request("OPTIONS", parse_uri("sip:x@y"))
    assert message.top_via is None and message.cseq is None and message.call_id is None
    assert message.contacts == [] and message.routes == [] and message.allow == []
    assert message.content_type is None and message.event is None and message.expires is None


def test_compact_forms_and_folding():
    data = sip("""
OPTIONS sip:x@example.com SIP/2.0
v: SIP/2.0/UDP host.example.com
 ;branch=z9hG4bKfold
i: fold-1
f: <sip:a@example.com>
 ;tag=1
t: sip:x@example.com
CSeq: 1
\tOPTIONS
m: <sip:a@host.example.com>
l: 0
k: path
""")
    message = parse_datagram(data)
    assert message.top_via.branch == "z9hG4bKfold" and message.call_id == "fold-1"
    assert message.from_.tag == "1" and message.cseq.method == "OPTIONS"
    assert message.supported == ["path"] and len(message.contacts) == 1
    # Output uses the full, canonical names.
    text = message.to_bytes().decode()
    assert "\r\nVia: SIP/2.0/UDP host.example.com ;branch=z9hG4bKfold\r\n" in text
    assert "\r\nCall-ID: fold-1\r\n" in text and "\r\nSupported: path\r\n" in text


def test_serialisation_sets_content_length_from_the_body():
    message = request(INVITE)
    message.body = b"hello"
    data = message.to_bytes()
    assert data.endswith(b"\r\nContent-Length: 5\r\n\r\nhello")
    again = parse_datagram(data)
    assert again.body == b"hello" and again.headers.get("Content-Length") == "5"
    assert bytes(again) == data


def test_response_start_line_and_flags():
    response = Response(180, "Ringing", Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")]))
    assert response.to_bytes().startswith(b"SIP/2.0 180 Ringing\r\nVia: ")
    assert response.is_provisional and not response.is_success
    parsed = parse_datagram(response.to_bytes())
    assert isinstance(parsed, Response) and (parsed.status, parsed.reason) == (180, "Ringing")


def test_bare_lf_line_ends_are_accepted():
    data = sip(INVITE).replace(b"\r\n", b"\n")
    message = parse_datagram(data)
    assert message.call_id == "a84b4c76e66710@pc33.atlanta.example.com" and message.body == b""


def test_an_empty_line_ended_by_a_bare_lf_ends_the_head_before_a_later_crlfcrlf():
    data = (b"OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
            b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\n\n"
            b"X-After: 1\r\n\r\nrest")
    message = parse_datagram(data)
    assert message.headers.names() == ["Via", "From", "To", "Call-ID", "CSeq"]
    assert message.body == b"X-After: 1\r\n\r\nrest"


def test_datagram_body_framing():
    base = sip(INVITE + "Content-Length: 4\n")
    assert parse_datagram(base + b"abcdXYZ").body == b"abcd"  # trailing octets ignored
    assert parse_datagram(sip(INVITE) + b"rest of it").body == b"rest of it"  # no length
    with pytest.raises(SipParseError, match="larger") as info:
        parse_datagram(base + b"ab")
    assert info.value.status == 400 and error_response(info.value).status == 400


def test_leading_crlf_is_skipped_and_empty_datagram_is_an_error():
    assert parse_datagram(b"\r\n\r\n" + sip(INVITE)).method == "INVITE"
    with pytest.raises(SipParseError) as info:
        parse_datagram(b"\r\n")
    assert info.value.status is None


@pytest.mark.parametrize("start_line, status, word", [
    ("INVITE sip:bob@biloxi.example.com SIP/3.0", 505, "version"),
    ("INVITE sip:bob@biloxi.example.com HTTP/1.1", 400, "SIP-Version"),
    ("INVITE sip:bob@biloxi.example.com", 400, "Request-Line"),
    ("INV(ITE sip:bob@biloxi.example.com SIP/2.0", 400, "token"),
    ("INVITE sip:bob@biloxi.example.com?Subject=x SIP/2.0", 400, "headers"),
    ("INVITE bad uri SIP/2.0", 400, "Request-Line"),
])
def test_bad_request_lines(start_line, status, word):
    data = sip(INVITE.replace("INVITE sip:bob@biloxi.example.com SIP/2.0", start_line, 1))
    with pytest.raises(SipParseError) as info:
        parse_datagram(data)
    assert info.value.status == status and word.lower() in info.value.detail.lower()
    answer = error_response(info.value)
    assert answer.status == status and answer.to.tag  # a tag is added to a parsable To


@pytest.mark.parametrize("status_line", [
    "SIP/2.0 99 Too Small", "SIP/2.0 700 Too Big", "SIP/2.0 2000 Long", "SIP/2.0 abc X",
    "SIP/3.0 200 OK",
])
def test_bad_status_lines_are_dropped(status_line):
    data = sip(status_line + "\n" + INVITE.split("\n", 2)[2])
    with pytest.raises(SipParseError) as info:
        parse_datagram(data)
    assert info.value.status is None and error_response(info.value) is None


@pytest.mark.parametrize("extra, word", [
    ("NoColonHere", "name: value"),
    ("Bad Name: x", "name: value"),
    ("Via: ", "Via"),
    ("Max-Forwards: ten", "Max-Forwards"),
    ("Contact: *, <sip:a@b>", "Contact"),
    ("Record-Route: <sip:rr", "Record-Route"),
    ("Expires: soon", "Expires"),
    ("Content-Length: 1e3", "Content-Length"),
])
def test_bad_header_lines(extra, word):
    with pytest.raises(SipParseError) as info:
        parse_datagram(sip(INVITE + extra + "\n"))
    assert info.value.status == 400 and word in info.value.detail
    assert info.value.answerable


def test_continuation_line_before_any_header():
    data = b"OPTIONS sip:x@y SIP/2.0\r\n folded\r\nVia: SIP/2.0/UDP h\r\n\r\n"
    with pytest.raises(SipParseError, match="continuation"):
        parse_datagram(data)


def test_unanswerable_requests():
    # No Via: nowhere to answer.
    data = sip("\n".join(line for line in INVITE.split("\n") if not line.startswith("Via")))
    broken = data.replace(b"CSeq: 314159 INVITE", b"CSeq: x INVITE")
    with pytest.raises(SipParseError) as info:
        parse_datagram(broken)
    assert info.value.status == 400 and not info.value.answerable
    assert error_response(info.value) is None
    # An ACK is never answered.
    ack = sip(INVITE.replace("INVITE", "ACK") + "Max-Forwards: x\n")
    with pytest.raises(SipParseError) as info:
        parse_datagram(ack)
    assert error_response(info.value) is None


def test_contact_star():
    message = request(INVITE.replace("Contact: <sip:alice@pc33.atlanta.example.com>", "Contact: *"))
    assert message.contact_is_star and message.contacts == []


def test_non_utf8_bytes_survive_a_round_trip():
    data = sip(INVITE + "X-Raw: cafe\n").replace(b"cafe", b"caf\xe9")  # a lone Latin-1 octet
    message = parse_datagram(data)
    assert message.to_bytes() == data.replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n")


def test_stray_cr_is_rejected_on_input_and_line_breaks_on_output():
    with pytest.raises(SipParseError, match="CR"):
        parse_datagram(sip(INVITE + "X-A: one\rtwo\n"))
    with pytest.raises(SipParseError, match="CR"):
        parse_datagram(b"SIP/2.0 200 O\rK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n")
    message = request(INVITE)
    with pytest.raises(ValueError, match="line break"):
        message.headers.add("Subject", "hi\r\nInjected: yes")
    with pytest.raises(ValueError, match="token"):
        message.headers.set("Bad Name", "x")
    with pytest.raises(ValueError, match="reason"):
        Response(200, "OK\r\nInjected: yes").to_bytes()


def test_error_response_copies_the_request_identity_with_a_precise_reason():
    from sipd.sip.errors import ParseError

    data = sip(INVITE.replace("Max-Forwards: 70", "Max-Forwards: seventy"))
    with pytest.raises(ParseError) as info:
        parse_datagram(data)
    error = info.value
    assert error.is_request and error.method == "INVITE" and not error.fatal
    answer = error_response(error)
    assert (answer.status, answer.reason) == (400, "Malformed Max-Forwards")
    assert answer.headers.names() == ["Via", "From", "To", "Call-ID", "CSeq"]
    assert answer.to.tag and answer.from_.tag == "1928301774"
    assert parse_datagram(answer.to_bytes()).cseq.number == 314159
