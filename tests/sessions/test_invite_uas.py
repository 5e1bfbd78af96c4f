"""The INVITE session as UAS: ringing, early media, the 2xx and its retransmissions until the
ACK (or the BYE when none comes), rejection, CANCEL, offerless INVITEs."""

from __future__ import annotations

import pytest

from sipd.sessions.invite.events import (
    InviteSessionError,
    RemoteSdp,
    SendRequest,
    SendResponse,
    SessionState,
)
from sipd.sessions.invite.session import InviteSession
from sipd.sip.dialog import Dialog
from sipd.sip.timers import TimerSettings

from .test_invite_peer import (
    ALICE_CONTACT,
    ANSWER,
    BOB_CONTACT,
    OFFER,
    RECORD_ROUTE,
    make_invite,
    of,
    one,
    reply,
    sdp,
    stamp_via,
    states,
    wire,
)


class Caller:
    """The remote UAC, made of the SIP core: it builds the ACK for the 2xx we send."""

    def __init__(self, invite) -> None:
        self.invite = invite
        self.dialog: Dialog | None = None

    def ack_for(self, action: SendResponse, body: bytes = b""):
        ok = wire(action.build(self.invite))
        if self.dialog is None:
            self.dialog = Dialog.create_as_uac(self.invite, ok)
        ack = self.dialog.create_ack(self.invite.cseq.number, body=body,
                                     content_type="application/sdp" if body else None)
        return wire(stamp_via(ack, "192.0.2.1"))


def incoming(invite=None, *, reliable=False, timers=None):
    invite = invite or make_invite()
    for rr in RECORD_ROUTE:
        invite.headers.add("Record-Route", rr)
    invite = wire(invite)
    session = InviteSession(**({"timers": timers} if timers else {}))
    ref = object()
    actions = session.incoming(invite, 0.0, contact=BOB_CONTACT, ref=ref, reliable=reliable)
    return session, invite, ref, actions


def test_incoming_invite_reports_the_offer():
    session, invite, _, actions = incoming()
    assert states(actions) == [("calling", None, None)]
    assert actions[1] == RemoteSdp(OFFER, "offer")
    assert session.role.value == "uas" and session.remote_sdp == OFFER
    assert session.local_tag and session.call_id == invite.call_id


def test_ring_progress_accept_and_ack():
    session, invite, ref, _ = incoming()
    ringing = session.ring(0.1)
    response = one(ringing, SendResponse)
    assert (response.ref, response.status, response.reason) == (ref, 180, "Ringing")
    assert ("Contact", BOB_CONTACT) in response.headers
    assert response.to_tag == session.local_tag
    assert states(ringing) == [("ringing", 180, "Ringing")]
    assert session.dialog.state.value == "early"
    # the 180 as it leaves: our To tag, the Record-Route copied back
    sent = wire(response.build(invite))
    assert sent.to.tag == session.local_tag and len(sent.record_routes) == 2

    early = sdp("bob", 1)
    progress = session.progress(early, 0.2)
    p183 = one(progress, SendResponse)
    assert (p183.status, p183.body, p183.content_type) == (183, early, "application/sdp")
    assert p183.to_tag == session.local_tag
    assert states(progress) == [("early", 183, "Session Progress")]

    accepted = session.accept(ANSWER, 1.0)
    ok = one(accepted, SendResponse)
    assert (ok.status, ok.body, ok.to_tag) == (200, ANSWER, session.local_tag)
    assert ("Contact", BOB_CONTACT) in ok.headers
    assert states(accepted) == []  # established only with the ACK
    assert session.dialog.state.value == "confirmed"

    caller = Caller(invite)
    ack = caller.ack_for(ok)
    assert states(session.request(ack, 1.1)) == [("established", 200, "OK")]
    assert session.next_deadline() is None
    assert session.request(ack, 1.2) == []  # an ACK again: nothing
    assert (session.local_sdp, session.remote_sdp) == (ANSWER, OFFER)
    # our in-dialog requests go to the caller's Contact through the Record-Route
    bye = wire(one(session.end(2.0), SendRequest).request)
    assert str(bye.uri) == ALICE_CONTACT.strip("<>")
    assert bye.headers.values("Route") == list(RECORD_ROUTE)
    assert bye.from_.tag == session.local_tag and bye.to.tag == "alicetag"


