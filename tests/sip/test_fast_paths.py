"""The parser's fast paths read exactly what the general reader reads, and nothing more.

Each fast path (the regexes for a plain SIP URI, name-addr and Via, the plain header section,
the search for CRLFCRLF) only takes input of a shape the general reader would read the same
way; anything else goes on to the general reader. Here the same inputs (the benchmark's
corpus, the fuzz seeds, and mutations of them) are read with the fast paths on and off: the
results must be equal, field by field, and an input one refuses the other refuses too, with
the same message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bench.sip_corpus import AUTHORIZATION, CORPUS, WWW_AUTHENTICATE
from sipd.sip import auth, header_values, message, parsed_headers, uri
from sipd.sip.errors import SipParseError
from sipd.sip.header_values import parse_address, parse_via
from sipd.sip.message import HEAD_END_RE, find_head_end, parse_datagram
from sipd.sip.parsed_headers import forget
from sipd.sip.syntax import Params, split_list
from sipd.sip.uri import parse_uri

from .test_fuzz import FUZZ, SEEDS, mutated_messages

NEVER = re.compile(r"(?!)")


@contextlib.contextmanager
def general_reader_only() -> Iterator[None]:
    """The fast paths switched off: every input goes to the general reader."""
    saved = (uri._PLAIN_SIP_URI, header_values._PLAIN_NAME_ADDR, header_values._PLAIN_VIA,
             message._plain_fields, auth._PLAIN_CHALLENGE, parsed_headers._plain_contact)
    parsed_headers._plain_contact = lambda text: False
    uri._PLAIN_SIP_URI = auth._PLAIN_CHALLENGE = NEVER
    header_values._PLAIN_NAME_ADDR = header_values._PLAIN_VIA = NEVER
    message._plain_fields = lambda lines: None
    quick, parsed_headers._QUICK = parsed_headers._QUICK, {}
    request_line, message._PLAIN_REQUEST_LINE = message._PLAIN_REQUEST_LINE, NEVER
    forget()
    try:
        yield
    finally:
        parsed_headers._QUICK = quick
        message._PLAIN_REQUEST_LINE = request_line
        (uri._PLAIN_SIP_URI, header_values._PLAIN_NAME_ADDR, header_values._PLAIN_VIA,
         message._plain_fields, auth._PLAIN_CHALLENGE, parsed_headers._plain_contact) = saved
        forget()


def shape(value: Any) -> Any:
    """Every field of a parsed value, recursively, with its type."""
    if isinstance(value, Params):
        return ("Params", value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,
                [(f.name, shape(getattr(value, f.name))) for f in dataclasses.fields(value)])
    if isinstance(value, (list, tuple)):
        return [shape(item) for item in value]
    return value


def outcome(read: Callable[[], Any]) -> Any:
    try:
        return ("ok", shape(read()))
    except SipParseError as error:
        return ("error", str(error), error.status, error.reason)


def both_ways(read: Callable[[], Any]) -> tuple[Any, Any]:
    forget()
    fast = outcome(read)
    with general_reader_only():
        general = outcome(read)
    return fast, general


def read_message(data: bytes) -> Callable[[], Any]:
    def read() -> Any:
        try:
            parsed = parse_datagram(data)
        except SipParseError as error:  # refused at reading, not later by an accessor
            return ("refused", str(error), error.status, error.reason)
        return (type(parsed).__name__, getattr(parsed, "method", None), shape(getattr(
            parsed, "uri", None)), getattr(parsed, "status", None), parsed.headers.fields(),
            parsed.vias, parsed.from_, parsed.to, parsed.contacts, parsed.routes,
            parsed.record_routes, parsed.cseq, parsed.call_id, parsed.body)
    return read


VALUES = [
    '"Alice Liddell" <sip:alice@example.test>;tag=8d4f2a61c3e7',
    "<sip:alice-example-test@127.0.0.1:5062;transport=udp>;expires=600;"
    '+sip.instance="<urn:uuid:0f1e2d3c-4b5a-6978-8899-aabbccddeeff>"',
    "<sip:127.0.0.1:5060;lr>",
    "<sips:bob@[::1]:5061;transport=tls>",
    '"" <sip:a@b>',
    '"A \\"B\\"" <sip:a@b>;tag=1',
    "Bob <sip:bob@host>",
    "sip:bob@host;tag=2",
    "<sip:a;b=c@host;maddr=1.2.3.4;Maddr=x>",
    "<sip:alice:secret@host:65535;a=;b>;x",
    "<sip:host:65536>",
    "<sip:al%41ce@host;p%41=1>;q=0.5",
    "<SIP:Alice@Example.COM>;TAG=X",
    "<sip:-bad@.host>",
    "<tel:+1-555-0100;phone-context=x>",
    "<urn:service:sos>",
    '<sip:a@b>;expires=x;+sip.instance="<urn:x>"',
    "<sip:a@b>;Expires=60;expires=x",
    "<sip:a@b>;expires;q=1",
    '<sip:a@b>;expires="60"',
    "<sip:a@b>;expiresx=1;expires=4294967296",
    "<sip:a@b>;Expires=6x",
    "<sip:a@b>;expiresx=1;EXPIRES;expires=x",
    '<sip:a@b>;x="a;expires=b";expires=b',
    "<sip:a@b>;expire\u017f=x",
]
VIAS = [
    "SIP/2.0/UDP 127.0.0.1:5062;rport=5062;branch=z9hG4bK.a7e3c1f0d2b94e6f8c1a;"
    "received=127.0.0.1",
    "SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bK.77e1f0c2a9d84b3e",
    "sip/2.0/tcp host;branch=z9hG4bK1;x=\"q;v\"",
    "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK2",
    "SIP / 2.0 / UDP host : 5060 ;branch=z9hG4bK3",
    "SIP/2.0/UDP .host:5060",
    "SIP/2.0/UDP host:123456;branch=1",
    "SIP/2.0/UDP host:99999",
]
CHALLENGES = [
    WWW_AUTHENTICATE, AUTHORIZATION,
    'Digest realm="a\\"b", nonce=x, qop="auth,auth-int", algorithm=SHA-256',
    'Digest  realm="r" ,nonce="n"', "Basic realm=x", "Digest realm=, nonce=n",
    'Digest realm="r", realm="s", stale=TRUE, opaque="o"',
]
CHARS = st.sampled_from(list(' \t"<>;:=@,?%[]\\.-+_0123456789aAzZ\x00\xff'))


@st.composite
def mutated(draw: Any, values: list[str]) -> str:
    text = list(draw(st.sampled_from(values)))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            text.insert(position, draw(CHARS))
        elif position < len(text):
            if action == "delete":
                del text[position]
            else:
                text[position] = draw(CHARS)
    return "".join(text)


def read_contact(text: str) -> Callable[[], Any]:
    """A message with `text` as its Contact, read, and its contacts' expires."""
    data = (b"OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
            b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
            b"Contact: " + text.encode("utf-8", "surrogateescape") + b"\r\n\r\n")

    def read() -> Any:
        try:
            parsed = parse_datagram(data)
        except SipParseError as error:  # refused at reading, not later by an accessor
            return ("refused", str(error))
        return [(shape(contact), contact.expires) for contact in parsed.contacts]
    return read


