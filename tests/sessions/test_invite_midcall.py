"""The INVITE session in its dialog: BYE both ways, re-INVITE both ways (answer flow, glare,
491 retry windows, failures), INFO with DTMF, other requests, 481 for unknown dialogs."""

from __future__ import annotations

import pytest

from sipd.sessions.invite.content import BodyError, dtmf_relay_body, parse_dtmf
from sipd.sessions.invite.events import (
    DtmfReceived,
    InDialogRequest,
    InDialogResponse,
    InviteSessionError,
    OfferReceived,
    ReinviteCompleted,
    RemoteSdp,
    SendAck,
    SendRequest,
    SendResponse,
    SessionState,
)
from sipd.sessions.invite.session import InviteSession, request_key, unknown_dialog_response
from sipd.sip.builder import build_cancel
from sipd.sip.dialog import Dialog
from sipd.sip.header_values import parse_address

from .test_invite_peer import (
    ALICE_CONTACT,
    ANSWER,
    BOB_CONTACT,
    OFFER,
    RECORD_ROUTE,
    ScriptedRandom,
    make_invite,
    of,
    one,
    reply,
    sdp,
    stamp_via,
    states,
    wire,
)

HOLD = sdp("alice", 2, direction="sendonly")
HELD = sdp("bob", 2, direction="recvonly")


class Remote:
    """The other end of the dialog, made of the SIP core's Dialog."""

    def __init__(self, dialog: Dialog, host: str) -> None:
        self.dialog = dialog
        self.host = host

    def request(self, method: str, body: bytes = b"", content_type: str | None = None,
                headers=()):
        if body and content_type is None:
            content_type = "application/sdp"
        request = self.dialog.create_request(method, body=body, content_type=content_type,
                                             headers=headers)
        return wire(stamp_via(request, self.host))

    def ack(self, invite, body: bytes = b""):
        ack = self.dialog.create_ack(invite.cseq.number, body=body,
                                     content_type="application/sdp" if body else None)
        return wire(stamp_via(ack, self.host))


def established_uac(rng=None):
    """Alice called Bob; the session is Alice's, the Remote is Bob."""
    session = InviteSession(rng=rng)
    invite = make_invite()
    session.start(invite, 0.0)
    ok = reply(invite, 200, record_route=RECORD_ROUTE, body=ANSWER)
    session.response(ok, 0.1)
    assert session.state is SessionState.ESTABLISHED
    received = invite.copy()
    for rr in RECORD_ROUTE:
        received.headers.add("Record-Route", rr)
    return session, Remote(Dialog.create_as_uas(wire(received), ok), "192.0.2.2")


def established_uas(rng=None):
    """Alice called Bob; the session is Bob's, the Remote is Alice."""
    session = InviteSession(rng=rng)
    invite = wire(make_invite())
    session.incoming(invite, 0.0, contact=BOB_CONTACT)
    ok = wire(one(session.accept(ANSWER, 0.1), SendResponse).build(invite))
    caller = Dialog.create_as_uac(invite, ok)
    session.request(wire(stamp_via(caller.create_ack(1), "192.0.2.1")), 0.2)
    assert session.state is SessionState.ESTABLISHED
    return session, Remote(caller, "192.0.2.1")


@pytest.fixture(params=["uac", "uas"])
def call(request):
    return (established_uac if request.param == "uac" else established_uas)()


# --- BYE -------------------------------------------------------------------------------------

def test_incoming_bye_ends_the_call(call):
    session, remote = call
    ref = object()
    actions = session.request(remote.request("BYE"), 5.0, ref=ref)
    response = one(actions, SendResponse)
    assert (response.ref, response.status) == (ref, 200)
    assert states(actions) == [("ended", None, "remote hangup")]
    # the dialog is over: what else comes for it gets 481
    late = session.request(remote.request("INFO"), 5.1, ref=ref)
    assert [(a.status, a.reason) for a in late] == [(481, "Call/Transaction Does Not Exist")]
    assert session.end(5.2) == []