def test_2xx_retransmitted_until_the_ack_over_udp():
    session, invite, ref, _ = incoming()
    ok = one(session.accept(ANSWER, 0.0), SendResponse)
    times = []
    now = 0.0
    while len(times) < 4:
        now = session.next_deadline()
        again = session.timer(now)
        assert len(again) == 1 and again[0].retransmission
        assert (again[0].ref, again[0].status, again[0].body) == (ref, 200, ANSWER)
        assert again[0].to_tag == ok.to_tag
        times.append(now)
    assert times == [0.5, 1.5, 3.5, 7.5]  # T1, doubling up to T2
    assert session.timer(now + 0.1) == []  # early calls do nothing
    session.request(Caller(invite).ack_for(ok), now + 0.2)
    assert session.next_deadline() is None and session.state is SessionState.ESTABLISHED


def test_no_ack_within_64_t1_ends_with_bye():
    session, invite, _, _ = incoming()
    session.ring(0.0)
    session.accept(ANSWER, 0.0)
    retransmissions = 0
    while True:
        now = session.next_deadline()
        actions = session.timer(now)
        if of(actions, SendRequest):
            break
        retransmissions += len(of(actions, SendResponse))
    assert now == 32.0 and retransmissions == 10
    bye = wire(one(actions, SendRequest).request)
    assert bye.method == "BYE" and bye.to.tag == "alicetag"
    assert states(actions) == [("failed", None, "no ACK")]
    assert session.next_deadline() is None
    assert session.response(reply(bye, 200, to_tag="alicetag"), 32.1) == []


def test_reliable_transport_no_retransmission_but_the_same_give_up():
    session, _, _, _ = incoming(reliable=True)
    session.accept(ANSWER, 0.0)
    assert session.next_deadline() == 32.0
    assert states(session.timer(32.0)) == [("failed", None, "no ACK")]


def test_timer_values_come_from_the_settings():
    session, _, _, _ = incoming(timers=TimerSettings(t1=0.1, t2=0.4))
    session.accept(ANSWER, 10.0)
    assert session.next_deadline() == pytest.approx(10.1)


def test_reject_fails_the_call():
    session, _, ref, _ = incoming()
    session.ring(0.1)
    actions = session.reject(486, 1.0)
    response = one(actions, SendResponse)
    assert (response.ref, response.status, response.reason) == (ref, 486, "Busy Here")
    assert response.to_tag == session.local_tag
    assert states(actions) == [("failed", 486, "Busy Here")]
    assert session.dialog.state.value == "terminated"
    with pytest.raises(InviteSessionError):
        session.reject(200, 1.0)


def test_cancel_received_before_the_answer():
    session, _, ref, _ = incoming()
    session.ring(0.1)
    actions = session.cancelled(1.0)
    assert [(a.ref, a.status) for a in of(actions, SendResponse)] == [(ref, 487)]
    assert states(actions) == [("failed", 487, "Request Terminated")]
    assert session.accept(ANSWER, 1.1) == [] and session.ring(1.1) == []  # too late


def test_cancel_already_answered_by_the_stack():
    session, _, _, _ = incoming()
    actions = session.cancelled(1.0, already_answered=True)
    assert of(actions, SendResponse) == [] and session.code == 487


def test_cancel_after_the_2xx_changes_nothing():
    session, _, _, _ = incoming()
    session.accept(ANSWER, 0.0)
    assert session.cancelled(0.1) == []


