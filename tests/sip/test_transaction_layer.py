"""Matching messages to transactions, CANCEL, ACK and RFC 2543 fallback."""

from __future__ import annotations

from sipd.sip.builder import build_response
from sipd.sip.message import parse_datagram
from sipd.sip.transaction import (
    CancelReceived,
    InviteClientTransaction,
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    State,
    Transmit,
)
from sipd.sip.transaction_layer import TransactionLayer

from .helpers import INVITE, OPTIONS, request, torture

PEER = ("udp", "192.0.2.9", 5060)


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def ack_for(invite_text: str, branch: str | None = None):
    text = invite_text.replace("INVITE sip", "ACK sip").replace(" INVITE\n", " ACK\n")
    if branch is not None:
        text = text.replace("branch=z9hG4bK776asdhds", f"branch={branch}")
    return request(text)


def cancel_for(invite_text: str):
    return request(invite_text.replace("INVITE sip", "CANCEL sip")
                   .replace(" INVITE\n", " CANCEL\n"))


# --- client side ---------------------------------------------------------------------------

def test_responses_match_client_transactions_by_branch_and_method():
    layer = TransactionLayer()
    invite = request(INVITE)
    transaction, events = layer.send_request(invite, destination=PEER, reliable=False, now=0.0)
    assert isinstance(transaction, InviteClientTransaction) and kinds(events) == ["Transmit"]
    events = layer.receive(build_response(invite, 180, to_tag="a"), source=PEER,
                           reliable=False, now=0.1)
    assert kinds(events) == ["ResponseReceived"] and events[0].transaction is transaction
    # Same branch, other method (a 200 to a CANCEL): not this transaction's.
    cancel_ok = build_response(cancel_for(INVITE), 200, to_tag="a")
    assert layer.receive(cancel_ok, source=PEER, reliable=False, now=0.2)[0].transaction is None
    # Unknown branch: no transaction (a UA may need it to re-ACK a late 2xx).
    stray = parse_datagram(build_response(invite, 200).to_bytes().replace(
        b"z9hG4bK776asdhds", b"z9hG4bKother"))
    [event] = layer.receive(stray, source=PEER, reliable=False, now=0.3)
    assert isinstance(event, ResponseReceived) and event.transaction is None


def test_terminated_transactions_are_forgotten():
    layer = TransactionLayer()
    options = request(OPTIONS)
    transaction, _ = layer.send_request(options, destination=PEER, reliable=True, now=0.0)
    assert layer.transactions == [transaction] and layer.next_deadline() == 32.0
    events = layer.receive(build_response(options, 200), source=PEER, reliable=True, now=1.0)
    assert kinds(events) == ["ResponseReceived", "TransactionTerminated"]
    assert layer.transactions == [] and layer.next_deadline() is None
    assert layer.find_client_transaction(options) is None


def test_layer_timeouts_across_transactions():
    layer = TransactionLayer()
    layer.send_request(request(OPTIONS), destination=PEER, reliable=False, now=0.0)
    layer.send_request(request(INVITE), destination=PEER, reliable=False, now=0.25)
    assert layer.next_deadline() == 0.5
    assert kinds(layer.handle_timeout(0.5)) == ["Transmit"]  # the OPTIONS, timer E
    assert layer.next_deadline() == 0.75
    assert kinds(layer.handle_timeout(0.75)) == ["Transmit"]  # the INVITE, timer A
    events = layer.handle_timeout(40.0)
    assert kinds(events).count("TransactionTimedOut") == 2 and layer.transactions == []


def test_ack_is_sent_statelessly():
    layer = TransactionLayer()
    ack = ack_for(INVITE, branch="z9hG4bKack1")
    [event] = layer.send_stateless(ack, destination=PEER)
    assert isinstance(event, Transmit) and event.transaction is None
    assert event.data == ack.to_bytes()


