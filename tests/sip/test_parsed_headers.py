"""The core header values a message keeps parsed (sipd/sip/parsed_headers.py): reading a
message parses them once, the accessors reuse that, and no way of changing a message leaves
an accessor answering with what the header said before."""

from __future__ import annotations

import pytest

from bench.sip_corpus import CORPUS
from sipd.sip import parsed_headers
from sipd.sip.auth import Credentials, CredentialStore, DigestAuthenticator
from sipd.sip.builder import build_response, stamp_received
from sipd.sip.dialog import Dialog
from sipd.sip.errors import SipParseError
from sipd.sip.header_values import parse_address, parse_via
from sipd.sip.headers import LIST_HEADERS, Headers
from sipd.sip.message import Request, parse_datagram
from sipd.sip.uri import parse_uri

from .helpers import INVITE, RFC4475, request, sip

ROUTED = INVITE + ("Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n"
                   "Record-Route: <sip:rr1.example.com;lr>\n"
                   "Record-Route: <sip:rr2.example.com;lr>\nExpires: 120\n")


def counting(monkeypatch, name: str) -> list[str]:
    """Counts the parses of header `name` from now on (the real parser still runs)."""
    seen: list[str] = []
    parse = parsed_headers.PARSERS[name]

    def counted(value: str) -> object:
        seen.append(value)
        return parse(value)
    monkeypatch.setitem(parsed_headers.PARSERS, name, counted)
    return seen


# --- parsed once -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Route",
                                  "Record-Route", "Max-Forwards", "Expires"])
def test_accessors_reuse_what_reading_the_message_parsed(monkeypatch, name):
    seen = counting(monkeypatch, name)
    message = request(ROUTED)
    # Reading checked every value; it parsed those it could not tell well-formed by their
    # plain shape (parsed_headers.PLAIN), the others are parsed when first asked for.
    parsed_once = None
    for _ in range(3):
        message.vias, message.top_via, message.from_, message.to, message.call_id  # noqa: B018 - parses
        message.cseq, message.contacts, message.routes, message.record_routes  # noqa: B018 - parses
        message.max_forwards, message.expires  # noqa: B018 - parses
        if parsed_once is None:
            parsed_once = len(seen)
            assert 1 <= parsed_once <= len(message.headers.values(name))
    assert len(seen) == parsed_once


def test_compact_and_oddly_cased_names_are_kept_too(monkeypatch):
    seen = counting(monkeypatch, "Via")
    message = request("""
OPTIONS sip:bob@biloxi.example.com SIP/2.0
v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKcompact
VIA: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKupper
f: <sip:alice@atlanta.example.com>;tag=1
t: <sip:bob@biloxi.example.com>
i: compact@atlanta
CSeq: 1 OPTIONS
m: <sip:alice@pc33.atlanta.example.com>
""")
    assert [v.host for v in message.vias] == ["pc33.atlanta.example.com", "proxy.example.com"]
    assert message.from_.tag == "1" and message.call_id == "compact@atlanta"
    assert message.contacts[0].uri.host == "pc33.atlanta.example.com"
    assert len(seen) == 2


def test_a_locally_built_message_parses_on_first_use_only(monkeypatch):
    seen = counting(monkeypatch, "To")
    message = Request("OPTIONS", parse_uri("sip:bob@example.com"),
                      Headers([("To", "<sip:bob@example.com>")]))
    assert seen == []
    assert message.to.uri.user == "bob" and message.to.uri.user == "bob"
    assert seen == ["<sip:bob@example.com>"]


# --- what the accessors give is what parsing the text gives ------------------------------------

def _messages():
    yield from CORPUS.items()
    for path in sorted(RFC4475.glob("*.dat")):
        yield path.stem, path.read_bytes()


