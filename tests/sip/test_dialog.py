"""Dialog creation on both sides, in-dialog requests, routing, target refresh, 2xx resends."""

from __future__ import annotations

import pytest

from sipd.sip.builder import build_response, new_via
from sipd.sip.dialog import (
    Dialog,
    DialogId,
    DialogState,
    SuccessRetransmitter,
    dialog_id_of_request,
    dialog_id_of_response,
)
from sipd.sip.headers import Headers
from sipd.sip.message import parse_datagram

from .helpers import INVITE, request

RR = ("Record-Route: <sip:p2.example.com;lr>\n"
      "Record-Route: <sip:p1.example.com;lr>\n")


def uac_pair(record_route: str = RR, status: int = 200):
    invite = request(INVITE)
    response = build_response(invite, status, to_tag="bobtag")
    for line in record_route.strip().splitlines():
        name, value = line.split(": ", 1)
        response.headers.add(name, value)
    response.headers.add("Contact", "<sip:bob@192.0.2.4:5062>")
    return invite, parse_datagram(response.to_bytes())


def test_uac_dialog_from_2xx():
    invite, ok = uac_pair()
    dialog = Dialog.create_as_uac(invite, ok)
    assert dialog.state is DialogState.CONFIRMED and dialog.is_uac
    assert dialog.id == DialogId("a84b4c76e66710@pc33.atlanta.example.com", "1928301774", "bobtag")
    assert dialog.id == dialog_id_of_response(ok)
    assert str(dialog.remote_target) == "sip:bob@192.0.2.4:5062"
    # Record-Route reversed: the UAC's first hop is the proxy nearest to it.
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example.com;lr",
                                                      "sip:p2.example.com;lr"]
    assert dialog.local_seq == 314159 and dialog.remote_seq is None
    assert dialog.local_uri.tag is None and dialog.remote_uri.tag is None


def test_uac_early_dialog_from_1xx_with_tag_then_confirmed_by_2xx():
    invite, ringing = uac_pair(record_route="Record-Route: <sip:old.example.com;lr>", status=180)
    dialog = Dialog.create_as_uac(invite, ringing)
    assert dialog.state is DialogState.EARLY
    _, ok = uac_pair()
    dialog.receive_response(invite, ok)
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri.host) for r in dialog.route_set] == ["p1.example.com", "p2.example.com"]


def test_early_dialog_ends_with_a_failure_of_the_invite():
    invite, ringing = uac_pair(status=183)
    dialog = Dialog.create_as_uac(invite, ringing)
    dialog.receive_response(invite, build_response(invite, 486, to_tag="bobtag"))
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(ValueError, match="terminated"):
        dialog.create_request("BYE")


def test_no_dialog_without_to_tag_or_from_a_final_failure():
    invite = request(INVITE)
    with pytest.raises(ValueError, match="tag"):
        Dialog.create_as_uac(invite, build_response(invite, 100))
    with pytest.raises(ValueError, match="does not create"):
        Dialog.create_as_uac(invite, build_response(invite, 404, to_tag="x"))


def test_in_dialog_request_with_loose_routing():
    invite, ok = uac_pair()
    dialog = Dialog.create_as_uac(invite, ok)
    bye = dialog.create_request("BYE", via=new_via("UDP", "192.0.2.1", 5060))
    assert str(bye.uri) == "sip:bob@192.0.2.4:5062"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.from_.tag == "1928301774" and bye.to.tag == "bobtag"
    assert bye.call_id == invite.call_id and (bye.cseq.number, bye.cseq.method) == (314160, "BYE")
    assert bye.top_via.branch.startswith("z9hG4bK") and "Contact" not in bye.headers
    # Target refresh requests carry our Contact.
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
    assert reinvite.cseq.number == 314161
    assert reinvite.headers.get("Contact") == "<sip:alice@pc33.atlanta.example.com>"
    assert parse_datagram(reinvite.to_bytes()).body == b"v=0\r\n"


def test_strict_router_later_in_the_route_set_does_not_change_the_request_uri():
    invite, ok = uac_pair(record_route="Record-Route: <sip:strict.example.com;method=INVITE>\n"
                                       "Record-Route: <sip:p1.example.com;lr>\n")
    dialog = Dialog.create_as_uac(invite, ok)
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:bob@192.0.2.4:5062"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>",
                                            "<sip:strict.example.com;method=INVITE>"]


def test_strict_router_first_in_route_set():
    # The strict router gets the Request-URI (minus `method`); the remote target travels
    # as the last Route (RFC 3261 §12.2.1.1).
    invite, ok = uac_pair(record_route="Record-Route: <sip:p1.example.com;lr>\n"
                                       "Record-Route: <sip:strict.example.com;method=INVITE>\n")
    dialog = Dialog.create_as_uac(invite, ok)
    assert str(dialog.route_set[0].uri) == "sip:strict.example.com;method=INVITE"
    bye = dialog.create_request("BYE")
    assert str(bye.uri) == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:bob@192.0.2.4:5062>"]