def test_cancel_waits_for_a_provisional_response():
    layer = TransactionLayer()
    invite = request(INVITE)
    transaction, _ = layer.send_request(invite, destination=PEER, reliable=False, now=0.0)
    assert layer.cancel(transaction, now=0.1) == []  # Calling: nothing may be sent yet
    events = layer.receive(build_response(invite, 180, to_tag="x"), source=PEER,
                           reliable=False, now=0.2)
    assert kinds(events) == ["ResponseReceived", "Transmit"]
    cancel = events[1].message
    assert cancel.method == "CANCEL" and cancel.cseq.method == "CANCEL"
    assert cancel.top_via.branch == invite.top_via.branch and cancel.to.tag is None
    assert cancel.cseq.number == invite.cseq.number and events[1].destination == PEER
    # Both transactions now live: the CANCEL's own and the INVITE's.
    assert len(layer.transactions) == 2
    events = layer.receive(build_response(cancel, 200, to_tag="x"), source=PEER,
                           reliable=False, now=0.3)
    assert events[0].transaction.method == "CANCEL"
    events = layer.receive(build_response(invite, 487, to_tag="x"), source=PEER,
                           reliable=False, now=0.4)
    assert kinds(events) == ["Transmit", "ResponseReceived"]  # ACK for the 487
    assert events[0].message.method == "ACK"


def test_cancel_after_final_response_does_nothing():
    layer = TransactionLayer()
    invite = request(INVITE)
    transaction, _ = layer.send_request(invite, destination=PEER, reliable=False, now=0.0)
    layer.receive(build_response(invite, 180, to_tag="x"), source=PEER, reliable=False, now=0.1)
    assert kinds(layer.cancel(transaction, now=0.2)) == ["Transmit"]
    layer.receive(build_response(invite, 200, to_tag="x"), source=PEER, reliable=False, now=0.3)
    assert layer.cancel(transaction, now=0.4) == []


# --- server side ---------------------------------------------------------------------------

def test_new_invite_creates_a_server_transaction_and_sends_100_after_200_ms():
    layer = TransactionLayer()
    invite = request(INVITE)
    events = layer.receive(invite, source=PEER, reliable=False, now=0.0)
    assert kinds(events) == ["RequestReceived"]  # the TU may answer first (RFC 3261 §17.2.1)
    transaction = events[0].transaction
    assert events[0].source == PEER and transaction.state is State.PROCEEDING
    assert layer.next_deadline() == 0.2
    assert layer.handle_timeout(0.1) == []
    [sent] = layer.handle_timeout(0.2)
    trying = sent.message
    assert trying.status == 100 and trying.to.tag is None and sent.destination == PEER
    # A retransmission is absorbed: the 100 goes out again, the TU hears nothing.
    again = layer.receive(request(INVITE), source=PEER, reliable=False, now=0.5)
    assert kinds(again) == ["Transmit"] and again[0].message.status == 100
    assert layer.find_server_transaction(invite) is transaction


def test_a_tu_that_answers_within_200_ms_sends_no_100():
    layer = TransactionLayer()
    [received] = layer.receive(request(INVITE), source=PEER, reliable=False, now=0.0)
    sent = layer.send_response(received.transaction,
                               build_response(received.request, 200, to_tag="t"), 0.05)
    assert [event.message.status for event in sent] == [200]
    later = layer.handle_timeout(0.3) + layer.handle_timeout(40.0)
    assert 100 not in [event.message.status for event in later if kinds([event]) == ["Transmit"]]


def test_a_retransmitted_invite_gets_its_100_at_once():
    layer = TransactionLayer()
    layer.receive(request(INVITE), source=PEER, reliable=False, now=0.0)
    [trying] = layer.receive(request(INVITE), source=PEER, reliable=False, now=0.1)
    assert trying.message.status == 100
    assert layer.handle_timeout(0.25) == []  # once


def test_trying_delay_zero_answers_at_once():
    layer = TransactionLayer(trying_delay=0)
    events = layer.receive(request(INVITE), source=PEER, reliable=False, now=0.0)
    assert kinds(events) == ["RequestReceived", "Transmit"] and events[1].message.status == 100


def test_send_trying_can_be_turned_off():
    layer = TransactionLayer(send_trying=False)
    assert kinds(layer.receive(request(INVITE), source=PEER, reliable=False, now=0.0)) == [
        "RequestReceived"]


def test_ack_for_non_2xx_matches_the_invite_transaction():
    layer = TransactionLayer()
    [received] = layer.receive(request(INVITE), source=PEER, reliable=False, now=0.0)
    layer.send_response(received.transaction,
                        build_response(received.request, 486, to_tag="t"), 1.0)
    events = layer.receive(ack_for(INVITE), source=PEER, reliable=False, now=1.1)
    assert events == [] and received.transaction.state is State.CONFIRMED


