"""Fuzzing the parser: whatever the bytes, the core returns a message or raises SipParseError.

Bounded to a few seconds per test by default; SIPD_FUZZ_EXAMPLES=<n> runs n examples per
test instead (e.g. 20000 for a long session).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipd.sip.auth import challenges_of
from sipd.sip.builder import error_response
from sipd.sip.errors import SipParseError
from sipd.sip.message import Request, Response, parse_datagram
from sipd.sip.parser import StreamFramer
from sipd.sip.transaction_layer import TransactionLayer
from sipd.sip.validation import validate_request_for_uas

from .helpers import INVITE, OPTIONS, RFC4475, sip

EXAMPLES = int(os.environ.get("SIPD_FUZZ_EXAMPLES", "800"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                derandomize="SIPD_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SEEDS = [path.read_bytes() for path in sorted(RFC4475.glob("*.dat"))] + [
    sip(INVITE + "Content-Length: 0\n"),
    sip(OPTIONS + "Route: <sip:[::1]:5060;lr>\nContent-Length: 0\n"),
    sip("SIP/2.0 401 Unauthorized\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nCall-ID: c\n"
        "CSeq: 1 REGISTER\nFrom: <sip:a@b>;tag=1\nTo: <sip:a@b>;tag=2\n"
        'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256\n'
        "Content-Length: 0\n"),
]
# Pieces that tend to reach deep parser paths when spliced in.
TOKENS = [b"\r\n", b"\r\n ", b"\r\n\r\n", b":", b";", b",", b"<", b">", b'"', b"\\", b"%", b"%4",
          b"@", b"[", b"]", b"[::1]", b"=", b"?", b" ", b"\t", b"\x00", b"\xff", b"sip:", b"tel:",
          b"SIP/2.0", b"z9hG4bK", b"Content-Length: ", b"l: 99999", b"-1", b"Via: ", b"v: ",
          b"Contact: *", b"CSeq: 1 ", b"4294967296"]


@st.composite
def mutated_messages(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "token", "truncate", "dup"]))
        if action == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 40))]
        elif action == "token":
            data[position:position] = draw(st.sampled_from(TOKENS))
        elif action == "truncate":
            del data[position:]
        elif action == "dup":
            data[position:position] = data[position:position + draw(st.integers(1, 80))]
    return bytes(data)


def exercise(message) -> None:
    """Every accessor either works or raises SipParseError; layers above never crash."""
    accessors = ["vias", "top_via", "from_", "to", "call_id", "cseq", "max_forwards", "contacts",
                 "contact_is_star", "routes", "record_routes", "content_type", "accept", "expires",
                 "min_expires", "date", "allow", "supported", "require", "event",
                 "subscription_state"]
    for name in accessors:
        try:
            value = getattr(message, name)
            if isinstance(value, list):
                for item in value:
                    str(item)
            elif value is not None:
                str(value)
        except SipParseError:
            pass
    again = parse_datagram(message.to_bytes())  # what we write, we can read back
    assert type(again) is type(message)
    assert [h for h in again.headers if h[0] != "Content-Length"] == \
        [h for h in message.headers if h[0] != "Content-Length"]
    assert again.body == message.body
    if isinstance(message, Request):
        validate_request_for_uas(message, supported_methods={"INVITE", "ACK", "OPTIONS"})
    else:
        try:
            challenges_of(message)
        except SipParseError:
            pass
    TransactionLayer().receive(message, source=None, reliable=False, now=0.0)


def parse_or_error(data: bytes) -> None:
    try:
        message = parse_datagram(data)
    except SipParseError as error:
        response = error_response(error)
        if response is not None:  # (it copies the request's malformed headers as they were)
            assert response.status == error.status and response.to_bytes()
        return
    assert isinstance(message, (Request, Response))
    exercise(message)


@FUZZ
@given(st.binary(max_size=1500))
def test_random_bytes(data):
    parse_or_error(data)


@FUZZ
@given(mutated_messages())
def test_mutated_valid_messages(data):
    parse_or_error(data)


@FUZZ
@given(mutated_messages(), st.lists(st.integers(1, 300), min_size=1, max_size=20))
def test_stream_framer_on_mutated_streams(data, cuts):
    framer = StreamFramer(max_message_size=4096)
    stream = data + b"\r\n\r\n" + data
    position = 0
    for size in cuts + [len(stream)]:
        if framer.broken is not None:
            break
        events = framer.receive_data(stream[position:position + size])
        position += size
        for event in events:
            message = getattr(event, "message", None)
            if message is not None:
                exercise(message)
            error = getattr(event, "error", None)
            if error is not None:
                assert isinstance(error, SipParseError)
                error_response(error)
