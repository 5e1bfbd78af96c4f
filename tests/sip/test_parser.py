"""The stream framer: messages cut out of arbitrary chunks, keep-alives, framing errors."""

from __future__ import annotations

import pytest

from sipd.sip.builder import error_response
from sipd.sip.parser import (
    KeepAlivePing,
    KeepAlivePong,
    MessageReceived,
    MessageRejected,
    StreamBroken,
    StreamFramer,
)

from .helpers import INVITE, OPTIONS, sip

WITH_BODY = sip(INVITE + "Content-Type: text/plain\nContent-Length: 11\n", b"hello\r\n\r\nyo")
NO_BODY = sip(OPTIONS + "Content-Length: 0\n")


def test_two_messages_in_one_chunk():
    events = StreamFramer().receive_data(WITH_BODY + NO_BODY)
    assert [type(e) for e in events] == [MessageReceived, MessageReceived]
    assert events[0].message.body == b"hello\r\n\r\nyo"  # CRLFCRLF inside a body is body
    assert events[1].message.method == "OPTIONS"


@pytest.mark.parametrize("chunk", [3, 4, 7, 64])
def test_messages_split_in_any_chunks(chunk):
    # (A ping split after its first CRLF would read as two pongs: pings are one 4-octet
    # write, so that does not happen in practice; messages themselves may split anywhere.)
    framer = StreamFramer()
    stream = WITH_BODY + b"\r\n\r\n" + NO_BODY + b"\r\n"
    events = []
    for i in range(0, len(stream), chunk):
        events += framer.receive_data(stream[i:i + chunk])
    assert [type(e) for e in events] == [MessageReceived, KeepAlivePing, MessageReceived,
                                         KeepAlivePong]
    assert events[0].message.body == b"hello\r\n\r\nyo"
    assert framer.buffered == 0


def test_messages_split_octet_by_octet():
    framer = StreamFramer()
    events = []
    for i in range(len(WITH_BODY + NO_BODY)):
        events += framer.receive_data((WITH_BODY + NO_BODY)[i:i + 1])
    assert [type(e) for e in events] == [MessageReceived, MessageReceived]


def test_keepalives_between_messages():
    framer = StreamFramer()
    assert framer.receive_data(b"\r\n\r\n") == [KeepAlivePing()]
    assert framer.receive_data(b"\r\n") == [KeepAlivePong()]
    assert framer.receive_data(b"\r\n\r\n\r\n\r\n") == [KeepAlivePing(), KeepAlivePing()]
    # A CRLF followed by a message start is a pong, then the message.
    events = framer.receive_data(b"\r\n" + NO_BODY)
    assert [type(e) for e in events] == [KeepAlivePong, MessageReceived]


def test_malformed_message_is_rejected_but_the_stream_goes_on():
    bad = sip(OPTIONS.replace("CSeq: 63104 OPTIONS", "CSeq: 99999999999 OPTIONS")
              + "Content-Length: 0\n")
    events = StreamFramer().receive_data(bad + NO_BODY)
    assert [type(e) for e in events] == [MessageRejected, MessageReceived]
    assert events[0].error.status == 400 and not events[0].error.fatal
    assert error_response(events[0].error).status == 400


@pytest.mark.parametrize("length_headers, word", [
    ("", "no Content-Length"),
    ("Content-Length: -1\n", "negative"),
    ("Content-Length: 1\nContent-Length: 1\n", "more than one"),
    ("Content-Length: 0x10\n", "invalid"),
])
def test_framing_errors_break_the_stream(length_headers, word):
    framer = StreamFramer()
    events = framer.receive_data(sip(OPTIONS + length_headers) + NO_BODY)
    [event] = events
    assert isinstance(event, StreamBroken) and event.error.fatal
    assert word in event.error.detail
    assert error_response(event.error).status == 400  # answer, then close
    with pytest.raises(RuntimeError):
        framer.receive_data(NO_BODY)


def test_size_limit_on_headers_and_on_whole_messages():
    framer = StreamFramer(max_message_size=300)
    assert framer.receive_data(b"OPTIONS sip:x@y SIP/2.0\r\nX: " + b"a" * 200) == []
    [event] = framer.receive_data(b"a" * 200)
    assert isinstance(event, StreamBroken) and event.error.status == 513
    assert error_response(event.error) is None  # nothing to answer with

    framer = StreamFramer(max_message_size=len(NO_BODY) + 10)
    events = framer.receive_data(sip(OPTIONS + "Content-Length: 100\n"))
    assert isinstance(events[0], StreamBroken) and events[0].error.status == 513
    assert error_response(events[0].error).status == 513


def test_response_on_a_stream():
    response = sip("SIP/2.0 200 OK\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\nCSeq: 1 OPTIONS\n"
                   "Call-ID: x\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2\nContent-Length: 0\n")
    [event] = StreamFramer().receive_data(response)
    assert event.message.status == 200