@pytest.mark.parametrize("name,data", list(_messages()), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_accessors_equal_a_fresh_parse(name, data):
    try:
        message = parse_datagram(data)
    except SipParseError:
        return  # malformed: nothing was kept (the error itself is tests/sip/test_rfc4475.py's)
    headers = message.headers
    for header in parsed_headers.PARSERS:
        values = message._parsed.of(header, headers.get_all(header)).values
        assert values == headers.values(header), header  # split as Headers.values() does
    assert [str(v) for v in message.vias] == [str(parse_via(v)) for v in headers.values("Via")]
    for header, got in (("From", message.from_), ("To", message.to)):
        value = headers.get(header)
        assert str(got) == (str(parse_address(value, header)) if value is not None else "None")
    assert [str(a) for a in message.contacts] == [
        str(parse_address(v, "Contact")) for v in headers.values("Contact") if v != "*"]
    assert [str(a) for a in message.record_routes] == [
        str(parse_address(v)) for v in headers.values("Record-Route")]


def test_the_kept_split_matches_every_list_header():
    for name in parsed_headers.PARSERS:
        is_list = name.lower() in LIST_HEADERS
        assert (name in parsed_headers._LISTS) == is_list


# --- changes to the message ---------------------------------------------------------------------

def test_every_way_of_changing_a_header_is_seen():
    message = request(ROUTED)
    assert message.to.tag is None and message.cseq.number == 314159
    message.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=set")
    assert message.to.tag == "set"
    message.headers.set("CSeq", "314160 INVITE")
    assert message.cseq.number == 314160
    message.headers.add_first("Via", "SIP/2.0/TCP first.example.com;branch=z9hG4bKfirst")
    assert message.top_via.host == "first.example.com" and len(message.vias) == 2
    message.headers.replace_first_value("Via", "SIP/2.0/UDP replaced.example.com;branch=z9hG4bKr")
    assert [v.host for v in message.vias] == ["replaced.example.com", "pc33.atlanta.example.com"]
    message.headers.remove_first_value("Route")
    assert [r.uri.host for r in message.routes] == ["p2.example.com"]
    message.headers.add("Route", "<sip:p3.example.com;lr>")
    assert [r.uri.host for r in message.routes] == ["p2.example.com", "p3.example.com"]
    message.headers.remove("Record-Route")
    assert message.record_routes == []
    message.headers.remove("Expires")
    assert message.expires is None
    message.headers.add("Expires", "30")
    assert message.expires == 30
    message.headers = Headers([("From", "<sip:carol@example.com>;tag=new")])
    assert message.from_.uri.user == "carol" and message.to is None and message.vias == []
    message.headers.set("Contact", "*")
    assert message.contacts == [] and message.contact_is_star


def test_a_header_set_back_to_earlier_text_reads_that_text():
    message = request(INVITE)
    original = str(message.from_)
    message.headers.set("From", "<sip:eve@example.com>;tag=x")
    assert message.from_.uri.user == "eve"
    message.headers.set("From", original)
    assert str(message.from_) == original and message.from_.uri.user == "alice"


def test_editing_what_an_accessor_returned_changes_nothing():
    message = request(ROUTED)
    wire = message.to_bytes()
    to = message.to
    to.tag = "mine"
    to.uri.user = "mallory"
    via = message.top_via
    via.params.set("branch", "z9hG4bKother")
    message.vias[0].params.set("received", "192.0.2.9")
    message.contacts[0].params.set("expires", "5")
    message.routes[0].uri.host = "elsewhere.example.com"
    message.record_routes.clear()
    message.from_.params.remove("tag")
    assert message.to.tag is None and message.to.uri.user == "bob"
    assert message.top_via.branch == "z9hG4bK776asdhds" and message.top_via.received is None
    assert message.contacts[0].expires is None
    assert message.routes[0].uri.host == "p1.example.com" and len(message.record_routes) == 2
    assert message.from_.tag == "1928301774"
    assert message.to_bytes() == wire
    assert message.to is not message.to and message.top_via is not message.top_via


def test_a_copy_and_its_original_change_apart():
    original = request(INVITE)
    copy = original.copy()
    copy.headers.set("To", "<sip:bob@biloxi.example.com>;tag=copy")
    copy.headers.replace_first_value("Via", "SIP/2.0/UDP copy.example.com;branch=z9hG4bKc")
    assert original.to.tag is None and original.top_via.host == "pc33.atlanta.example.com"
    assert copy.to.tag == "copy" and copy.top_via.host == "copy.example.com"
    original.headers.set("CSeq", "1 INVITE")
    assert copy.cseq.number == 314159 and original.cseq.number == 1


def test_a_malformed_value_raises_every_time_until_fixed():
    message = Request("OPTIONS", parse_uri("sip:bob@example.com"),
                      Headers([("To", "<sip:bob@example.com"),
                               ("Via", "SIP/2.0/UDP ok.example.com"), ("Via", "not a via")]))
    for _ in range(2):
        with pytest.raises(SipParseError, match="To"):
            message.to  # noqa: B018 - parses
        with pytest.raises(SipParseError, match="Via"):
            message.vias  # noqa: B018 - parses
    assert message.top_via.host == "ok.example.com"  # only the first Via is read for it
    message.headers.set("To", "<sip:bob@example.com>")
    message.headers.remove("Via")
    assert message.to.uri.user == "bob" and message.vias == []


def test_the_first_fault_found_is_named_as_before():
    # A bad From and a bad Via: the Via is checked first.
    with pytest.raises(SipParseError) as caught:
        parse_datagram(sip(INVITE.replace("pc33.atlanta.example.com:5060;", "pc33 bad:x;")
                           .replace("From: Alice <sip:", "From: Alice <sip")))
    assert caught.value.reason == "Malformed Via"
    # A first Contact with a bad expires, a second one malformed: the first is named.
    with pytest.raises(SipParseError) as caught:
        parse_datagram(sip(INVITE.replace(
            "Contact: <sip:alice@pc33.atlanta.example.com>",
            "Contact: <sip:a@x>;expires=soon, <sip:b@y")))
    assert "expires" in caught.value.detail
    with pytest.raises(SipParseError, match="'\\*' must be the only contact"):
        parse_datagram(sip(INVITE.replace("Contact: <sip:alice@pc33.atlanta.example.com>",
                                          "Contact: *, <sip:b@y>")))
    with pytest.raises(SipParseError, match="empty Via"):
        parse_datagram(sip(INVITE + "Via:\n"))


def test_what_is_kept_does_not_grow_with_changes():
    message = request(INVITE)
    for number in range(1, 500):
        message.headers.set("CSeq", f"{number} INVITE")
        assert message.cseq.number == number
    assert len(message._parsed._by_name) <= len(parsed_headers.PARSERS)


# --- the places in the core that change messages ----------------------------------------------

def test_stamp_received_is_seen_by_top_via():
    message = request(INVITE.replace(";branch", ";rport;branch"))
    assert message.top_via.rport is None
    stamp_received(message, "192.0.2.7", 40000)
    assert message.top_via.received == "192.0.2.7" and message.top_via.rport == 40000
    assert message.vias[0].received == "192.0.2.7"


def test_a_digest_retry_has_its_own_cseq_and_branch_and_the_request_keeps_its_own():
    req = request("""
REGISTER sip:registrar.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKreg1;rport
From: <sip:alice@example.com>;tag=a1
To: <sip:alice@example.com>
Call-ID: reg-1@192.0.2.1
CSeq: 1 REGISTER
""")
    assert req.cseq.number == 1 and req.top_via.branch == "z9hG4bKreg1"  # both kept now
    challenge = build_response(req, 401, to_tag="srv")
    challenge.headers.add("WWW-Authenticate", 'Digest realm="example.com", nonce="n"')
    result = DigestAuthenticator(CredentialStore([Credentials("alice", "pw")])).authenticate(
        req, challenge)
    retry = result.request
    assert retry.cseq.number == 2 and retry.top_via.branch != "z9hG4bKreg1"
    assert req.cseq.number == 1 and req.top_via.branch == "z9hG4bKreg1"


def test_a_response_tagged_by_build_response_and_a_dialog_from_it():
    invite = request(INVITE)
    assert invite.to.tag is None
    ok = build_response(invite, 200, to_tag="uas-tag")
    ok.headers.add("Contact", "<sip:bob@192.0.2.4>")
    assert ok.to.tag == "uas-tag" and invite.to.tag is None
    dialog = Dialog.create_as_uas(invite, ok)
    dialog.local_uri.display_name = "Robert"  # the dialog's own copy
    dialog.remote_uri.uri.user = "alicia"
    assert ok.to.display_name == "Bob" and invite.from_.uri.user == "alice"
    bye = dialog.create_request("BYE")
    assert bye.cseq.method == "BYE" and bye.call_id == invite.call_id
    assert bye.to.tag == "1928301774" and bye.to.uri.user == "alicia"
    assert bye.from_.tag == "uas-tag" and bye.from_.display_name == "Robert"