def test_end_sends_bye_and_ends_with_its_response():
    session, _ = established_uac()
    actions = session.end(5.0)
    send = one(actions, SendRequest)
    bye = wire(send.request)
    assert send.key == "BYE 2" and (bye.cseq.number, bye.cseq.method) == (2, "BYE")
    assert str(bye.uri) == BOB_CONTACT.strip("<>")
    assert bye.headers.values("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.to.tag == "bobtag" and bye.from_.tag == "alicetag"
    assert states(actions) == [("ending", None, "local hangup")]
    assert session.end(5.1) == []
    assert session.response(reply(bye, 100, contact=None), 5.2) == []
    assert states(session.response(reply(bye, 200, contact=None), 5.3)) == [
        ("ended", None, "local hangup")]


@pytest.mark.parametrize("outcome", ["timeout", "transport_error", "481"])
def test_bye_ends_the_call_whatever_its_outcome(call, outcome):
    session, _ = call
    key = one(session.end(5.0), SendRequest).key
    if outcome == "481":
        bye = session._requests[key].request
        actions = session.response(reply(bye, 481, contact=None), 6.0)
    else:
        actions = getattr(session, outcome)(37.0, key)
    assert states(actions) == [("ended", None, "local hangup")]


def test_crossed_byes(call):
    session, remote = call
    session.end(5.0)
    actions = session.request(remote.request("BYE"), 5.01)
    assert one(actions, SendResponse).status == 200
    assert states(actions) == [("ended", None, "local hangup")]


# --- dialog matching -------------------------------------------------------------------------

def test_requests_for_an_unknown_dialog_get_481(call):
    session, remote = call
    stranger = remote.request("INFO")
    stranger.headers.set("From", "<sip:mallory@example.com>;tag=other")
    assert [a.status for a in session.request(stranger, 1.0)] == [481]
    ref = object()
    assert (unknown_dialog_response(ref).ref, unknown_dialog_response(ref).status) == (ref, 481)


def test_cseq_out_of_order_gets_500(call):
    session, remote = call
    first = remote.request("NOTIFY")
    second = remote.request("NOTIFY")
    assert of(session.request(second, 1.0), InDialogRequest)
    assert [(a.status, a.reason) for a in session.request(first, 1.1)] == [
        (500, "CSeq Out of Order")]


def test_cancel_is_the_stacks():
    session, _ = established_uac()
    cancel = build_cancel(session.invite)
    with pytest.raises(InviteSessionError, match="cancelled"):
        session.request(wire(cancel), 1.0)


# --- incoming re-INVITE ----------------------------------------------------------------------

def test_incoming_reinvite_answer_flow(call):
    session, remote = call
    remote.dialog.local_contact = parse_address("<sip:moved@192.0.2.77>")
    reinvite = remote.request("INVITE", HOLD)
    ref = object()
    actions = session.request(reinvite, 10.0, ref=ref)
    assert actions == [OfferReceived(HOLD)]
    assert str(session.dialog.remote_target) == "sip:moved@192.0.2.77"  # target refresh
    assert not session.can_reinvite
    with pytest.raises(InviteSessionError, match="under way"):
        session.reinvite(OFFER, 10.1)

    ok = one(session.answer_reinvite(HELD, 10.2), SendResponse)
    assert (ok.ref, ok.status, ok.body, ok.content_type) == (ref, 200, HELD, "application/sdp")
    contact = ALICE_CONTACT if session.role.value == "uac" else BOB_CONTACT
    assert ("Contact", contact) in ok.headers
    assert (session.local_sdp, session.remote_sdp) == (HELD, HOLD)
    assert session.next_deadline() == pytest.approx(10.7)
    again = session.timer(10.7)
    assert len(again) == 1 and again[0].retransmission and again[0].body == HELD
    assert session.request(remote.ack(reinvite), 11.0) == []
    assert session.next_deadline() is None and session.can_reinvite
    assert session.answer_reinvite(HELD, 11.1) == []  # nothing pending any more


def test_incoming_reinvite_without_offer(call):
    session, remote = call
    reinvite = remote.request("INVITE")
    assert session.request(reinvite, 10.0) == [OfferReceived(None)]
    ok = one(session.answer_reinvite(HOLD, 10.1), SendResponse)
    assert ok.body == HOLD
    actions = session.request(remote.ack(reinvite, body=HELD), 10.2)
    assert actions == [RemoteSdp(HELD, "answer")]
    assert (session.local_sdp, session.remote_sdp) == (HOLD, HELD)


def test_incoming_reinvite_rejected_keeps_the_media(call):
    session, remote = call
    before = (session.local_sdp, session.remote_sdp)
    ref = object()
    session.request(remote.request("INVITE", HOLD), 10.0, ref=ref)
    rejected = one(session.reject_reinvite(488), SendResponse)
    assert (rejected.ref, rejected.status, rejected.reason) == (ref, 488, "Not Acceptable Here")
    assert (session.local_sdp, session.remote_sdp) == before and session.can_reinvite


def test_incoming_reinvite_cancelled(call):
    session, remote = call
    ref = object()
    session.request(remote.request("INVITE", HOLD), 10.0, ref=ref)
    assert session.cancelled(10.1, ref=ref, already_answered=True) == []
    assert session.answer_reinvite(HELD, 10.2) == [] and session.can_reinvite


def test_incoming_reinvite_never_acked_ends_the_call(call):
    session, remote = call
    session.request(remote.request("INVITE", HOLD), 10.0)
    session.answer_reinvite(HELD, 10.0)
    actions = session.timer(42.0)
    assert one(actions, SendRequest).request.method == "BYE"
    assert states(actions) == [("ending", None, "no ACK")]


def test_incoming_reinvite_while_another_is_unanswered_gets_500_retry_after(call):
    session, remote = call
    session.request(remote.request("INVITE", HOLD), 10.0)
    second = one(session.request(remote.request("INVITE", HOLD), 10.1), SendResponse)
    assert second.status == 500
    retry_after = dict(second.headers)["Retry-After"]
    assert 0 <= int(retry_after) <= 10


def test_bye_answers_a_pending_reinvite_with_487(call):
    session, remote = call
    pending = object()
    session.request(remote.request("INVITE", HOLD), 10.0, ref=pending)
    actions = session.request(remote.request("BYE"), 10.1)
    assert [a.status for a in of(actions, SendResponse)] == [200, 487]
    assert of(actions, SendResponse)[1].ref is pending


def test_end_answers_a_pending_reinvite_with_487(call):
    session, remote = call
    pending = object()
    session.request(remote.request("INVITE", HOLD), 10.0, ref=pending)
    actions = session.end(10.1)
    assert [(a.ref, a.status) for a in of(actions, SendResponse)] == [(pending, 487)]
    assert one(actions, SendRequest).request.method == "BYE"
    # a re-INVITE while ending gets 481
    late = session.request(remote.request("INVITE", HOLD), 10.2)
    assert [a.status for a in late] == [481]


# --- our re-INVITE ---------------------------------------------------------------------------

def test_our_reinvite_accepted(call):
    session, remote = call
    actions = session.reinvite(HOLD, 10.0)
    send = one(actions, SendRequest)
    reinvite = wire(send.request)
    assert send.key == request_key(reinvite)
    assert reinvite.method == "INVITE" and reinvite.body == HOLD
    assert reinvite.content_type.mime == "application/sdp"
    assert reinvite.contacts and reinvite.to.tag == session.dialog.remote_tag
    assert not session.can_reinvite
    with pytest.raises(InviteSessionError, match="previous re-INVITE"):
        session.reinvite(HOLD, 10.05)

    assert session.response(reply(reinvite, 100, contact=None), 10.1) == []
    ok = reply(reinvite, 200, body=HELD)
    actions = session.response(ok, 10.2)
    ack = wire(one(actions, SendAck).ack)
    assert (ack.cseq.number, ack.cseq.method) == (reinvite.cseq.number, "ACK")
    assert ack.headers.values("Via") == []
    assert actions[1:] == [RemoteSdp(HELD, "answer"), ReinviteCompleted(True, 200, "OK")]
    assert (session.local_sdp, session.remote_sdp) == (HOLD, HELD)
    assert session.can_reinvite
    again = session.response(reply(reinvite, 200, body=HELD), 10.3)
    assert len(again) == 1 and again[0].ack is one(actions, SendAck).ack


def test_our_reinvite_refused_keeps_the_session(call):
    session, _ = call
    before = (session.local_sdp, session.remote_sdp)
    reinvite = one(session.reinvite(HOLD, 10.0), SendRequest).request
    actions = session.response(reply(reinvite, 488, contact=None), 10.1)
    assert actions == [ReinviteCompleted(False, 488, "Not Acceptable Here")]
    assert session.state is SessionState.ESTABLISHED
    assert (session.local_sdp, session.remote_sdp) == before and session.can_reinvite


def test_our_reinvite_481_ends_the_call(call):
    session, _ = call
    reinvite = one(session.reinvite(HOLD, 10.0), SendRequest).request
    actions = session.response(reply(reinvite, 481, contact=None), 10.1)
    assert actions[0] == ReinviteCompleted(False, 481, "Call/Transaction Does Not Exist")
    assert states(actions) == [("ended", 481, "Call/Transaction Does Not Exist")]


def test_our_reinvite_timing_out_ends_the_call_with_bye(call):
    session, _ = call
    key = one(session.reinvite(HOLD, 10.0), SendRequest).key
    actions = session.timeout(42.0, key)
    assert actions[0] == ReinviteCompleted(False, 408, "Request Timeout")
    assert one(actions, SendRequest).request.method == "BYE"
    assert states(actions) == [("ending", 408, "re-INVITE timed out")]


def test_glare_incoming_reinvite_while_ours_is_pending_gets_491(call):
    session, remote = call
    session.reinvite(HOLD, 10.0)
    ref = object()
    actions = session.request(remote.request("INVITE", HELD), 10.01, ref=ref)
    assert [(a.ref, a.status, a.reason) for a in actions] == [(ref, 491, "Request Pending")]


@pytest.mark.parametrize("role, draw, delay", [
    ("uac", 0.0, 2.1), ("uac", 0.999999, 4.0), ("uac", 0.5, 3.05),
    ("uas", 0.0, 0.0), ("uas", 0.999999, 2.0), ("uas", 0.25, 0.5),
])
def test_491_retry_windows(role, draw, delay):
    # RFC 3261 §14.1: 2.1-4 s for the owner of the Call-ID (the UAC), 0-2 s for the other
    make = established_uac if role == "uac" else established_uas
    session, _ = make(ScriptedRandom(draw))
    first = one(session.reinvite(HOLD, 10.0), SendRequest).request
    assert session.response(reply(first, 491, contact=None), 10.5) == []
    assert session.next_deadline() == pytest.approx(10.5 + delay)
    assert session.state is SessionState.ESTABLISHED and not session.can_reinvite
    assert session.timer(10.5 + delay - 0.01) == [] if delay else True
    retry = one(session.timer(10.5 + delay), SendRequest)
    assert retry.request.body == HOLD
    assert retry.request.cseq.number == first.cseq.number + 1
    ok = session.response(reply(retry.request, 200, body=HELD), 15.0)
    assert ok[-1] == ReinviteCompleted(True, 200, "OK")


def test_491_retry_waits_for_the_remotes_reinvite_and_builds_a_fresh_offer(call):
    session, remote = call
    offers = []

    def offer():
        offers.append(sdp("x", 10 + len(offers), direction="sendonly"))
        return offers[-1]

    first = one(session.reinvite(offer, 10.0), SendRequest).request
    session.response(reply(first, 491, contact=None), 10.1)
    retry_at = session.next_deadline()
    reinvite = remote.request("INVITE", HELD)  # the remote's retry came first
    assert session.request(reinvite, 10.11) == [OfferReceived(HELD)]
    assert session.timer(retry_at) == []  # ours waits for theirs to end
    session.answer_reinvite(ANSWER, retry_at + 0.01)
    actions = session.request(remote.ack(reinvite), retry_at + 0.02)
    retry = one(actions, SendRequest).request
    assert len(offers) == 2 and retry.body == offers[1]


def test_491_retry_with_fixed_bytes_gives_up_when_the_remote_changed_the_session(call):
    session, remote = call
    first = one(session.reinvite(HOLD, 10.0), SendRequest).request
    session.response(reply(first, 491, contact=None), 10.1)
    retry_at = session.next_deadline()
    reinvite = remote.request("INVITE", HELD)
    session.request(reinvite, 10.11)
    session.answer_reinvite(ANSWER, 10.12)
    assert session.request(remote.ack(reinvite), 10.13) == []
    actions = session.timer(retry_at)
    assert [type(a) for a in actions] == [ReinviteCompleted]
    assert (actions[0].accepted, actions[0].code) == (False, 491)
    assert session.can_reinvite


def test_reinvite_needs_an_established_call():
    session = InviteSession()
    session.start(make_invite(), 0.0)
    with pytest.raises(InviteSessionError, match="established"):
        session.reinvite(HOLD, 0.1)


# --- INFO, other requests --------------------------------------------------------------------

def test_info_dtmf_relay(call):
    session, remote = call
    ref = object()
    info = remote.request("INFO", b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay")
    actions = session.request(info, 3.0, ref=ref)
    assert (one(actions, SendResponse).ref, one(actions, SendResponse).status) == (ref, 200)
    assert one(actions, DtmfReceived) == DtmfReceived("5", 160)


def test_info_dtmf_variants(call):
    session, remote = call
    plain = session.request(remote.request("INFO", b"#", "application/dtmf"), 3.0)
    assert one(plain, DtmfReceived) == DtmfReceived("#", 250)
    bad = session.request(remote.request("INFO", b"Signal=X\r\n", "application/dtmf-relay"), 3.1)
    assert [(a.status, a.reason) for a in bad] == [(400, "not a DTMF digit: 'X'")]
    empty = session.request(remote.request("INFO"), 3.2)
    assert [a.status for a in empty] == [200]


def test_other_info_and_other_requests_go_to_the_owner(call):
    session, remote = call
    ref = object()
    xml = remote.request("INFO", b"<media_control/>", "application/media_control+xml")
    event = one(session.request(xml, 3.0, ref=ref), InDialogRequest)
    assert event.ref is ref and event.request.method == "INFO"
    notify = remote.request("NOTIFY", b"SIP/2.0 200 OK", "message/sipfrag",
                            headers=[("Event", "refer"),
                                     ("Subscription-State", "terminated;reason=noresource")])
    actions = session.request(notify, 3.1, ref=ref)
    assert [type(a) for a in actions] == [InDialogRequest]  # the owner answers it


def test_send_in_dialog_and_its_response(call):
    session, _ = call
    actions = session.send_in_dialog("REFER", 4.0,
                                     headers=[("Refer-To", "<sip:carol@example.com>")])
    send = one(actions, SendRequest)
    refer = wire(send.request)
    assert refer.method == "REFER" and refer.headers.get("Refer-To") == "<sip:carol@example.com>"
    assert refer.contacts  # a target refresh request carries our Contact
    assert session.response(reply(refer, 100, contact=None), 4.1) == []
    accepted = reply(refer, 202, contact=None)
    done = session.response(accepted, 4.2)
    assert [(a.key, a.response, a.reason) for a in done] == [(send.key, accepted, None)]
    assert isinstance(done[0], InDialogResponse)
    info = one(session.send_dtmf("9", 5.0), SendRequest)
    assert info.request.body == b"Signal=9\r\nDuration=250\r\n"
    failed = session.timeout(37.0, info.key)
    assert [(a.key, a.response, a.reason) for a in failed] == [
        (info.key, None, "Request Timeout")]
    with pytest.raises(InviteSessionError, match="method of its own"):
        session.send_in_dialog("BYE", 5.0)


def test_send_in_dialog_needs_an_established_dialog():
    session = InviteSession()
    session.start(make_invite(), 0.0)
    with pytest.raises(InviteSessionError, match="no established dialog"):
        session.send_in_dialog("INFO", 0.1)


# --- DTMF bodies -----------------------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    (b"Signal=5\r\nDuration=160\r\n", ("5", 160)),
    (b"Signal= 1\nDuration= 100", ("1", 100)),
    (b"signal=*\r\n", ("*", 250)),
    (b"Signal=10\r\nDuration=80\r\n", ("*", 80)),
    (b"Signal=11\r\n", ("#", 250)),
    (b"Signal=a\r\n", ("A", 250)),
])
def test_parse_dtmf_relay(body, expected):
    assert parse_dtmf(body, "application/dtmf-relay") == expected