def test_ack_for_2xx_has_no_transaction():
    layer = TransactionLayer()
    [received] = layer.receive(request(INVITE), source=PEER, reliable=False, now=0.0)
    layer.send_response(received.transaction,
                        build_response(received.request, 200, to_tag="t"), 1.0)
    [event] = layer.receive(ack_for(INVITE, branch="z9hG4bKnewack"), source=PEER,
                            reliable=False, now=1.1)
    assert isinstance(event, RequestReceived) and event.transaction is None
    assert event.request.method == "ACK"


def test_cancel_is_reported_with_the_invite_it_cancels():
    layer = TransactionLayer()
    [received] = layer.receive(request(INVITE), source=PEER, reliable=False, now=0.0)
    [event] = layer.receive(cancel_for(INVITE), source=PEER, reliable=False, now=0.5)
    assert isinstance(event, CancelReceived)
    assert event.invite_transaction is received.transaction
    assert event.transaction is not received.transaction and event.transaction.method == "CANCEL"
    # A CANCEL for nothing known: the TU answers 481.
    orphan = cancel_for(INVITE.replace("z9hG4bK776asdhds", "z9hG4bKunknown"))
    [event] = layer.receive(orphan, source=PEER, reliable=False, now=0.6)
    assert isinstance(event, CancelReceived) and event.invite_transaction is None


def test_same_branch_from_another_sent_by_is_another_transaction():
    layer = TransactionLayer()
    first = layer.receive(request(OPTIONS), source=PEER, reliable=False, now=0.0)
    other = request(OPTIONS.replace("pc33.atlanta.example.com:5060;", "pc34.atlanta.example.com;"))
    second = layer.receive(other, source=PEER, reliable=False, now=0.1)
    assert kinds(first) == kinds(second) == ["RequestReceived"]
    assert first[0].transaction is not second[0].transaction


def test_rfc2543_requests_without_branch_are_matched_by_the_old_rules():
    text = INVITE.replace(";branch=z9hG4bK776asdhds", "")
    layer = TransactionLayer()
    [received] = layer.receive(request(text), source=PEER, reliable=False, now=0.0)
    assert received.transaction.key[0] == "2543"
    assert kinds(layer.receive(request(text), source=PEER, reliable=False, now=0.1)) == ["Transmit"]
    layer.send_response(received.transaction,
                        build_response(received.request, 404, to_tag="t"), 0.2)
    ack = ack_for(text)
    assert layer.receive(ack, source=PEER, reliable=False, now=0.3) == []
    assert received.transaction.state is State.CONFIRMED
    # A different CSeq is a different request.
    newer = request(text.replace("314159 INVITE", "314160 INVITE"))
    assert kinds(layer.receive(newer, source=PEER, reliable=False, now=0.4))[0] == "RequestReceived"


def test_badbranch_retransmission_is_absorbed():
    layer = TransactionLayer()
    message = parse_datagram(torture("badbranch"))
    events = layer.receive(message, source=PEER, reliable=False, now=0.0)
    assert kinds(events) == ["RequestReceived"]
    again = parse_datagram(torture("badbranch"))
    assert layer.receive(again, source=PEER, reliable=False, now=0.1) == []


def test_messages_without_via_or_cseq_are_dropped():
    no_via = request("\n".join(line for line in OPTIONS.split("\n")
                                 if not line.startswith("Via")))
    [event] = TransactionLayer().receive(no_via, source=PEER, reliable=False, now=0.0)
    assert isinstance(event, MessageDropped) and "Via" in event.reason


def test_tu_answering_directly_on_the_transaction_is_noticed():
    layer = TransactionLayer()
    [received] = layer.receive(request(OPTIONS), source=PEER, reliable=True, now=0.0)
    received.transaction.respond(200, now=0.1)  # terminates at once over TCP
    assert layer.transactions == []
    # So a retransmission is a new request again.
    assert kinds(layer.receive(request(OPTIONS), source=PEER, reliable=True, now=0.2)) == [
        "RequestReceived"]
