from hypothesis import given, settings
from hypothesis import strategies as st

from sipd.msrp.headers import ByteRange, Status
from sipd.msrp.message import MsrpRequest, MsrpResponse, make_request, make_response
from sipd.msrp.parser import FrameError, FrameParser
from sipd.msrp.uri import parse_uri

from .helpers import ALICE, BOB, send_line

# RFC 4975 §7.1.1's example, and a REPORT with Status.
SEND = send_line("a786hjs2", body=b"Hey Bob, are you there?", message_id="87652491")
RESPONSE = (b"MSRP a786hjs2 200 OK\r\nTo-Path: msrp://127.0.0.1:7001/alice0001;tcp\r\n"
            b"From-Path: msrp://127.0.0.1:7002/bob00002;tcp\r\n-------a786hjs2$\r\n")
TRICKY_BODY = (b"line one\r\n-------a786hjs2\r\n-------a786hjs2x$\r\n-------other$\r\n"
               b"MSRP fake SEND\r\n\r\n-------a786hjs")
TRICKY = send_line("a786hjs2", body=TRICKY_BODY, message_id="tricky1")


def feed_split(data: bytes, cuts: list[int]) -> list:
    parser = FrameParser()
    out = []
    last = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)):
        out += parser.feed(data[last:cut])
        last = cut
    out += parser.feed(data[last:])
    return out


def test_request_and_response():
    out = FrameParser().feed(SEND + RESPONSE)
    request, response = out
    assert isinstance(request, MsrpRequest) and isinstance(response, MsrpResponse)
    assert request.method == "SEND" and request.transaction_id == "a786hjs2"
    assert request.body == b"Hey Bob, are you there?" and request.continuation == "$"
    assert request.to_path[0].same_as(BOB) and request.from_path[0].same_as(ALICE)
    assert request.message_id == "87652491"
    assert request.byte_range == ByteRange(1, 23, 23)
    assert request.content_type == "text/plain"
    assert response.code == 200 and response.comment == "OK"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10_000), max_size=12))
def test_any_split_gives_the_same_frames(cuts):
    data = SEND + TRICKY + RESPONSE + SEND
    out = feed_split(data, cuts)
    assert [type(f) for f in out] == [MsrpRequest, MsrpRequest, MsrpResponse, MsrpRequest]
    assert out[1].body == TRICKY_BODY


def test_byte_by_byte():
    parser = FrameParser()
    out = []
    for i in range(len(TRICKY)):
        out += parser.feed(TRICKY[i:i + 1])
    assert len(out) == 1 and out[0].body == TRICKY_BODY


def test_flags_and_empty_bodies():
    no_body = send_line("t1234", body=None, byte_range="1-0/0")
    empty_body = send_line("t5678", body=b"", byte_range="1-0/0")
    # some peers put the end-line right after the blank line, no CRLF of an empty body
    terse = no_body.replace(b"-------t1234$", b"\r\n-------t1234$")
    out = FrameParser().feed(no_body + empty_body + terse + send_line("t9999", flag="+")
                             + send_line("t8888", flag="#"))
    assert [f.body for f in out] == [None, b"", b"", b"hello", b"hello"]
    assert [f.continuation for f in out] == ["$", "$", "$", "+", "#"]


def test_unknown_method_and_headers_kept():
    data = (b"MSRP abcd1 NICKNAME\r\nTo-Path: " + str(BOB).encode() + b"\r\nFrom-Path: "
            + str(ALICE).encode() + b"\r\nX-Thing:  value \r\n-------abcd1$\r\n")
    (frame,) = FrameParser().feed(data)
    assert frame.method == "NICKNAME" and frame.headers.get("x-thing") == "value"


def test_serializer_round_trip():
    request = make_request("REPORT", [ALICE], [BOB])
    request.headers.add("Message-ID", "m12345")
    request.headers.add("Byte-Range", "1-5/5")
    request.headers.add("Status", str(Status(413, "Message Too Large")))
    (parsed,) = FrameParser().feed(request.serialize())
    assert parsed.status == Status(413, "Message Too Large") and parsed.body is None
    send = send_line("t0000", body=b"x")
    (parsed_send,) = FrameParser().feed(send)
    response = make_response(parsed_send, 200)
    (parsed_response,) = FrameParser().feed(response.serialize())
    assert parsed_response.to_path[0].same_as(ALICE) and parsed_response.code == 200


def test_garbage_is_fatal_and_the_parser_stops():
    parser = FrameParser()
    (error,) = parser.feed(b"GET / HTTP/1.1\r\n\r\n")
    assert isinstance(error, FrameError) and error.fatal and "not MSRP" in error.detail
    assert parser.feed(SEND) == []


def test_bad_transaction_id_is_fatal():
    (error,) = FrameParser().feed(b"MSRP a!b SEND\r\n")
    assert error.fatal and "first line" in error.detail