def test_the_corpus_and_the_seeds_read_the_same_both_ways():
    for data in [*CORPUS.values(), *SEEDS]:
        fast, general = both_ways(read_message(data))
        assert fast == general, data


def test_the_listed_values_read_the_same_both_ways():
    for text in VALUES:
        fast, general = both_ways(read_contact(text))
        assert fast == general, text
        for what in ("From", "Contact"):
            fast, general = both_ways(lambda: parse_address(text, what))  # noqa: B023
            assert fast == general, text
        inner = text.partition("<")[2].partition(">")[0]
        fast, general = both_ways(lambda: parse_uri(inner, "URI"))  # noqa: B023
        assert fast == general, inner
    for text in VIAS:
        fast, general = both_ways(lambda: parse_via(text))  # noqa: B023
        assert fast == general, text


@FUZZ
@given(mutated(VALUES))
def test_mutated_addresses_read_the_same_both_ways(text):
    fast, general = both_ways(lambda: parse_address(text, "To"))
    assert fast == general
    fast, general = both_ways(read_contact(text))
    assert fast == general
    inner = text.partition("<")[2].partition(">")[0] or text
    fast, general = both_ways(lambda: parse_uri(inner, "URI"))
    assert fast == general


@FUZZ
@given(mutated(VIAS))
def test_mutated_vias_read_the_same_both_ways(text):
    fast, general = both_ways(lambda: parse_via(text))
    assert fast == general


@FUZZ
@given(st.lists(mutated(VALUES), min_size=1, max_size=3), st.lists(mutated(VIAS), min_size=1,
       max_size=3), st.sampled_from([",", ", ", " ,\t"]))
def test_the_usual_shapes_are_plain(addresses, vias, comma):
    """What parsing a message only checks by the regexes of the usual shapes is plain: its
    accessor reads each value by the fast path, which cannot fail."""
    for text in addresses:
        if header_values.usual_address(text):
            assert header_values.is_plain_address(text)
    line = comma.join(addresses)
    if header_values.usual_addresses(line):
        assert all(header_values.is_plain_address(v) for v in split_list(line))
    if header_values.usual_contacts(line):
        assert all(header_values.is_plain_contact(v) for v in split_list(line))
    line = comma.join(vias)
    if header_values.usual_vias(line):
        assert all(header_values.is_plain_via(v) for v in split_list(line))


def test_the_usual_shapes_take_the_corpus_values():
    assert header_values.usual_address(VALUES[0]) and header_values.usual_contacts(VALUES[1])
    assert header_values.usual_contacts(f"{VALUES[1]}, <sip:alice@192.0.2.10:5060>;expires=3")
    assert header_values.usual_vias(VIAS[0]) and header_values.usual_vias(VIAS[1])
    assert header_values.usual_vias(f"{VIAS[0]},{VIAS[1]}")
    assert not header_values.usual_address("<sip:host:65536>")
    assert not header_values.usual_addresses("<sip:a@h>,")
    assert not header_values.usual_vias("SIP/2.0/UDP host:99999")


@FUZZ
@given(mutated_messages())
def test_mutated_messages_read_the_same_both_ways(data):
    fast, general = both_ways(read_message(data))
    assert fast == general


@FUZZ
@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b"a", b":", b" "]), max_size=14),
       st.integers(0, 3))
def test_the_end_of_the_header_section_is_where_the_regex_finds_it(pieces, start):
    data = b"".join(pieces)
    end = HEAD_END_RE.search(data, start)
    assert find_head_end(data, start) == (None if end is None else end.span())


def test_the_listed_challenges_read_the_same_both_ways():
    for text in CHALLENGES:
        fast, general = both_ways(lambda: auth.parse_challenge(text))  # noqa: B023
        assert fast == general, text


@FUZZ
@given(mutated(CHALLENGES))
def test_mutated_challenges_read_the_same_both_ways(text):
    fast, general = both_ways(lambda: auth.parse_challenge(text))
    assert fast == general
