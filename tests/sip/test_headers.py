"""Header container, compact forms, lexical helpers and typed header values."""

from __future__ import annotations

import pytest

from sipd.sip.errors import SipParseError
from sipd.sip.header_values import (
    MAX_DELTA_SECONDS,
    parse_address,
    parse_cseq,
    parse_delta_seconds,
    parse_event,
    parse_media_type,
    parse_subscription_state,
    parse_via,
)
from sipd.sip.headers import COMPACT_FORMS, Headers, canonical_name
from sipd.sip.syntax import Params, Scanner, parse_params, quote, split_list, unquote

# --- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("compact, full", sorted(COMPACT_FORMS.items()))
def test_compact_forms_expand(compact, full):
    assert canonical_name(compact) == full
    assert canonical_name(compact.upper()) == full


@pytest.mark.parametrize("name, canonical", [
    ("call-id", "Call-ID"), ("CSEQ", "CSeq"), ("www-authenticate", "WWW-Authenticate"),
    ("max-forwards", "Max-Forwards"), ("VIA", "Via"), ("X-Custom", "X-Custom"),
    ("x-custom", "x-custom"),  # unknown names keep their spelling
])
def test_canonical_names(name, canonical):
    assert canonical_name(name) == canonical


def test_lookup_is_case_insensitive_and_through_compact_forms():
    headers = Headers([("v", "SIP/2.0/UDP a"), ("VIA", "SIP/2.0/UDP b"), ("i", "abc")])
    assert headers.get_all("via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    assert headers.get("Call-Id") == "abc" and "call-id" in headers and "I" in headers
    assert headers.names() == ["Via", "Via", "Call-ID"]


def test_values_split_list_headers_only():
    headers = Headers([
        ("Via", 'SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2'),
        ("Contact", '"Doe, John" <sip:j@x;a=1,2>;q=0.5, <sip:k@y>'),
        ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
        ("WWW-Authenticate", 'Digest realm="a,b", nonce="x"'),
        ("Supported", ""),
    ])
    assert headers.values("Via") == ["SIP/2.0/UDP a;branch=z9hG4bK1",
                                     "SIP/2.0/TCP b;branch=z9hG4bK2"]
    assert headers.values("Contact") == ['"Doe, John" <sip:j@x;a=1,2>;q=0.5', "<sip:k@y>"]
    assert headers.values("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert headers.values("WWW-Authenticate") == ['Digest realm="a,b", nonce="x"']
    assert headers.values("Supported") == []


def test_mutation_keeps_order():
    headers = Headers([("Via", "SIP/2.0/UDP a"), ("To", "<sip:b@x>"), ("Via", "SIP/2.0/UDP c")])
    headers.add_first("Via", "SIP/2.0/UDP new")
    assert headers.get_all("Via") == ["SIP/2.0/UDP new", "SIP/2.0/UDP a", "SIP/2.0/UDP c"]
    headers.set("via", "SIP/2.0/UDP only")
    assert list(headers) == [("Via", "SIP/2.0/UDP only"), ("To", "<sip:b@x>")]
    headers.add_first("Record-Route", "<sip:p;lr>")
    assert headers.names()[0] == "Record-Route"
    headers.remove("record-route")
    assert "Record-Route" not in headers and len(headers) == 2


def test_replace_and_remove_first_value_of_a_multi_value_line():
    headers = Headers([("Route", "<sip:a;lr>, <sip:b;lr>"), ("Route", "<sip:c;lr>")])
    headers.replace_first_value("Route", "<sip:z;lr>")
    assert headers.values("Route") == ["<sip:z;lr>", "<sip:b;lr>", "<sip:c;lr>"]
    headers.remove_first_value("Route")
    headers.remove_first_value("Route")
    assert headers.values("Route") == ["<sip:c;lr>"]
    with pytest.raises(KeyError):
        Headers().replace_first_value("Via", "x")


# --- lexical helpers ---------------------------------------------------------------------

def test_split_list_respects_quotes_escapes_and_angle_brackets():
    assert split_list('a, "b,\\"c", <d,e>;x=",", f') == ['a', '"b,\\"c"', "<d,e>;x=\",\"", "f"]
    assert split_list(";;,,;") == [";;", "", ";"]


def test_quote_and_unquote_round_trip():
    for text in ['plain', 'with "quotes"', "back\\slash", ""]:
        assert unquote(quote(text)) == text
    assert unquote('"a\\"b"') == 'a"b' and unquote("token") == "token"


def test_params_are_case_insensitive_ordered_and_keep_raw_values():
    scanner = Scanner(' ; Tag = abc ;LR; name="quoted \\" value"', "X")
    params = parse_params(scanner)
    assert params.names() == ["Tag", "LR", "name"]
    assert params.get("tag") == "abc" and "lr" in params and params.get("lr") is None
    assert params.get("name") == '"quoted \\" value"'
    assert params.get_unquoted("NAME") == 'quoted " value'
    assert str(params) == ';Tag=abc;LR;name="quoted \\" value"'
    assert params == Params([("lr", None), ("tag", "abc"), ("NAME", '"quoted \\" value"')])


def test_params_reject_empty_names_and_values():
    for text in (";;", "; =x", ";a="):
        with pytest.raises(SipParseError):
            parse_params(Scanner(text, "X"))


# --- name-addr / addr-spec ---------------------------------------------------------------

@pytest.mark.parametrize("text, display, uri, tag", [
    ('"Alice Liddell" <sip:alice@example.com>;tag=abc', "Alice Liddell", "sip:alice@example.com",
     "abc"),
    ("Bob <sip:bob@example.com>", "Bob", "sip:bob@example.com", None),
    ("Two Tokens<sip:x@y>;tag=1", "Two Tokens", "sip:x@y", "1"),
    ("<sip:x@y;transport=tcp>;tag=2", None, "sip:x@y;transport=tcp", "2"),
    ("sip:x@y;tag=3", None, "sip:x@y", "3"),
    ('"" <sip:x@y>', "", "sip:x@y", None),
    ('"\\"quoted\\"" <tel:+123>', '"quoted"', "tel:+123", None),
    ("<sip:[::1]:5070>", None, "sip:[::1]:5070", None),
])
def test_addresses(text, display, uri, tag):
    address = parse_address(text)
    assert address.display_name == display and str(address.uri) == uri and address.tag == tag
    again = parse_address(str(address))
    assert again.display_name == display and again.uri == address.uri and again.tag == tag


@pytest.mark.parametrize("text, problem", [
    ('"unterminated <sip:x@y>', "unterminated"),
    ("< sip:x@y>", "whitespace"),
    ("<sip:x@y >", "whitespace"),
    ("<sip:x@y", "'>'"),
    ("Bell, Alexander <sip:x@y>", "not quoted"),
    ("a@b <sip:x@y>", "not quoted"),
    ("sip:x@y?Route=%3Csip:z%3E", "<>"),
    ("<sip:x@y> junk", "unexpected"),
    ('"name" sip:x@y', "'<'"),
])
def test_bad_addresses(text, problem):
    with pytest.raises(SipParseError) as info:
        parse_address(text, "From")
    assert problem in info.value.detail and "From" in info.value.detail


def test_address_tag_setter_and_contact_params():
    address = parse_address("<sip:a@b>;expires=3600;q=0.7")
    address.tag = "xyz"
    assert address.expires == 3600 and address.q == 0.7 and address.tag == "xyz"
    address.tag = None
    assert "tag" not in address.params
    assert parse_address("<sip:a@b>;expires=99999999999999").expires == MAX_DELTA_SECONDS
    with pytest.raises(SipParseError):
        parse_address("<sip:a@b>;q=2").q  # noqa: B018 - parses


# --- Via ---------------------------------------------------------------------------------

def test_via_with_ipv6_received_and_rport():
    via = parse_via("SIP/2.0/tcp [2001:db8::9]:5070;branch=z9hG4bKabc;received=2001:db8::1;"
                    "rport=5071")
    assert via.transport == "TCP" and via.host == "2001:db8::9" and via.port == 5070
    assert via.branch == "z9hG4bKabc" and via.received == "2001:db8::1" and via.rport == 5071
    assert via.sent_by == ("2001:db8::9", 5070)
    assert str(via) == ("SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bKabc;received=2001:db8::1;"
                        "rport=5071")


def test_via_with_lws_everywhere_and_empty_rport():
    via = parse_via("SIP / 2.0 / UDP   Host.Example.COM : 5060 ;rport ; branch = z9hG4bKx")
    assert via.protocol == "SIP/2.0" and via.host == "Host.Example.COM" and via.port == 5060
    assert via.wants_rport and via.rport is None and via.branch == "z9hG4bKx"
    assert via.sent_by == ("host.example.com", 5060)


@pytest.mark.parametrize("text", [
    "SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDP host;;", "SIP/2.0/UDP host:abc",
    "SIP/2.0/UDP [::1", "SIP/2.0/UDPhost", "SIP/2.0/UDP host junk",
])
def test_bad_vias(text):
    with pytest.raises(SipParseError, match="Via"):
        parse_via(text)


# --- CSeq, numbers, media types, events --------------------------------------------------

def test_cseq():
    assert parse_cseq("  0042 \t INVITE ") == parse_cseq("42 INVITE")
    assert parse_cseq("4294967295 ACK").number == 2**32 - 1
    for bad in ("4294967296 INVITE", "INVITE", "12", "12INVITE", "-1 INVITE", "1 IN VITE"):
        with pytest.raises(SipParseError) as info:
            parse_cseq(bad)
        assert info.value.status == 400 and "CSeq" in info.value.detail


def test_delta_seconds():
    assert parse_delta_seconds("3600", "Expires") == 3600
    assert parse_delta_seconds("1" + "0" * 100, "Expires") == MAX_DELTA_SECONDS
    for bad in ("", "-1", "1.5", "abc"):
        with pytest.raises(SipParseError):
            parse_delta_seconds(bad, "Expires")


def test_media_types():
    media = parse_media_type('multipart/mixed ; boundary="abc def"')
    assert media.mime == "multipart/mixed" and media.params.get_unquoted("boundary") == "abc def"
    assert parse_media_type("*/*").matches("application/sdp")
    assert parse_media_type("application/*").matches("application/sdp")
    assert not parse_media_type("text/*").matches("application/sdp")
    with pytest.raises(SipParseError):
        parse_media_type("application")


def test_event_and_subscription_state():
    event = parse_event("presence;id=17")
    assert event.package == "presence" and event.id == "17" and str(event) == "presence;id=17"
    state = parse_subscription_state("Terminated;reason=Timeout;retry-after=30")
    assert state.state == "terminated" and state.reason == "timeout" and state.retry_after == 30
    assert parse_subscription_state("active;expires=600").expires == 600