def test_offerless_invite_gets_our_offer_and_the_answer_comes_in_the_ack():
    session, invite, _, actions = incoming(make_invite(body=b""))
    assert of(actions, RemoteSdp) == []
    with pytest.raises(InviteSessionError, match="no offer"):
        session.progress(sdp("bob"), 0.1)
    ok = one(session.accept(OFFER, 0.5), SendResponse)
    ack = Caller(invite).ack_for(ok, body=ANSWER)
    actions = session.request(ack, 0.6)
    assert actions[0] == RemoteSdp(ANSWER, "answer")
    assert states(actions) == [("established", 200, "OK")]
    assert (session.local_sdp, session.remote_sdp) == (OFFER, ANSWER)


def test_offerless_invite_and_an_ack_without_answer():
    session, invite, _, _ = incoming(make_invite(body=b""))
    ok = one(session.accept(OFFER, 0.5), SendResponse)
    actions = session.request(Caller(invite).ack_for(ok), 0.6)
    assert one(actions, SendRequest).request.method == "BYE"
    assert states(actions) == [("ending", None, "no SDP answer in the ACK")]


def test_invite_with_a_body_that_is_no_sdp_gets_415():
    session, _, ref, actions = incoming(make_invite(body=b"hi", content_type="text/plain"))
    response = one(actions, SendResponse)
    assert response.status == 415 and ("Accept", "application/sdp") in response.headers
    assert session.state is SessionState.FAILED


def test_end_before_answering_declines():
    session, _, _, _ = incoming()
    actions = session.end(1.0)
    assert one(actions, SendResponse).status == 603
    assert states(actions) == [("failed", 603, "Decline")]


def test_end_after_the_2xx_waits_for_the_ack_before_the_bye():
    session, invite, _, _ = incoming()
    ok = one(session.accept(ANSWER, 0.0), SendResponse)
    actions = session.end(0.1)
    assert of(actions, SendRequest) == []  # no BYE before the ACK (RFC 3261 §15)
    assert states(actions) == [("ending", None, "local hangup")]
    actions = session.request(Caller(invite).ack_for(ok), 0.2)
    bye = one(actions, SendRequest).request
    assert states(actions) == []
    assert states(session.response(reply(bye, 200, to_tag="alicetag"), 0.3)) == [
        ("ended", None, "local hangup")]


def test_end_after_the_2xx_and_no_ack_ever():
    session, _, _, _ = incoming(reliable=True)
    session.accept(ANSWER, 0.0)
    session.end(0.1)
    actions = session.timer(32.0)
    assert one(actions, SendRequest).request.method == "BYE"


def test_bye_of_the_caller_on_the_early_dialog():
    session, invite, ref, _ = incoming()
    ringing = wire(one(session.ring(0.1), SendResponse).build(invite))
    early = Dialog.create_as_uac(invite, ringing)  # the caller's early dialog
    bye = wire(stamp_via(early.create_request("BYE"), "192.0.2.1"))
    bye_ref = object()
    actions = session.request(bye, 0.5, ref=bye_ref)
    answers = [(a.ref, a.status) for a in of(actions, SendResponse)]
    assert answers == [(bye_ref, 200), (ref, 487)]  # §15.1.2: the INVITE gets 487
    assert states(actions) == [("failed", 487, "remote hangup")]


def test_accept_needs_sdp_and_an_incoming_call():
    session, _, _, _ = incoming()
    with pytest.raises(InviteSessionError, match="SDP"):
        session.accept(b"", 0.1)
    session.accept(ANSWER, 0.2)
    with pytest.raises(InviteSessionError, match="answered already"):
        session.accept(ANSWER, 0.3)
    with pytest.raises(InviteSessionError, match="incoming call"):
        InviteSession().ring(0.0)
    in_dialog = make_invite()
    in_dialog.headers.set("To", "<sip:bob@biloxi.example.com>;tag=x")
    with pytest.raises(InviteSessionError, match="outside any dialog"):
        InviteSession().incoming(wire(in_dialog), 0.0, contact=BOB_CONTACT)
