"""The four transaction state machines, driven with an explicit clock."""

from __future__ import annotations

import pytest

from sipd.sip.builder import build_response
from sipd.sip.message import Request, Response
from sipd.sip.timers import TimerSettings
from sipd.sip.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    ResponseReceived,
    State,
    TransactionError,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
    TransportFailed,
)

from .helpers import INVITE, OPTIONS, request

DEST = ("udp", "192.0.2.9", 5060)


def invite() -> Request:
    return request(INVITE + "Route: <sip:proxy.example.com;lr>\n")


def options() -> Request:
    return request(OPTIONS)


def answer(req: Request, status: int, tag: str = "totag1") -> Response:
    return build_response(req, status, to_tag=tag)


def run_until(transaction, end: float) -> list[tuple[float, object]]:
    """Fires every timer up to `end` at its deadline; returns (time, event) pairs."""
    timeline = []
    while True:
        deadline = transaction.next_deadline()
        if deadline is None or deadline > end:
            return timeline
        timeline += [(deadline, e) for e in transaction.handle_timeout(deadline)]


def transmit_times(timeline) -> list[float]:
    return [t for t, e in timeline if isinstance(e, Transmit)]


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


# --- INVITE client -------------------------------------------------------------------------

def test_invite_client_retransmits_doubling_without_cap_and_times_out_at_64_t1():
    transaction = InviteClientTransaction(invite(), reliable=False, destination=DEST)
    [sent] = transaction.start(now=0.0)
    assert isinstance(sent, Transmit) and sent.destination == DEST
    assert sent.data == transaction.request.to_bytes() and transaction.state is State.CALLING
    timeline = run_until(transaction, 100.0)
    # Timer A: T1, doubling each time (no T2 cap for INVITE), until timer B at 64*T1.
    assert transmit_times(timeline) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(e.data == sent.data for t, e in timeline if isinstance(e, Transmit))
    assert [(t, type(e).__name__) for t, e in timeline[-2:]] == [
        (32.0, "TransactionTimedOut"), (32.0, "TransactionTerminated")]
    assert transaction.state is State.TERMINATED and transaction.next_deadline() is None


def test_invite_client_over_reliable_transport_never_retransmits():
    transaction = InviteClientTransaction(invite(), reliable=True, destination=DEST)
    transaction.start(now=10.0)
    assert transaction.next_deadline() == 42.0
    assert kinds(e for _, e in run_until(transaction, 100.0)) == [
        "TransactionTimedOut", "TransactionTerminated"]


def test_invite_client_provisional_stops_retransmissions_and_timer_b():
    req = invite()
    transaction = InviteClientTransaction(req, reliable=False, destination=DEST)
    transaction.start(now=0.0)
    events = transaction.receive(answer(req, 180), now=0.7)
    assert kinds(events) == ["ResponseReceived"] and events[0].response.status == 180
    assert transaction.state is State.PROCEEDING and transaction.next_deadline() is None


def test_invite_client_2xx_goes_to_accepted_and_passes_every_2xx_up():
    req = invite()
    transaction = InviteClientTransaction(req, reliable=False, destination=DEST)
    transaction.start(now=0.0)
    ok = answer(req, 200)
    assert kinds(transaction.receive(ok, now=1.0)) == ["ResponseReceived"]
    assert transaction.state is State.ACCEPTED
    # Retransmitted (or forked) 2xx still reach the TU, which ACKs them; no ACK from us.
    again = transaction.receive(ok, now=2.0)
    assert kinds(again) == ["ResponseReceived"]
    assert kinds(transaction.receive(answer(req, 486), now=2.5)) == []
    timeline = run_until(transaction, 100.0)
    assert [(t, type(e).__name__) for t, e in timeline] == [(33.0, "TransactionTerminated")]


def test_invite_client_acks_non_2xx_itself_and_absorbs_retransmissions():
    req = invite()
    transaction = InviteClientTransaction(req, reliable=False, destination=DEST)
    transaction.start(now=0.0)
    transaction.receive(answer(req, 183), now=0.2)
    busy = answer(req, 486, tag="busytag")
    events = transaction.receive(busy, now=1.0)
    assert kinds(events) == ["Transmit", "ResponseReceived"]
    ack = events[0].message
    assert ack.method == "ACK" and str(ack.uri) == str(req.uri)
    assert ack.headers.get_all("Via") == [req.headers.values("Via")[0]]  # same branch
    assert ack.to.tag == "busytag" and ack.from_.tag == req.from_.tag
    assert (ack.cseq.number, ack.cseq.method) == (req.cseq.number, "ACK")
    assert ack.call_id == req.call_id
    assert ack.headers.get_all("Route") == req.headers.get_all("Route")
    assert transaction.state is State.COMPLETED and transaction.ack is ack
    # The 486 again: our ACK was lost, send the same ACK; the TU hears nothing.
    again = transaction.receive(busy, now=2.0)
    assert kinds(again) == ["Transmit"] and again[0].data == events[0].data
    # Timer D: 32 s over UDP.
    assert [(t, type(e).__name__) for t, e in run_until(transaction, 100.0)] == [
        (33.0, "TransactionTerminated")]


