"""Message/CPIM (RFC 3862): building, parsing, what real clients send, what breaks."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipd.messages.cpim import (
    DEFAULT_NAMESPACE,
    IMDN_NAMESPACE,
    CPIMCharsetError,
    CPIMError,
    CPIMIdentity,
    CPIMMessage,
    build_cpim,
    parse_cpim,
)

UTC = datetime.UTC
NOON = datetime.datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


def wire(text: str) -> bytes:
    """A message written with \\n line ends, sent with CRLF as the RFC says."""
    return text.replace("\n", "\r\n").encode("utf-8")


# --- what clients send -------------------------------------------------------------------

BLINK = wire(
    'From: "Alice Liddell" <sip:alice@example.com>\n'
    "To: <sip:bob@example.com>\n"
    "DateTime: 2024-01-01T10:00:00.000+00:00\n"
    "NS: imdn <urn:ietf:params:imdn>\n"
    "imdn.Message-ID: 6d2d4c4a9b3f4e0b\n"
    "imdn.Disposition-Notification: positive-delivery, display\n"
    "\n"
    "Content-Type: text/plain;charset=utf-8\n"
    "\n"
    "Hello Bob, \u00e7a va?"
)

LINPHONE = wire(
    "From: <sip:alice@sip.example.org>\n"
    "To: <sip:bob@sip.example.org>\n"
    "NS: imdn <urn:ietf:params:imdn>\n"
    "imdn.Message-ID: VwOgH8NgT\n"
    "DateTime: 2024-03-05T14:22:07+0100\n"
    "imdn.Disposition-Notification: positive-delivery, display\n"
    "\n"
    "Content-Type: text/plain;charset=UTF-8\n"
    "Content-Length: 5\n"
    "\n"
    "hello"
)

RFC_EXAMPLE = wire(
    "From: MR SANDERS <im:piglet@100akerwood.com>\n"
    "To: Depressed Donkey <im:eeyore@100akerwood.com>\n"
    "DateTime: 2000-12-13T13:40:00-08:00\n"
    "Subject: the weather will be fine today\n"
    "Subject:;lang=fr beau temps prevu pour aujourd'hui\n"
    "NS: MyFeatures <mid:MessageFeatures@id.foo.com>\n"
    "Require: MyFeatures.VitalMessageOption\n"
    "MyFeatures.VitalMessageOption: Confirmation-requested\n"
    "MyFeatures.WackyMessageOption: Use-silly-font\n"
    "\n"
    "Content-type: text/xml; charset=utf-8\n"
    "Content-ID: <1234567890@foo.com>\n"
    "\n"
    "<body>Here is the text of my message.</body>\n"
)


def test_blink_message() -> None:
    message = parse_cpim(BLINK)
    assert message.sender == CPIMIdentity("sip:alice@example.com", "Alice Liddell")
    assert message.recipients == [CPIMIdentity("sip:bob@example.com")]
    assert message.timestamp == NOON
    assert message.timestamp.tzinfo is not None
    assert message.namespaces == {"imdn": IMDN_NAMESPACE}
    assert message.headers == {
        "imdn.Message-ID": "6d2d4c4a9b3f4e0b",
        "imdn.Disposition-Notification": "positive-delivery, display",
    }
    assert message.header("Message-ID", IMDN_NAMESPACE) == "6d2d4c4a9b3f4e0b"
    assert message.media_type == "text/plain"
    assert message.charset == "utf-8"
    assert message.text == "Hello Bob, \u00e7a va?"
    assert message.content == "Hello Bob, \u00e7a va?".encode()


def test_linphone_message_with_declaration_after_use_and_compact_offset() -> None:
    message = parse_cpim(LINPHONE)
    assert message.sender == CPIMIdentity("sip:alice@sip.example.org")
    expected = datetime.datetime(2024, 3, 5, 13, 22, 7, tzinfo=UTC)
    assert message.timestamp == expected
    assert message.timestamp.utcoffset() == datetime.timedelta(hours=1)
    assert message.header("message-id", IMDN_NAMESPACE) == "VwOgH8NgT"
    assert message.text == "hello"
    # Content-Length is honoured, then dropped: it is derived from the content.
    assert "Content-Length" not in message.content_headers


def test_rfc3862_example() -> None:
    message = parse_cpim(RFC_EXAMPLE)
    assert message.sender == CPIMIdentity("im:piglet@100akerwood.com", "MR SANDERS")
    assert message.recipients == [CPIMIdentity("im:eeyore@100akerwood.com", "Depressed Donkey")]
    assert message.timestamp == datetime.datetime(2000, 12, 13, 21, 40, tzinfo=UTC)
    assert message.subject == "the weather will be fine today"
    assert message.subject_translations == {"fr": "beau temps prevu pour aujourd'hui"}
    assert message.required == ["MyFeatures.VitalMessageOption"]
    assert message.header("VitalMessageOption", "mid:MessageFeatures@id.foo.com") == (
        "Confirmation-requested")
    assert message.header("WackyMessageOption", "mid:MessageFeatures@id.foo.com") == (
        "Use-silly-font")
    assert message.header("WackyMessageOption", IMDN_NAMESPACE) is None
    assert message.media_type == "text/xml"
    assert message.content_headers == {"Content-ID": "<1234567890@foo.com>"}
    assert message.text == "<body>Here is the text of my message.</body>\r\n"


def test_lf_line_ends_odd_case_and_missing_space_are_tolerated() -> None:
    message = parse_cpim(
        b"to:<sip:bob@example.com>\n"
        b"FROM:   <sip:alice@example.com>  \n"
        b"datetime:2024-01-01T10:00:00Z\n"
        b"\n"
        b"content-type:text/plain\n"
        b"\n"
        b"hi\n"
    )
    assert message.sender == CPIMIdentity("sip:alice@example.com")
    assert message.recipients == [CPIMIdentity("sip:bob@example.com")]
    assert message.timestamp == NOON
    assert message.text == "hi\n"


def test_bare_uri_identity_and_several_recipients() -> None:
    message = parse_cpim(wire(
        "From: sip:alice@example.com\n"
        "To: <sip:bob@example.com>\n"
        'To: "Carol" <sip:carol@example.com>\n'
        "cc: <sip:dave@example.com>\n"
        "\n"
        "Content-Type: text/plain\n"
        "\n"
        "x"
    ))
    assert message.sender == CPIMIdentity("sip:alice@example.com")
    assert [r.uri for r in message.recipients] == ["sip:bob@example.com", "sip:carol@example.com"]
    assert message.recipients[1].display_name == "Carol"
    assert message.cc == [CPIMIdentity("sip:dave@example.com")]
    assert message.timestamp is None  # DateTime is optional


def test_quoted_display_name_with_special_characters() -> None:
    identity = CPIMIdentity.parse(r'"Bob \"The <Builder>\" \\ Jr" <sip:bob@example.com>')
    assert identity == CPIMIdentity("sip:bob@example.com", 'Bob "The <Builder>" \\ Jr')
    assert CPIMIdentity.parse(str(identity)) == identity


def test_required_spelling_is_read_like_require() -> None:
    message = parse_cpim(wire("Required: DateTime, Subject\nRequire: cc\n\n"
                              "Content-Type: text/plain\n\nx"))
    assert message.required == ["DateTime", "Subject", "cc"]
    assert message.headers == {}
    assert b"Require: DateTime,Subject,cc\r\n" in message.encode()


def test_missing_mime_content_type_defaults_to_plain_text() -> None:
    message = parse_cpim(wire("From: <sip:a@example.com>\n\n\nbody"))
    assert message.media_type == "text/plain"
    assert message.text == "body"


def test_repeated_extension_header_values_are_joined() -> None:
    message = parse_cpim(wire(
        "NS: imdn <urn:ietf:params:imdn>\n"
        "imdn.Disposition-Notification: positive-delivery\n"
        "imdn.Disposition-Notification: display\n"
        "\nContent-Type: text/plain\n\nx"))
    assert message.header("Disposition-Notification", IMDN_NAMESPACE) == (
        "positive-delivery, display")


def test_undeclared_prefix_is_kept_but_belongs_to_no_namespace() -> None:
    message = parse_cpim(wire("foo.Bar: baz\n\nContent-Type: text/plain\n\nx"))
    assert message.headers == {"foo.Bar": "baz"}
    assert message.namespace_of("foo") is None
    assert message.header("Bar") is None


def test_non_text_content_has_no_text() -> None:
    message = parse_cpim(wire("\nContent-Type: application/octet-stream\n\n") + b"\xff\x00")
    assert message.content == b"\xff\x00"
    assert message.text is None


def test_other_charset_is_decoded() -> None:
    body = (wire('\nContent-Type: text/plain; charset="ISO-8859-1"\n\n')
            + "d\u00e9j\u00e0".encode("latin-1"))
    assert parse_cpim(body).text == "d\u00e9j\u00e0"


def test_as_dict_is_json_ready() -> None:
    data = parse_cpim(BLINK).as_dict()
    assert data == {
        "from": '"Alice Liddell" <sip:alice@example.com>',
        "to": ["<sip:bob@example.com>"],
        "cc": [],
        "datetime": "2024-01-01T10:00:00.000+00:00",
        "subject": None,
        "namespaces": {"imdn": IMDN_NAMESPACE},
        "headers": {"imdn.Message-ID": "6d2d4c4a9b3f4e0b",
                    "imdn.Disposition-Notification": "positive-delivery, display"},
    }


# --- building ----------------------------------------------------------------------------

def test_build_wire_format() -> None:
    data = build_cpim(
        "Hello \u263a",
        sender='"Alice" <sip:alice@example.com>',
        recipients="sip:bob@example.com",
        timestamp=datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.timezone(
            datetime.timedelta(hours=2))),
        subject="greeting",
        namespaces={"imdn": IMDN_NAMESPACE},
        headers={"imdn.Message-ID": "m1"},
    )
    assert data == (
        'From: "Alice" <sip:alice@example.com>\r\n'
        "To: <sip:bob@example.com>\r\n"
        "DateTime: 2024-01-01T12:00:00.000+02:00\r\n"
        "Subject: greeting\r\n"
        "NS: imdn <urn:ietf:params:imdn>\r\n"
        "imdn.Message-ID: m1\r\n"
        "\r\n"
        "Content-Type: text/plain;charset=utf-8\r\n"
        "\r\n"
        "Hello \u263a"
    ).encode()


def test_build_uses_the_given_charset() -> None:
    data = build_cpim("d\u00e9j\u00e0", "text/plain; charset=iso-8859-1",
                      sender="sip:a@example.com", recipients=["sip:b@example.com"],
                      timestamp=NOON)
    assert data.endswith(b"\r\n\r\nd\xe9j\xe0")
    assert parse_cpim(data).text == "d\u00e9j\u00e0"


def test_round_trip_full_message() -> None:
    original = CPIMMessage.compose(
        "<p>hi</p>", "text/html",
        sender=CPIMIdentity("sip:alice@example.com", "Alice"),
        recipients=[CPIMIdentity("sip:bob@example.com"),
                    CPIMIdentity("tel:+15551234", "Bob's phone")],
        cc=["sip:carol@example.com"],
        timestamp=datetime.datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=UTC),
        subject="  padded  ",
        namespaces={"imdn": IMDN_NAMESPACE, "x": "urn:example:x"},
        headers={"imdn.Message-ID": "abc", "x.Thing": "value with spaces"},
        required=["DateTime"],
        content_headers={"Content-ID": "<part1@example.com>"},
    )
    original.subject_translations["de"] = "Gruss"
    parsed = parse_cpim(original.encode())
    assert parsed == original
    assert parsed.subject == "padded"
    assert parsed.header("Thing", "urn:example:x") == "value with spaces"


@pytest.mark.parametrize("fields, problem", [
    ({"subject": "two\nlines"}, "control character"),
    ({"sender": "not a uri"}, "not a URI"),
    ({"headers": {"imdn.Message-ID": "x"}}, "undeclared namespace prefix"),
    ({"headers": {"From": "<sip:x@example.com>"}}, "is a CPIM header"),
    ({"headers": {"Bad Name": "x"}}, "invalid header name"),
    ({"headers": {"X-Inject": "a\r\nFrom: <sip:evil@example.com>"}}, "control character"),
    ({"timestamp": datetime.datetime(2024, 1, 1)}, "timezone-aware"),
    ({"namespaces": {"bad prefix": IMDN_NAMESPACE}}, "invalid namespace prefix"),
])
def test_build_refuses_what_cannot_be_written(fields: dict, problem: str) -> None:
    arguments = {"sender": "sip:a@example.com", "recipients": "sip:b@example.com",
                 "timestamp": NOON, **fields}
    with pytest.raises(CPIMError, match=problem):
        build_cpim("x", **arguments)


def test_build_refuses_unknown_charset_and_unencodable_text() -> None:
    common = {"sender": "sip:a@example.com", "recipients": "sip:b@example.com", "timestamp": NOON}
    with pytest.raises(CPIMCharsetError) as info:
        build_cpim("x", "text/plain;charset=klingon", **common)
    assert info.value.charset == "klingon"
    with pytest.raises(CPIMError, match="cannot be encoded"):
        build_cpim("\u263a", "text/plain;charset=us-ascii", **common)


# --- malformed input ---------------------------------------------------------------------

@pytest.mark.parametrize("body, problem", [
    (b"From: <sip:a@example.com>\r\n", "no blank line"),
    (b"", "no blank line"),
    (wire("From: <sip:a@example.com>\nFrom: <sip:b@example.com>\n\nContent-Type: text/plain\n\nx"),
     "more than one From"),
    (wire("From: <not a uri>\n\nContent-Type: text/plain\n\nx"), "not a URI"),
    (wire('From: "Alice <sip:a@example.com>\n\nContent-Type: text/plain\n\nx'), "unterminated"),
    (wire("From: <sip:a@example.com\n\nContent-Type: text/plain\n\nx"), "unterminated"),
    (wire("DateTime: yesterday\n\nContent-Type: text/plain\n\nx"), "DateTime"),
    (wire("DateTime: 2024-01-01T10:00:00\n\nContent-Type: text/plain\n\nx"), "time zone"),
    (wire("DateTime: 2024-13-01T10:00:00Z\n\nContent-Type: text/plain\n\nx"), "out of range"),
    (wire("DateTime: 2024-01-01T10:00:00Z\nDateTime: 2024-01-01T10:00:00Z\n\n"
          "Content-Type: text/plain\n\nx"), "more than one DateTime"),
    (wire("NS: imdn urn:ietf:params:imdn\n\nContent-Type: text/plain\n\nx"), "NS header"),
    (wire("This is not a header\n\nContent-Type: text/plain\n\nx"), "not a header line"),
    (wire(" folded: first\n\nContent-Type: text/plain\n\nx"), "continuation"),
    (wire("From: <sip:a@example.com>\n\nHello there, no MIME headers"), "MIME part has no headers"),
    (wire("\nContent-Type: text plain\n\nx"), "Content-Type"),
    (wire("From: <sip:a@example.com> junk\n\nContent-Type: text/plain\n\nx"), "after the"),
    (wire("\nContent-Type: text/plain\nContent-Length: -1\n\nx"), "Content-Length"),
    (wire("\nContent-Type: text/plain\nContent-Length: \u00b2\n\nxx"), "Content-Length"),
    (wire("\nContent-Type: text/plain\nContent-Length: " + "9" * 5000 + "\n\nx"),
     "Content-Length"),
    (b"From: <sip:\xff@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nx", "UTF-8"),
    (wire("Subject: a\x00b\n\nContent-Type: text/plain\n\nx"), "control character"),
    (wire("\nContent-Type: text/plain;charset=utf-8\n\n") + b"\xc3\x28", "not valid utf-8"),
])
def test_malformed_input_is_a_cpim_error(body: bytes, problem: str) -> None:
    with pytest.raises(CPIMError, match=problem) as info:
        parse_cpim(body)
    assert info.value.reason


def test_a_content_length_past_the_body_takes_the_body_and_no_more() -> None:
    """Senders count the CRLF their framing took, or characters for bytes: the body there is
    the content (nothing past it exists to read); a smaller length still cuts it."""
    message = parse_cpim(wire("\nContent-Type: text/plain\nContent-Length: 99\n\nshort"))
    assert message.content == b"short" and message.text == "short"
    message = parse_cpim(wire("\nContent-Type: text/plain;charset=utf-8\nContent-Length: 7\n\n")
                         + "h\u00e9llo".encode())  # 6 bytes; 7 counted with a CRLF cut
    assert message.text == "h\u00e9llo"
    message = parse_cpim(wire("\nContent-Type: text/plain\nContent-Length: 3\n\nabc\n"))
    assert message.content == b"abc"


def test_a_content_length_counting_characters_takes_the_characters() -> None:
    """A sender that counts characters for bytes declares less than the UTF-8 it sends: the
    text is taken whole, not cut inside its last characters; what still follows is not."""
    text = "\u00e7a va, \u00e9t\u00e9 \u2603"
    body = wire("\nContent-Type: text/plain;charset=utf-8\nContent-Length: "
                f"{len(text)}\n\n") + text.encode()
    assert parse_cpim(body).text == text
    assert parse_cpim(body + b"\r\n").text == text
    shorter = wire("\nContent-Type: text/plain;charset=utf-8\nContent-Length: 4\n\n")
    assert parse_cpim(shorter + text.encode()).text == "\u00e7a "  # 4 bytes, then not content
    assert parse_cpim(shorter + "\u00e7a v".encode()).text == "\u00e7a v"


@pytest.mark.parametrize("value, uri, name", [
    ("<sip:alice@example.com>;tag=a6c85cf", "sip:alice@example.com", None),
    ('"Alice" <sip:alice@example.com>;tag=1;x="y z"', "sip:alice@example.com", "Alice"),
    ("Alice <sip:alice@example.com> ;tag=1", "sip:alice@example.com", "Alice"),
])
def test_a_from_with_header_parameters_after_the_uri(value: str, uri: str,
                                                     name: str | None) -> None:
    """Some clients copy their SIP From, tag included, into CPIM's From."""
    message = parse_cpim(wire(f"From: {value}\nTo: <sip:bob@example.com>;tag=9\n\n"
                              "Content-Type: text/plain\n\nhi"))
    assert message.sender == CPIMIdentity(uri, name)
    assert message.recipients == [CPIMIdentity("sip:bob@example.com")]