@pytest.mark.parametrize("body", [b"Duration=100", b"Signal=55", b"Signal=5\nDuration=x",
                                  b"Signal=\xff", b""])
def test_parse_dtmf_relay_errors(body):
    with pytest.raises(BodyError) as info:
        parse_dtmf(body, "application/dtmf-relay")
    assert info.value.status == 400


def test_dtmf_relay_body_round_trips():
    assert parse_dtmf(dtmf_relay_body("#", 300), "application/dtmf-relay") == ("#", 300)
    with pytest.raises(BodyError):
        dtmf_relay_body("x", 100)


# --- odds and ends ---------------------------------------------------------------------------

def test_resend_of_a_reinvite_and_a_bye_keeps_the_cseq_rising():
    session, _ = established_uac()
    send = one(session.reinvite(HOLD, 10.0), SendRequest)
    assert send.request.cseq.number == 2
    # the driver answers a 401 with a copy carrying credentials, CSeq + 1
    retry = send.request.copy()
    retry.headers.set("CSeq", "3 INVITE")
    retry.headers.add("Authorization", 'Digest username="alice"')
    again = one(session.resend(send.key, retry, 10.1), SendRequest)
    assert again.key == "INVITE 3"
    ok = session.response(reply(retry, 200, body=HELD), 10.2)
    assert ok[-1] == ReinviteCompleted(True, 200, "OK")
    bye = one(session.end(11.0), SendRequest)
    assert bye.request.cseq.number == 4
    bye_retry = bye.request.copy()
    bye_retry.headers.set("CSeq", "5 BYE")
    assert one(session.resend(bye.key, bye_retry, 11.1), SendRequest).key == "BYE 5"
    assert states(session.response(reply(bye_retry, 200, contact=None), 11.2)) == [
        ("ended", None, "local hangup")]
    with pytest.raises(InviteSessionError, match="no request"):
        session.resend("OPTIONS 9", bye_retry, 12.0)