def test_invite_client_non_2xx_over_reliable_transport_terminates_at_once():
    req = invite()
    transaction = InviteClientTransaction(req, reliable=True, destination=DEST)
    transaction.start(now=0.0)
    events = transaction.receive(answer(req, 404), now=1.0)
    assert kinds(events) == ["Transmit", "ResponseReceived", "TransactionTerminated"]


def test_invite_client_gives_up_64_t1_after_cancel_without_final_response():
    req = invite()
    transaction = InviteClientTransaction(req, reliable=False, destination=DEST)
    transaction.start(now=0.0)
    transaction.receive(answer(req, 180), now=1.0)
    transaction.cancel_sent(now=5.0)
    assert kinds(e for _, e in run_until(transaction, 100.0)) == [
        "TransactionTimedOut", "TransactionTerminated"]


# --- non-INVITE client ---------------------------------------------------------------------

def test_non_invite_client_retransmits_up_to_t2_and_times_out():
    transaction = NonInviteClientTransaction(options(), reliable=False, destination=DEST)
    transaction.start(now=0.0)
    assert transaction.state is State.TRYING
    timeline = run_until(transaction, 100.0)
    # Timer E: 0.5, 1, 2, then capped at T2 = 4 s; timer F at 64*T1 = 32 s.
    assert transmit_times(timeline) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert kinds(e for _, e in timeline[-2:]) == ["TransactionTimedOut", "TransactionTerminated"]
    assert timeline[-1][0] == 32.0


def test_non_invite_client_in_proceeding_retransmits_every_t2():
    req = options()
    transaction = NonInviteClientTransaction(req, reliable=False, destination=DEST)
    transaction.start(now=0.0)
    run_until(transaction, 0.6)  # one retransmission at 0.5, next due at 1.5
    assert kinds(transaction.receive(answer(req, 100), now=0.7)) == ["ResponseReceived"]
    assert transaction.state is State.PROCEEDING
    timeline = run_until(transaction, 20.0)
    assert transmit_times(timeline) == [1.5, 5.5, 9.5, 13.5, 17.5]


def test_non_invite_client_final_response_then_timer_k():
    req = options()
    transaction = NonInviteClientTransaction(req, reliable=False, destination=DEST)
    transaction.start(now=0.0)
    ok = answer(req, 200)
    events = transaction.receive(ok, now=1.0)
    assert kinds(events) == ["ResponseReceived"] and transaction.state is State.COMPLETED
    assert transaction.receive(ok, now=2.0) == []  # retransmitted final absorbed
    assert [(t, type(e).__name__) for t, e in run_until(transaction, 100.0)] == [
        (6.0, "TransactionTerminated")]  # T4 = 5 s


def test_non_invite_client_reliable_terminates_on_final():
    req = options()
    transaction = NonInviteClientTransaction(req, reliable=True, destination=DEST)
    transaction.start(now=0.0)
    assert transaction.next_deadline() == 32.0
    assert kinds(transaction.receive(answer(req, 200), now=1.0)) == [
        "ResponseReceived", "TransactionTerminated"]


def test_configurable_timers():
    timers = TimerSettings(t1=0.1, t2=0.4, t4=1.0)
    transaction = NonInviteClientTransaction(options(), reliable=False, destination=DEST,
                                             timers=timers)
    transaction.start(now=0.0)
    times = transmit_times(run_until(transaction, 1.5))
    assert times == pytest.approx([0.1, 0.3, 0.7, 1.1, 1.5])
    assert transaction.next_deadline() == pytest.approx(1.9)
    with pytest.raises(ValueError):
        TimerSettings(t1=2.0, t2=1.0)


def test_late_tick_fires_every_due_timer_in_order():
    transaction = NonInviteClientTransaction(options(), reliable=False, destination=DEST)
    transaction.start(now=0.0)
    events = transaction.handle_timeout(now=10.0)
    assert kinds(events) == ["Transmit"] * 4  # due at 0.5, 1.5, 3.5 and 7.5
    assert transaction.next_deadline() == 11.5


def test_transport_error_terminates_a_client_transaction():
    transaction = NonInviteClientTransaction(options(), reliable=True, destination=DEST)
    transaction.start(now=0.0)
    assert kinds(transaction.transport_error(now=0.1)) == ["TransportFailed",
                                                           "TransactionTerminated"]
    assert transaction.transport_error(now=0.2) == []


# --- INVITE server -------------------------------------------------------------------------

def test_invite_server_retransmits_last_provisional_on_request_retransmission():
    req = invite()
    transaction = InviteServerTransaction(req, reliable=False, source=DEST)
    assert transaction.state is State.PROCEEDING
    assert transaction.receive(req, now=0.1) == []  # nothing sent yet: nothing to repeat
    ringing = transaction.respond(180, now=0.2)
    assert kinds(ringing) == ["Transmit"] and ringing[0].destination == DEST
    again = transaction.receive(req, now=0.3)
    assert kinds(again) == ["Transmit"] and again[0].data == ringing[0].data


