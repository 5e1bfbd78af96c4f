"""Request skeletons, responses, Via stamping, CANCEL, next hop."""

from __future__ import annotations

from sipd.sip.builder import (
    MAGIC_COOKIE,
    build_cancel,
    build_request,
    build_response,
    new_branch,
    new_call_id,
    new_tag,
    new_via,
    next_hop,
    reason_phrase,
    response_destination,
    stamp_received,
)
from sipd.sip.header_values import parse_address
from sipd.sip.message import parse_datagram
from sipd.sip.uri import parse_uri

from .helpers import INVITE, request, response


def register_request():
    aor = parse_address("<sip:alice@example.com>")
    return build_request(
        "REGISTER", parse_uri("sip:example.com"), from_=aor, to=aor,
        via=new_via("udp", "192.0.2.1", 5070), contact=parse_address("<sip:alice@192.0.2.1:5070>"),
        headers=[("Expires", "600")], cseq=7)


def test_identifiers_are_fresh_and_well_formed():
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100 and all(b.startswith(MAGIC_COOKIE) for b in branches)
    assert new_tag() != new_tag() and new_call_id("host.example").endswith("@host.example")


def test_register_skeleton_round_trips():
    req = register_request()
    parsed = parse_datagram(req.to_bytes())
    assert parsed.method == "REGISTER" and str(parsed.uri) == "sip:example.com"
    assert parsed.top_via.transport == "UDP" and parsed.top_via.wants_rport
    assert parsed.top_via.branch.startswith(MAGIC_COOKIE)
    assert parsed.from_.tag and parsed.to.tag is None and parsed.max_forwards == 70
    assert (parsed.cseq.number, parsed.cseq.method) == (7, "REGISTER")
    assert parsed.expires == 600 and str(parsed.contacts[0].uri) == "sip:alice@192.0.2.1:5070"
    assert parsed.headers.names() == ["Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq",
                                      "Contact", "Expires", "Content-Length"]


def test_message_with_body():
    aor = parse_address('"Alice" <sip:alice@example.com>')
    msg = build_request("MESSAGE", parse_uri("sip:bob@example.com"), from_=aor,
                        to=parse_address("<sip:bob@example.com>"), body="héllo".encode(),
                        content_type="text/plain;charset=utf-8")
    parsed = parse_datagram(msg.to_bytes())
    assert parsed.body.decode() == "héllo" and parsed.content_type.mime == "text/plain"
    assert parsed.from_.display_name == "Alice" and aor.tag is None  # caller's copy untouched


def test_response_copies_the_request_identity_and_adds_a_to_tag():
    req = request(INVITE + "Record-Route: <sip:p1.example.com;lr>\n"
                  "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\n")
    ok = build_response(req, 200, headers=[("Contact", "<sip:bob@192.0.2.4>")])
    assert (ok.status, ok.reason) == (200, "OK")
    assert ok.headers.get_all("Via") == req.headers.get_all("Via")
    assert ok.headers.get_all("Record-Route") == req.headers.get_all("Record-Route")
    assert ok.from_.tag == req.from_.tag and ok.to.tag and ok.call_id == req.call_id
    assert str(ok.cseq) == str(req.cseq)
    trying = build_response(req, 100)
    assert trying.to.tag is None and "Record-Route" not in trying.headers
    assert build_response(req, 180, to_tag="fixed").to.tag == "fixed"
    assert "Record-Route" not in build_response(req, 486).headers
    assert reason_phrase(487) == "Request Terminated" and reason_phrase(299) == "OK"


def test_existing_to_tag_is_kept():
    req = request(INVITE.replace("To: Bob <sip:bob@biloxi.example.com>",
                                 "To: Bob <sip:bob@biloxi.example.com>;tag=already"))
    assert build_response(req, 200, to_tag="other").to.tag == "already"


def test_stamp_received_and_rport():
    req = request(INVITE.replace("pc33.atlanta.example.com:5060;branch",
                                 "192.0.2.1:5060;rport;branch"))
    stamp_received(req, "198.51.100.7", 40000)
    via = req.top_via
    assert via.received == "198.51.100.7" and via.rport == 40000
    assert response_destination(build_response(req, 200)) == ("198.51.100.7", 40000, "UDP")
    # Same address, no rport: nothing to add.
    same = request(INVITE.replace("pc33.atlanta.example.com:5060", "192.0.2.1:5060"))
    stamp_received(same, "192.0.2.1", 5060)
    assert same.top_via.received is None
    # A host name always gets `received`.
    named = request(INVITE)
    stamp_received(named, "2001:db8::7", 5060)
    assert named.top_via.received == "2001:db8::7"
    assert parse_datagram(named.to_bytes()).top_via.received == "2001:db8::7"


def test_stamp_received_on_a_multi_value_via_line():
    req = request(INVITE.replace(
        "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds",
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, "
        "SIP/2.0/UDP b.example.com;branch=z9hG4bK2"))
    stamp_received(req, "192.0.2.5", 5060)
    assert [v.host for v in req.vias] == ["a.example.com", "b.example.com"]
    assert req.vias[0].received == "192.0.2.5" and req.vias[1].received is None


def test_response_destination_without_rport_uses_sent_by_port():
    ok = response("SIP/2.0 200 OK\nVia: SIP/2.0/TCP h.example.com:5070;branch=z9hG4bKa;"
                  "received=192.0.2.3\nCall-ID: x\nCSeq: 1 OPTIONS\n"
                  "From: <sip:a@b>;tag=1\nTo: <sip:a@b>;tag=2\n")
    assert response_destination(ok) == ("192.0.2.3", 5070, "TCP")


def test_cancel_mirrors_the_invite():
    invite = request(INVITE + "Route: <sip:p1.example.com;lr>\n", b"v=0\r\n")
    cancel = build_cancel(invite)
    assert cancel.method == "CANCEL" and str(cancel.uri) == str(invite.uri)
    assert cancel.headers.get_all("Via") == invite.headers.get_all("Via")
    assert cancel.headers.get_all("Route") == invite.headers.get_all("Route")
    assert str(cancel.cseq) == "314159 CANCEL" and cancel.body == b""
    assert cancel.to.tag is None and cancel.from_.tag == invite.from_.tag


def test_next_hop():
    assert str(next_hop(register_request())) == "sip:example.com"
    loose = request(INVITE + "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n")
    assert str(next_hop(loose)) == "sip:p1.example.com;lr"
    strict = request(INVITE.replace("INVITE sip:bob@biloxi.example.com",
                                    "INVITE sip:strict.example.com")
                     + "Route: <sip:bob@biloxi.example.com>\n")
    assert str(next_hop(strict)) == "sip:strict.example.com"