def test_bad_header_is_answered_not_fatal():
    bad = SEND.replace(b"Message-ID: 87652491", b"this is no header")
    out = FrameParser().feed(bad + RESPONSE)
    assert isinstance(out[0], FrameError) and not out[0].fatal and out[0].status == 400
    assert out[0].transaction_id == "a786hjs2" and out[0].head.from_path[0].same_as(ALICE)
    assert isinstance(out[1], MsrpResponse)


def test_oversized_headers_are_skipped_to_the_end_line():
    big = SEND.replace(b"Message-ID:", b"X-Big: " + b"a" * 5000 + b"\r\nMessage-ID:")
    out = FrameParser(max_header_bytes=1000).feed(big + RESPONSE)
    assert isinstance(out[0], FrameError) and out[0].status == 400
    assert "headers larger" in out[0].detail
    assert isinstance(out[1], MsrpResponse)


def test_oversized_chunk_is_413_and_its_body_is_dropped():
    parser = FrameParser(max_chunk_bytes=1000)
    body = b"z" * 200_000
    data = send_line("big00", body=body, byte_range="1-*/200000")
    out = []
    for i in range(0, len(data), 4096):
        out += parser.feed(data[i:i + 4096])
        assert len(parser._buf) < 10_000  # the body is not held
    out += parser.feed(RESPONSE)
    assert isinstance(out[0], FrameError) and out[0].status == 413
    assert isinstance(out[1], MsrpResponse)


def test_oversized_chunk_read_whole_at_once_is_413_too():
    out = FrameParser(max_chunk_bytes=1000).feed(send_line("big01", body=b"z" * 1001) + RESPONSE)
    assert isinstance(out[0], FrameError) and out[0].status == 413
    assert isinstance(out[1], MsrpResponse)
    exact = FrameParser(max_chunk_bytes=1000).feed(send_line("fit01", body=b"z" * 1000))
    assert isinstance(exact[0], MsrpRequest) and exact[0].body == b"z" * 1000


def test_end_line_of_another_transaction_in_place_of_ours():
    # headers only: the line after them must be our end-line
    wrong = send_line("good1", body=None, byte_range="1-0/0")
    wrong = wrong.replace(b"-------good1", b"-------bad01")
    out = FrameParser().feed(wrong + RESPONSE)
    assert isinstance(out[0], FrameError) and "end-line names transaction 'bad01'" in out[0].detail
    assert isinstance(out[1], MsrpResponse)
    # with a body whose length the Byte-Range gives
    wrong = send_line("good2", body=b"hello").replace(b"-------good2", b"-------bad02")
    out = FrameParser().feed(wrong + RESPONSE)
    assert isinstance(out[0], FrameError) and "not 'good2'" in out[0].detail
    assert isinstance(out[1], MsrpResponse)


def test_eof_in_the_middle_of_a_frame():
    parser = FrameParser()
    assert parser.feed(SEND[:-20]) == []
    assert parser.in_frame
    error = parser.eof()
    assert error is not None and error.fatal and "a786hjs2" in error.detail
    clean = FrameParser()
    clean.feed(SEND)
    assert clean.eof() is None


def test_uri_with_ipv6_in_paths():
    data = send_line("v6abc", to=parse_uri("msrp://[::1]:9/s;tcp"))
    (frame,) = FrameParser().feed(data)
    assert frame.to_path[0].host == "::1"


def test_typed_relay_headers():
    data = (b"MSRP auth01 401 Unauthorized\r\nTo-Path: " + str(ALICE).encode()
            + b"\r\nFrom-Path: msrps://relay.example;tcp\r\n"
            b'WWW-Authenticate: Digest realm="r", nonce="abc", qop="auth"\r\n'
            b"-------auth01$\r\n"
            b"MSRP auth02 200 OK\r\nTo-Path: " + str(ALICE).encode()
            + b"\r\nFrom-Path: msrps://relay.example;tcp\r\n"
            b"Use-Path: msrps://relay.example:2855/x1;tcp\r\nExpires: 900\r\n"
            b'Authentication-Info: nextnonce="n2", qop=auth, rspauth="ff"\r\n'
            b"-------auth02$\r\n"
            b"MSRP auth03 423 Interval Out-of-Bounds\r\nTo-Path: " + str(ALICE).encode()
            + b"\r\nFrom-Path: msrps://relay.example;tcp\r\nMin-Expires: 60\r\n"
            b"Max-Expires: 3600\r\n-------auth03$\r\n")
    challenge, granted, interval = FrameParser().feed(data)
    (digest,) = challenge.www_authenticate
    assert digest.realm == "r" and digest.qop_options == ["auth"]
    assert granted.use_path[0].session_id == "x1" and granted.expires == 900
    assert granted.authentication_info == {"nextnonce": "n2", "qop": "auth", "rspauth": "ff"}
    assert (interval.min_expires, interval.max_expires) == (60, 3600)
