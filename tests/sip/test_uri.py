from __future__ import annotations

import pytest

from sipd.sip.errors import SipParseError
from sipd.sip.uri import AbsoluteUri, SipUri, TelUri, parse_sip_uri, parse_uri


def test_full_sip_uri_parses_into_its_parts():
    uri = parse_uri("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr;maddr=239.255.255.1"
                    "?subject=project%20x&priority=urgent")
    assert isinstance(uri, SipUri)
    assert uri.scheme == "sips" and uri.secure
    assert (uri.user, uri.password) == ("alice", "secret")
    assert uri.host == "2001:db8::1" and uri.port == 5061
    assert uri.transport == "tcp" and uri.lr and uri.maddr == "239.255.255.1"
    assert uri.headers == [("subject", "project x"), ("priority", "urgent")]
    assert uri.host_port == "[2001:db8::1]:5061"


def test_scheme_is_case_insensitive_and_stored_lower():
    uri = parse_uri("SIP:Bob@Example.COM")
    assert uri.scheme == "sip" and uri.user == "Bob" and uri.host == "Example.COM"
    assert str(uri) == "sip:Bob@Example.COM"


@pytest.mark.parametrize("text", [
    "sip:alice@atlanta.com",
    "sip:alice:secretword@atlanta.com;transport=tcp",
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone",
    "sip:alice@192.0.2.4",
    "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
    "sip:alice;day=tuesday@atlanta.com",
    "sip:[::1]:5060;transport=udp",
    "sip:127.0.0.1:5080;lr",
])
def test_rfc3261_examples_round_trip(text):
    assert str(parse_uri(text)) == text


def test_user_with_semicolons_and_escaped_at_sign():
    uri = parse_sip_uri("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u@example.net" and uri.host == "example.com"
    assert str(uri) == "sip:user;par=u%40example.net@example.com"


def test_percent_decoding_happens_exactly_once():
    uri = parse_sip_uri("sip:host;name=v%61lue%25%34%31")
    assert uri.params.get("name") == "value%41"
    # ...and re-encoding keeps the meaning.
    assert parse_sip_uri(str(uri)).params.get("name") == "value%41"


@pytest.mark.parametrize("text, problem", [
    ("sip:", "host"),
    ("sip:@host", "user"),
    ("sip:alice@", "host"),
    ("sip:a@b@c", "'@'"),
    ("sip:host:99999", "port"),
    ("sip:host:5x", "port"),
    ("sip:[::1", "IPv6"),
    ("sip:[zz::1]", "IPv6"),
    ("sip:ali ce@host", "not allowed"),
    ("sip:alice%4@host", "hex"),
    ("sip:host;=x", "parameter"),
    ("sip:host?noequals", "header"),
    ("<sip:host>", "scheme"),
    ("nocolon", "scheme"),
    ("1sip:host", "scheme"),
    ("foo:has space", "invalid characters"),
    ("tel:", "number"),
])
def test_malformed_uris_raise_400(text, problem):
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400
    assert problem.lower() in info.value.detail.lower()


def test_parse_sip_uri_answers_416_for_other_schemes():
    with pytest.raises(SipParseError) as info:
        parse_sip_uri("mailto:alice@example.com")
    assert info.value.status == 416


# --- comparison (RFC 3261 §19.1.4) ---------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    ("sip:[2001:db8:0::1]", "sip:[2001:DB8::1]"),
])
def test_equivalent_uris(a, b):
    assert parse_uri(a) == parse_uri(b)
    assert hash(parse_uri(a)) == hash(parse_uri(b))


@pytest.mark.parametrize("a, b", [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice:one@atlanta.com", "sip:alice:two@atlanta.com"),
    ("sip:user;par=u%40example.net@example.com", "sip:user;par=u@example.net"),
])
def test_different_uris(a, b):
    assert parse_uri(a) != parse_uri(b)


def test_escaped_null_users_differ():
    assert parse_uri("sip:%00@host") != parse_uri("sip:%00%00@host")


# --- tel and opaque URIs -------------------------------------------------------------------

def test_tel_uri():
    uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(uri, TelUri) and uri.is_global
    assert uri.params.get("phone-context") == "example.com"
    assert uri == parse_uri("tel:+12015550123;Phone-Context=EXAMPLE.com")
    assert uri != parse_uri("tel:+12015550124;phone-context=example.com")
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"


def test_absolute_uri_is_kept_opaque():
    uri = parse_uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    assert isinstance(uri, AbsoluteUri) and uri.scheme == "urn"
    assert uri.opaque == "uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    assert str(uri) == "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    assert uri == parse_uri("URN:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")


def test_without_headers_drops_what_a_request_uri_may_not_carry():
    uri = parse_sip_uri("sip:proxy.example.com;lr;method=INVITE?Route=%3Csip:x%3E")
    clean = uri.without_headers()
    assert str(clean) == "sip:proxy.example.com;lr"
    assert uri.headers  # the original is unchanged


def test_copy_is_independent():
    uri = parse_sip_uri("sip:alice@example.com;transport=tcp")
    other = uri.copy()
    other.params.set("transport", "tls")
    other.user = "bob"
    assert str(uri) == "sip:alice@example.com;transport=tcp"


def test_target_uri_takes_what_users_type():
    from sipd.sip.uri import target_uri
    assert str(target_uri(" bob@example.com ")) == "sip:bob@example.com"
    assert str(target_uri("sips:bob@example.com:5061")) == "sips:bob@example.com:5061"
    assert target_uri("sip:bob@example.com?Subject=hi").headers == []
    for bad in ("tel:+15551234", "sip:", "bob@exa mple.com"):
        with pytest.raises(ValueError, match="is not a"):
            target_uri(bad)