def test_ascii_text_is_wrapped_without_a_charset_other_text_with_utf8() -> None:
    """US-ASCII is text/*'s default charset (RFC 2046 §4.1.2): pure-ASCII text goes as bare
    `text/plain`, which SipLib compares the wrapped type with; anything else says UTF-8."""
    common = {"sender": "sip:a@example.com", "recipients": "sip:b@example.com", "timestamp": NOON}
    plain = build_cpim("hello", "text/plain", **common)
    assert plain.endswith(b"\r\n\r\nContent-Type: text/plain\r\n\r\nhello")
    assert parse_cpim(plain).text == "hello"
    assert build_cpim(b"hello", "text/html", **common).endswith(
        b"\r\nContent-Type: text/html\r\n\r\nhello")
    accented = build_cpim("h\u00e9", "text/plain", **common)
    assert b"\r\nContent-Type: text/plain;charset=utf-8\r\n\r\nh\xc3\xa9" in accented
    assert parse_cpim(accented).text == "h\u00e9"
    given_charset = build_cpim("hello", "text/plain;charset=utf-8", **common)
    assert b"Content-Type: text/plain;charset=utf-8\r\n" in given_charset


def test_unknown_inner_charset_is_reported_as_such() -> None:
    with pytest.raises(CPIMCharsetError) as info:
        parse_cpim(wire("\nContent-Type: text/plain;charset=base64\n\naGk="))
    assert info.value.charset == "base64"