def test_ack_for_2xx_uses_the_invite_cseq_and_a_new_branch():
    invite, ok = uac_pair()
    dialog = Dialog.create_as_uac(invite, ok)
    via = new_via("UDP", "192.0.2.1", 5060)
    ack = dialog.create_ack(invite.cseq.number, via=via)
    assert (ack.cseq.number, ack.cseq.method) == (314159, "ACK")
    assert ack.top_via.branch != invite.top_via.branch and dialog.last_ack is ack
    assert dialog.local_seq == 314159  # ACK takes no new number
    with pytest.raises(ValueError, match="ACK"):
        dialog.create_request("ACK")


def test_uas_dialog_and_remote_cseq_ordering():
    invite = request(INVITE + RR)
    ok = build_response(invite, 200, to_tag="mytag",
                        headers=[("Contact", "<sip:bob@192.0.2.4>")])
    dialog = Dialog.create_as_uas(invite, ok)
    assert not dialog.is_uac and dialog.state is DialogState.CONFIRMED
    assert dialog.id == DialogId(invite.call_id, "mytag", "1928301774")
    # UAS keeps Record-Route in order; its remote target is the caller's Contact.
    assert [r.uri.host for r in dialog.route_set] == ["p2.example.com", "p1.example.com"]
    assert str(dialog.remote_target) == "sip:alice@pc33.atlanta.example.com"
    assert dialog.remote_seq == 314159 and dialog.local_seq is None
    assert str(dialog.local_contact.uri) == "sip:bob@192.0.2.4"

    def in_dialog(method: str, number: int, contact: str | None = None):
        text = (INVITE.replace("INVITE sip:bob@biloxi.example.com", f"{method} sip:bob@192.0.2.4")
                .replace("314159 INVITE", f"{number} {method}")
                .replace("To: Bob <sip:bob@biloxi.example.com>",
                         "To: Bob <sip:bob@biloxi.example.com>;tag=mytag"))
        if contact:
            text = text.replace("<sip:alice@pc33.atlanta.example.com>", contact)
        return request(text)

    incoming = in_dialog("INFO", 314160)
    assert dialog_id_of_request(incoming) == dialog.id
    assert dialog.receive_request(incoming) is None and dialog.remote_seq == 314160
    assert dialog.receive_request(in_dialog("INFO", 314150)) == (500, "CSeq Out of Order")
    # A re-INVITE refreshes the remote target.
    assert dialog.receive_request(in_dialog("INVITE", 314170, "<sip:alice@198.51.100.7>")) is None
    assert str(dialog.remote_target) == "sip:alice@198.51.100.7"
    # The UAS's own first request picks a CSeq of its own.
    bye = dialog.create_request("BYE")
    assert 0 < bye.cseq.number < 2**31 and bye.to.tag == "1928301774" and bye.from_.tag == "mytag"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]


def test_481_or_408_to_an_in_dialog_request_ends_the_dialog():
    invite, ok = uac_pair()
    dialog = Dialog.create_as_uac(invite, ok)
    info = dialog.create_request("INFO")
    dialog.receive_response(info, build_response(info, 481))
    assert dialog.state is DialogState.TERMINATED


def test_2xx_to_a_target_refresh_updates_the_remote_target():
    invite, ok = uac_pair()
    dialog = Dialog.create_as_uac(invite, ok)
    update = dialog.create_request("UPDATE")
    response = build_response(update, 200, headers=[("Contact", "<sip:bob@203.0.113.5>")])
    dialog.receive_response(update, response)
    assert str(dialog.remote_target) == "sip:bob@203.0.113.5"


def test_success_retransmitter_over_udp():
    ok = build_response(request(INVITE), 200, to_tag="t")
    sender = SuccessRetransmitter(ok, reliable=False, now=0.0)
    fired = []
    while (deadline := sender.next_deadline()) is not None:
        fired.append((deadline, sender.handle_timeout(deadline)))
    assert fired == [(0.5, "retransmit"), (1.5, "retransmit"), (3.5, "retransmit"),
                     (7.5, "retransmit"), (11.5, "retransmit"), (15.5, "retransmit"),
                     (19.5, "retransmit"), (23.5, "retransmit"), (27.5, "retransmit"),
                     (31.5, "retransmit"), (32.0, "timed_out")]


def test_success_retransmitter_stops_on_ack_and_never_resends_over_tcp():
    ok = build_response(request(INVITE), 200, to_tag="t")
    sender = SuccessRetransmitter(ok, reliable=True, now=0.0)
    assert sender.next_deadline() == 32.0
    sender.ack_received()
    assert sender.next_deadline() is None and sender.acknowledged
    assert sender.handle_timeout(100.0) is None


def test_dialog_headers_are_fresh_objects():
    invite, ok = uac_pair()
    dialog = Dialog.create_as_uac(invite, ok)
    first = dialog.create_request("INFO")
    first.headers.set("To", "<sip:tampered@x>")
    assert dialog.create_request("INFO").to.uri.user == "bob"
    assert isinstance(first.headers, Headers)
