"""What a received MESSAGE body becomes, and what an outgoing one looks like."""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipd.messages.content import (
    ACCEPT,
    Composing,
    ContentRejected,
    MalformedContent,
    OutgoingContentError,
    Received,
    UnsupportedContent,
    interpret_message,
    outgoing_body,
)
from sipd.messages.cpim import IMDN_NAMESPACE, CPIMIdentity, parse_cpim
from sipd.messages.iscomposing import IsComposing

UTC = datetime.UTC
NOON = datetime.datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
ACTIVE = IsComposing("active", content_type="text/plain", refresh=60)


def cpim(inner_type: str, body: bytes, extra: str = "") -> bytes:
    head = ('From: "Alice" <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\n'
            "DateTime: 2024-01-01T10:00:00.000+00:00\r\n"
            "NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: m-1\r\n" + extra +
            f"\r\nContent-Type: {inner_type}\r\n\r\n")
    return head.encode() + body


# --- received ----------------------------------------------------------------------------

def test_plain_text_defaults_to_utf8() -> None:
    assert interpret_message("text/plain", "gr\u00fc\u00df dich \U0001f600".encode()) == Received(
        "gr\u00fc\u00df dich \U0001f600", "text/plain")


def test_plain_text_in_the_declared_charset() -> None:
    body = "d\u00e9j\u00e0".encode("latin-1")
    received = interpret_message('Text/Plain; charset="ISO-8859-1"', body)
    assert received == Received("d\u00e9j\u00e0", "text/plain")


def test_utf8_byte_order_mark_is_dropped() -> None:
    assert interpret_message("text/plain;charset=utf-8", b"\xef\xbb\xbfhi").content == "hi"


def test_html_is_text_too() -> None:
    assert interpret_message("text/html", b"<b>hi</b>") == Received("<b>hi</b>", "text/html")


def test_empty_message_without_content_type() -> None:
    assert interpret_message("", b"") == Received("", "text/plain")


def test_body_without_content_type_is_malformed() -> None:
    with pytest.raises(MalformedContent) as info:
        interpret_message("  ", b"hello")
    assert info.value.status == 400


def test_undecodable_text_is_400() -> None:
    with pytest.raises(MalformedContent, match="not valid utf-8") as info:
        interpret_message("text/plain", b"caf\xe9")  # Latin-1 bytes labelled (by default) UTF-8
    assert (info.value.status, info.value.reason) == (400, "Bad Request")


@pytest.mark.parametrize("charset", ["klingon", "base64", "rot13", "unicode_escape", "idna"])
def test_unknown_charset_is_415(charset: str) -> None:
    with pytest.raises(UnsupportedContent, match="charset") as info:
        interpret_message(f"text/plain;charset={charset}", b"aGk=")
    assert info.value.status == 415


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/png",
                                          "message/imdn+xml", "multipart/mixed;boundary=x"])
def test_other_types_are_415_with_accept(content_type: str) -> None:
    with pytest.raises(UnsupportedContent) as info:
        interpret_message(content_type, b"\x89PNG")
    error = info.value
    assert (error.status, error.reason) == (415, "Unsupported Media Type")
    assert error.accept == list(ACCEPT)
    assert error.accept_header == (
        "text/plain, text/html, message/cpim, application/im-iscomposing+xml")


def test_invalid_content_type_is_400() -> None:
    with pytest.raises(MalformedContent, match="Content-Type"):
        interpret_message("text plain", b"x")


def test_is_composing_is_not_a_message() -> None:
    result = interpret_message("application/im-iscomposing+xml", ACTIVE.encode())
    assert result == Composing(ACTIVE)


def test_hostile_is_composing_is_400() -> None:
    data = (b'<!DOCTYPE isComposing [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            b"<isComposing><state>active</state><contenttype>&b;</contenttype></isComposing>")
    with pytest.raises(MalformedContent, match="is-composing"):
        interpret_message("application/im-iscomposing+xml", data)


def test_cpim_wrapped_text_is_unwrapped() -> None:
    received = interpret_message("message/cpim", cpim("text/plain;charset=utf-8", b"hello"))
    assert isinstance(received, Received)
    assert received.content == "hello"
    assert received.content_type == "text/plain"
    assert received.cpim is not None
    assert received.cpim.sender == CPIMIdentity("sip:alice@example.com", "Alice")
    assert received.cpim.header("Message-ID", IMDN_NAMESPACE) == "m-1"


def test_cpim_wrapped_is_composing() -> None:
    result = interpret_message("Message/CPIM", cpim("application/im-iscomposing+xml",
                                                    ACTIVE.encode()))
    assert isinstance(result, Composing)
    assert result.indication == ACTIVE
    assert result.cpim is not None and result.cpim.timestamp == NOON


def test_cpim_with_unsupported_inner_type_is_415() -> None:
    with pytest.raises(UnsupportedContent, match="inside message/cpim") as info:
        interpret_message("message/cpim", cpim("message/imdn+xml", b"<imdn/>"))
    assert "message/cpim" not in info.value.accept  # no CPIM inside CPIM


def test_cpim_inside_cpim_is_refused() -> None:
    with pytest.raises(UnsupportedContent):
        interpret_message("message/cpim", cpim("message/cpim", cpim("text/plain", b"x")))


def test_malformed_cpim_is_400() -> None:
    with pytest.raises(MalformedContent, match="CPIM: more than one From"):
        interpret_message("message/cpim", b"From: <sip:a@x>\r\n" + cpim("text/plain", b"x"))


def test_cpim_inner_text_problems_map_like_plain_text() -> None:
    with pytest.raises(MalformedContent):
        interpret_message("message/cpim", cpim("text/plain", b"\xff\xfe\xfd"))
    with pytest.raises(UnsupportedContent):
        interpret_message("message/cpim", cpim("text/plain;charset=x-unknown", b"x"))


def test_cpim_require_of_an_unknown_extension_is_refused() -> None:
    with pytest.raises(UnsupportedContent, match="imdn.Disposition-Notification"):
        interpret_message("message/cpim", cpim(
            "text/plain", b"x", "Require: imdn.Disposition-Notification\r\n"))
    # Requiring what every CPIM reader understands is fine.
    received = interpret_message("message/cpim", cpim("text/plain", b"x", "Require: DateTime\r\n"))
    assert received.content == "x"


def test_every_rejection_is_a_content_rejected() -> None:
    for content_type, body in [("image/png", b""), ("text/plain", b"\xff"),
                               ("message/cpim", b"junk")]:
        with pytest.raises(ContentRejected) as info:
            interpret_message(content_type, body)
        assert info.value.detail


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["text/plain", "text/html", "message/cpim", "text/plain;charset=latin-1",
                        "application/im-iscomposing+xml", "", "x", "image/png", ";;"]),
       st.binary(max_size=300))