def test_invite_server_non_2xx_retransmits_until_ack_then_timer_i():
    req = invite()
    transaction = InviteServerTransaction(req, reliable=False, source=DEST)
    [sent] = transaction.respond(486, now=0.0)
    assert transaction.state is State.COMPLETED and sent.message.to.tag
    timeline = run_until(transaction, 8.0)
    assert transmit_times(timeline) == [0.5, 1.5, 3.5, 7.5]  # timer G, capped at T2
    assert kinds(transaction.receive(req, now=8.1)) == ["Transmit"]  # INVITE again
    ack = request(INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE", "314159 ACK"))
    assert transaction.receive(ack, now=9.0) == []
    assert transaction.state is State.CONFIRMED
    assert transaction.receive(ack, now=9.5) == []  # absorbed
    assert [(t, type(e).__name__) for t, e in run_until(transaction, 100.0)] == [
        (14.0, "TransactionTerminated")]  # T4


def test_invite_server_times_out_without_ack():
    transaction = InviteServerTransaction(invite(), reliable=False, source=DEST)
    transaction.respond(500, now=0.0)
    timeline = run_until(transaction, 100.0)
    assert transmit_times(timeline) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, type(e).__name__) for t, e in timeline[-2:]] == [
        (32.0, "TransactionTimedOut"), (32.0, "TransactionTerminated")]


def test_invite_server_reliable_non_2xx_waits_for_ack_without_retransmitting():
    transaction = InviteServerTransaction(invite(), reliable=True, source=DEST)
    transaction.respond(486, now=0.0)
    assert transaction.next_deadline() == 32.0  # only timer H
    ack = request(INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE", "314159 ACK"))
    assert kinds(transaction.receive(ack, now=1.0)) == ["TransactionTerminated"]


def test_invite_server_2xx_goes_to_accepted_per_rfc6026():
    req = invite()
    transaction = InviteServerTransaction(req, reliable=False, source=DEST)
    transaction.respond(180, now=0.0)
    [ok] = transaction.respond(200, now=1.0)
    assert transaction.state is State.ACCEPTED
    assert transaction.receive(req, now=1.5) == []  # INVITE retransmission absorbed
    # The TU retransmits its 2xx through the transaction; the To tag stays the same.
    [again] = transaction.respond(200, now=1.5)
    assert again.message.to.tag == ok.message.to.tag
    with pytest.raises(TransactionError, match="accepted"):
        transaction.respond(486, now=2.0)
    # An ACK with the INVITE's branch (RFC 2543-style peers) goes to the TU.
    ack = request(INVITE.replace("INVITE sip", "ACK sip").replace("314159 INVITE", "314159 ACK"))
    events = transaction.receive(ack, now=2.0)
    assert kinds(events) == ["RequestReceived"] and events[0].request.method == "ACK"
    assert [(t, type(e).__name__) for t, e in run_until(transaction, 100.0)] == [
        (33.0, "TransactionTerminated")]  # timer L


def test_invite_server_transport_error():
    transaction = InviteServerTransaction(invite(), reliable=True, source=DEST)
    transaction.respond(200, now=0.0)
    assert kinds(transaction.transport_error(now=0.1)) == ["TransportFailed"]  # stays Accepted
    other = InviteServerTransaction(invite(), reliable=True, source=DEST)
    assert kinds(other.transport_error(now=0.1)) == ["TransportFailed", "TransactionTerminated"]


# --- non-INVITE server ---------------------------------------------------------------------

def test_non_invite_server_absorbs_then_repeats_responses():
    req = options()
    transaction = NonInviteServerTransaction(req, reliable=False, source=DEST)
    assert transaction.state is State.TRYING
    assert transaction.receive(req, now=0.1) == []  # Trying: absorbed
    [trying] = transaction.respond(100, now=0.2)
    assert transaction.state is State.PROCEEDING and trying.message.to.tag is None
    assert kinds(transaction.receive(req, now=0.3)) == ["Transmit"]
    [ok] = transaction.respond(200, now=0.4)
    assert transaction.state is State.COMPLETED
    again = transaction.receive(req, now=0.5)
    assert again[0].data == ok.data
    with pytest.raises(TransactionError):
        transaction.respond(200, now=0.6)
    assert [(t, type(e).__name__) for t, e in run_until(transaction, 100.0)] == [
        (32.4, "TransactionTerminated")]  # timer J = 64*T1 over UDP


def test_non_invite_server_reliable_terminates_with_the_final_response():
    transaction = NonInviteServerTransaction(options(), reliable=True, source=DEST)
    assert kinds(transaction.respond(404, now=0.0)) == ["Transmit", "TransactionTerminated"]


def test_events_name_their_transaction():
    req = options()
    transaction = NonInviteClientTransaction(req, reliable=False, destination=DEST)
    [sent] = transaction.start(now=0.0)
    [received] = transaction.receive(answer(req, 200), now=0.1)
    assert sent.transaction is transaction and received.transaction is transaction
    assert isinstance(received, ResponseReceived) and transaction.last_response.status == 200
    assert not isinstance(received, (RequestReceived, TransactionTimedOut, TransportFailed,
                                     TransactionTerminated))