def test_end_drops_a_glare_retry_and_a_pending_reinvite_2xx(call):
    session, remote = call
    first = one(session.reinvite(HOLD, 10.0), SendRequest).request
    session.response(reply(first, 491, contact=None), 10.1)
    assert session.next_deadline() is not None
    actions = session.end(10.2)
    assert one(actions, SendRequest).request.method == "BYE"
    assert session.next_deadline() is None and session.timer(20.0) == []


def test_end_while_our_2xx_to_a_reinvite_awaits_its_ack(call):
    session, remote = call
    session.request(remote.request("INVITE", HOLD), 10.0)
    session.answer_reinvite(HELD, 10.0)
    assert session.next_deadline() is not None
    assert one(session.end(10.1), SendRequest).request.method == "BYE"
    assert session.next_deadline() is None


def test_a_2xx_to_our_reinvite_after_we_hung_up_is_still_acked(call):
    session, _ = call
    reinvite = one(session.reinvite(HOLD, 10.0), SendRequest).request
    session.end(10.1)
    actions = session.response(reply(reinvite, 200, body=HELD), 10.2)
    assert [type(a) for a in actions] == [SendAck]


def test_reinvite_with_a_body_that_is_no_sdp_gets_415(call):
    session, remote = call
    actions = session.request(remote.request("INVITE", b"hello", "text/plain"), 10.0)
    response = one(actions, SendResponse)
    assert response.status == 415 and ("Accept", "application/sdp") in response.headers
    assert session.can_reinvite


def test_requests_on_an_early_dialog_of_the_callee():
    session = InviteSession()
    invite = make_invite()
    session.start(invite, 0.0)
    ringing = reply(invite, 180)
    session.response(ringing, 0.1)
    received = invite.copy()
    callee = Remote(Dialog.create_as_uas(wire(received), ringing), "192.0.2.2")
    info = callee.request("INFO", b"<x/>", "application/xml")
    assert [type(a) for a in session.request(info, 0.2)] == [InDialogRequest]
    bye = session.request(callee.request("BYE"), 0.3)
    assert [a.status for a in bye] == [200]
    assert session.state is SessionState.RINGING  # the INVITE is still pending
    assert [a.status for a in session.request(callee.request("INFO"), 0.4)] == [481]


def test_state_changed_data():
    from sipd.sessions.invite.events import StateChanged
    assert StateChanged(SessionState.FAILED, 486, "Busy Here").data() == {
        "state": "failed", "code": 486, "reason": "Busy Here"}
    assert StateChanged(SessionState.CALLING).data() == {"state": "calling"}
    assert "call-1" in repr(established_uac()[0])