def test_not_bytes_is_a_cpim_error() -> None:
    with pytest.raises(CPIMError):
        parse_cpim("From: <sip:a@example.com>\r\n\r\n")  # type: ignore[arg-type]


def test_default_namespace_is_the_cpim_one() -> None:
    assert parse_cpim(BLINK).namespace_of(None) == DEFAULT_NAMESPACE


# --- properties --------------------------------------------------------------------------

_uri = st.from_regex(r"(sip|sips|im|tel):[a-z0-9]{1,8}(@[a-z0-9]{1,8}\.example)?", fullmatch=True)
_identity = st.builds(CPIMIdentity, _uri, st.none() | st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=20))
_line_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                     max_size=40).map(lambda s: s.strip(" \t"))
_moment = st.datetimes(min_value=datetime.datetime(1970, 1, 1),
                       max_value=datetime.datetime(2200, 1, 1),
                       timezones=st.sampled_from([UTC, datetime.timezone(
                           datetime.timedelta(hours=-5, minutes=-30))])).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@settings(max_examples=300, deadline=None)
@given(
    content=st.text(st.characters(blacklist_categories=("Cs",)), max_size=200),
    sender=_identity,
    recipients=st.lists(_identity, max_size=3),
    timestamp=st.none() | _moment,
    subject=st.none() | _line_text,
    message_id=_line_text,
)
def test_round_trip_property(content, sender, recipients, timestamp, subject, message_id) -> None:
    original = CPIMMessage.compose(
        content, sender=sender, recipients=recipients, timestamp=timestamp, subject=subject,
        namespaces={"imdn": IMDN_NAMESPACE}, headers={"imdn.Message-ID": message_id})
    parsed = parse_cpim(original.encode())
    assert parsed == original
    assert parsed.text == content
    if timestamp is not None:
        assert parsed.timestamp == timestamp


@settings(max_examples=1500, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([BLINK, LINPHONE, RFC_EXAMPLE, b"\r\n", b"\n", b":", b"<", b">",
                              b'"', b";lang=", b"NS: ", b"\xff", b"DateTime: 2024-",
                              b"Content-Length: 3\r\n", b"x.y: z\r\n"]),
             max_size=8).map(b"".join),
    st.tuples(st.sampled_from([BLINK, LINPHONE, RFC_EXAMPLE]), st.integers(0, 400),
              st.binary(max_size=4)).map(lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:]),
))
def test_fuzz_only_cpim_error_escapes(data: bytes) -> None:
    try:
        message = parse_cpim(data)
    except CPIMError as exc:
        assert exc.reason
        return
    # What parses can be summarised and read without surprises.
    message.as_dict()
    message.text  # noqa: B018