def test_fuzz_only_content_rejected_escapes(content_type: str, body: bytes) -> None:
    try:
        result = interpret_message(content_type, body)
    except ContentRejected as exc:
        assert exc.status in (400, 415)
        return
    assert isinstance(result, (Received, Composing))


# --- event data --------------------------------------------------------------------------

def test_event_data_for_a_plain_message() -> None:
    received = interpret_message("text/plain", b"hi")
    data = received.event_data(account="acc-1", sender="sip:alice@example.com",
                               recipient="sip:bob@example.com")
    assert data == {"account": "acc-1", "from": "sip:alice@example.com",
                    "to": "sip:bob@example.com", "content": "hi", "content_type": "text/plain"}


def test_event_data_for_a_cpim_message_is_json_and_carries_the_envelope() -> None:
    received = interpret_message("message/cpim", cpim("text/html", b"<i>hi</i>"))
    data = received.event_data(account="acc-1", sender="sip:alice@example.com",
                               recipient="sip:bob@example.com")
    assert json.loads(json.dumps(data)) == data
    assert data["content"] == "<i>hi</i>"
    assert data["content_type"] == "text/html"
    assert data["cpim"]["from"] == '"Alice" <sip:alice@example.com>'
    assert data["cpim"]["to"] == ["<sip:bob@example.com>"]
    assert data["cpim"]["datetime"] == "2024-01-01T10:00:00.000+00:00"
    assert data["cpim"]["headers"] == {"imdn.Message-ID": "m-1"}
    assert data["cpim"]["namespaces"] == {"imdn": IMDN_NAMESPACE}


# --- outgoing ----------------------------------------------------------------------------

def test_outgoing_plain_text_by_default() -> None:
    assert outgoing_body("h\u00e9") == ("text/plain;charset=utf-8", "h\u00e9".encode())


def test_outgoing_keeps_a_given_charset() -> None:
    assert outgoing_body("h\u00e9", "text/plain; charset=iso-8859-1") == (
        "text/plain;charset=iso-8859-1", b"h\xe9")


def test_outgoing_non_text_bytes_pass_through() -> None:
    data = ACTIVE.encode()
    assert outgoing_body(data, "application/im-iscomposing+xml") == (
        "application/im-iscomposing+xml", data)


def test_outgoing_cpim_wraps_and_reads_back() -> None:
    content_type, body = outgoing_body(
        "hello \u263a", "text/plain", cpim=True,
        sender=CPIMIdentity("sip:alice@example.com", "Alice"), recipient="sip:bob@example.com",
        now=NOON)
    assert content_type == "message/cpim"
    message = parse_cpim(body)
    assert message.sender == CPIMIdentity("sip:alice@example.com", "Alice")
    assert message.recipients == [CPIMIdentity("sip:bob@example.com")]
    assert message.timestamp == NOON
    assert message.content_type == "text/plain;charset=utf-8"
    # And the receiving side sees the same message.
    received = interpret_message(content_type, body)
    assert (received.content, received.content_type) == ("hello \u263a", "text/plain")


@pytest.mark.parametrize("kwargs, problem", [
    ({"content_type": "not a type"}, "invalid content type"),
    ({"content_type": "text/plain;charset=klingon"}, "unknown charset"),
    ({"content": "\u263a", "content_type": "text/plain;charset=us-ascii"}, "cannot be encoded"),
    ({"cpim": True}, "needs a sender"),
    ({"cpim": True, "sender": "sip:a@example.com", "recipient": "sip:b@example.com",
      "now": datetime.datetime(2024, 1, 1)}, "timezone-aware"),
    ({"cpim": True, "sender": "nobody", "recipient": "sip:b@example.com", "now": NOON},
     "not a URI"),
])
def test_outgoing_errors(kwargs: dict, problem: str) -> None:
    arguments = {"content": "hi", **kwargs}
    with pytest.raises(OutgoingContentError, match=problem):
        outgoing_body(**arguments)
