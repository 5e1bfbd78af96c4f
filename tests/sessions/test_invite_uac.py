"""The INVITE session as UAC: provisional responses, early media, the ACK of a 2xx (and of its
retransmissions and of other forks), failures, CANCEL, timer B, digest retries."""

from __future__ import annotations

import pytest

from sipd.sessions.invite.events import (
    InviteSessionError,
    RemoteSdp,
    SendAck,
    SendCancel,
    SendRequest,
    SessionState,
)
from sipd.sessions.invite.session import InviteSession

from .test_invite_peer import (
    ANSWER,
    BOB_CONTACT,
    OFFER,
    RECORD_ROUTE,
    make_invite,
    one,
    reply,
    sdp,
    states,
    wire,
)


def started(invite=None):
    invite = invite or make_invite()
    session = InviteSession()
    actions = session.start(invite, 0.0)
    return session, invite, actions


def test_start_sends_the_invite_and_reports_calling():
    session, invite, actions = started()
    send = one(actions, SendRequest)
    assert send.request is invite and send.key == "INVITE 1"
    assert states(actions) == [("calling", None, None)]
    assert session.role.value == "uac" and session.local_sdp == OFFER
    assert session.call_id == "call-1@192.0.2.1" and session.local_tag == "alicetag"


def test_100_180_183_200_and_the_ack():
    session, invite, _ = started()
    assert session.response(reply(invite, 100), 0.1) == []

    ringing = session.response(reply(invite, 180, record_route=RECORD_ROUTE), 0.2)
    assert states(ringing) == [("ringing", 180, "Ringing")]
    assert session.response(reply(invite, 180, record_route=RECORD_ROUTE), 0.3) == []

    early = sdp("bob", 1)
    progress = session.response(reply(invite, 183, record_route=RECORD_ROUTE, body=early), 0.4)
    assert progress[0] == RemoteSdp(early, "early")
    assert states(progress) == [("early", 183, "Session Progress")]

    ok = reply(invite, 200, record_route=RECORD_ROUTE, body=ANSWER)
    actions = session.response(ok, 1.0)
    ack = one(actions, SendAck).ack
    assert actions[1:] == [RemoteSdp(ANSWER, "answer"), *actions[2:]]
    assert states(actions) == [("established", 200, "OK")]
    assert session.remote_sdp == ANSWER and session.dialog.state.value == "confirmed"

    sent = wire(ack)
    assert sent.method == "ACK" and str(sent.uri) == "sip:bob@192.0.2.2:5062"
    # the route set is the 2xx's Record-Route reversed; the ACK has the INVITE's CSeq
    assert sent.headers.values("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert (sent.cseq.number, sent.cseq.method) == (1, "ACK")
    assert sent.to.tag == "bobtag" and sent.from_.tag == "alicetag"
    assert sent.call_id == invite.call_id and not sent.body
    # a transaction of its own: no Via of the INVITE (the stack adds one, fresh branch)
    assert sent.headers.values("Via") == []
    assert "Contact" not in sent.headers

    # the 2xx again (retransmitted, via the stray-response path): the same ACK again
    again = session.response(reply(invite, 200, record_route=RECORD_ROUTE, body=ANSWER), 2.0)
    assert len(again) == 1 and isinstance(again[0], SendAck) and again[0].ack is ack


def test_strict_router_in_the_route_set():
    session, invite, _ = started()
    ok = reply(invite, 200, record_route=["<sip:strict.example.com>"], body=ANSWER)
    ack = wire(one(session.response(ok, 1.0), SendAck).ack)
    assert str(ack.uri) == "sip:strict.example.com"
    assert ack.headers.values("Route") == [BOB_CONTACT]


def test_busy_here_fails_the_call():
    session, invite, _ = started()
    session.response(reply(invite, 180), 0.1)
    actions = session.response(reply(invite, 486), 0.5)
    assert states(actions) == [("failed", 486, "Busy Here")]
    assert session.terminated and session._early == {}
    assert session.response(reply(invite, 180), 0.6) == []
    assert session.end(1.0) == [] and session.cancel(1.0) == []


def test_redirect_and_server_errors_fail_too():
    for status in (302, 404, 503, 603):
        session, invite, _ = started()
        assert states(session.response(reply(invite, status), 0.5))[0][:2] == ("failed", status)


def test_cancel_before_the_answer_then_487():
    session, invite, _ = started()
    session.response(reply(invite, 180), 0.1)
    actions = session.cancel(1.0)
    assert actions[0] == SendCancel("INVITE 1")
    assert states(actions) == [("ending", None, "cancelled")]
    assert session.cancel(1.1) == [] and session.end(1.1) == []
    assert session.response(reply(invite, 183, body=sdp("bob")), 1.2) == []  # no early media
    failed = session.response(reply(invite, 487), 1.5)
    assert states(failed) == [("failed", 487, "Request Terminated")]


def test_end_before_the_answer_is_a_cancel():
    session, _, _ = started()
    assert session.end(0.5)[0] == SendCancel("INVITE 1")


def test_a_2xx_after_cancel_is_acked_then_ended_with_bye():
    session, invite, _ = started()
    session.response(reply(invite, 180, record_route=RECORD_ROUTE), 0.1)
    session.cancel(1.0)
    actions = session.response(reply(invite, 200, record_route=RECORD_ROUTE, body=ANSWER), 1.1)
    assert [type(a) for a in actions] == [SendAck, SendRequest]  # ACK first, then BYE
    bye = wire(actions[1].request)
    assert bye.method == "BYE" and (bye.cseq.number, bye.cseq.method) == (2, "BYE")
    assert bye.to.tag == "bobtag" and bye.headers.values("Route")[0] == "<sip:p1.example.com;lr>"
    assert actions[1].key == "BYE 2"
    assert session.state is SessionState.ENDING
    # the 2xx again: ACK again, no second BYE
    again = session.response(reply(invite, 200, record_route=RECORD_ROUTE, body=ANSWER), 1.2)
    assert [type(a) for a in again] == [SendAck]
    done = session.response(reply(bye, 200), 1.3)
    assert states(done) == [("failed", None, "cancelled")]


def test_timer_b_fails_the_call_with_408():
    session, invite, _ = started()
    session.response(reply(invite, 180), 0.1)
    assert states(session.timeout(32.0)) == [("failed", 408, "Request Timeout")]
    assert session.timeout(33.0) == []


def test_transport_error_fails_the_call_with_503():
    session, _, _ = started()
    actions = session.transport_error(0.1, reason="connection refused by 192.0.2.2:5060")
    assert states(actions) == [("failed", 503, "connection refused by 192.0.2.2:5060")]


def test_early_media_answer_counts_when_the_2xx_has_no_sdp():
    session, invite, _ = started()
    early = sdp("bob", 1)
    session.response(reply(invite, 183, body=early), 0.1)
    actions = session.response(reply(invite, 200), 0.5)
    assert RemoteSdp(early, "answer") in actions
    assert session.state is SessionState.ESTABLISHED


def test_a_2xx_without_any_answer_is_acked_and_ended():
    session, invite, _ = started()
    actions = session.response(reply(invite, 200), 0.5)
    assert [type(a) for a in actions[:2]] == [SendAck, SendRequest]
    assert states(actions) == [("ending", 200, "no SDP answer in the 2xx")]
    bye = actions[1].request
    assert states(session.response(reply(bye, 200), 0.6)) == [
        ("ended", 200, "no SDP answer in the 2xx")]


def test_a_2xx_of_a_second_fork_is_acked_and_ended():
    session, invite, _ = started()
    session.response(reply(invite, 180, to_tag="fork1"), 0.1)
    session.response(reply(invite, 180, to_tag="fork2", contact="<sip:bob@192.0.2.9>"), 0.1)
    assert set(session._early) == {"fork1", "fork2"}
    session.response(reply(invite, 200, to_tag="fork1", body=ANSWER), 0.5)
    assert session.dialog.remote_tag == "fork1" and session._early == {}
    actions = session.response(reply(invite, 200, to_tag="fork2",
                                     contact="<sip:bob@192.0.2.9>", body=ANSWER), 0.6)
    ack, bye = actions
    assert isinstance(ack, SendAck) and wire(ack.ack).to.tag == "fork2"
    assert str(wire(ack.ack).uri) == "sip:bob@192.0.2.9"
    assert isinstance(bye, SendRequest) and wire(bye.request).method == "BYE"
    assert wire(bye.request).to.tag == "fork2"
    assert session.state is SessionState.ESTABLISHED  # our call goes on
    again = session.response(reply(invite, 200, to_tag="fork2", body=ANSWER), 0.7)
    assert len(again) == 1 and again[0].ack is ack.ack
    assert session.response(reply(bye.request, 200, to_tag="fork2"), 0.8) == []
    assert session.state is SessionState.ESTABLISHED


def test_resend_with_credentials_after_407():
    session, invite, _ = started()
    challenge = reply(invite, 407, to_tag="proxytag",
                      headers=[("Proxy-Authenticate", 'Digest realm="x", nonce="n"')])
    assert challenge.status == 407  # the driver answers it instead of feeding it
    retry = make_invite(cseq=2)
    actions = session.resend("INVITE 1", retry, 0.2)
    assert one(actions, SendRequest).key == "INVITE 2" and session.invite is retry
    ok = session.response(reply(retry, 200, body=ANSWER), 0.5)
    assert wire(one(ok, SendAck).ack).cseq.number == 2
    bye = one(session.end(1.0), SendRequest).request
    assert bye.cseq.number == 3


def test_a_challenge_fed_as_response_fails_the_call():
    session, invite, _ = started()
    assert states(session.response(reply(invite, 401), 0.1))[0][:2] == ("failed", 401)


def test_start_needs_an_sdp_offer():
    with pytest.raises(InviteSessionError, match="without SDP offer"):
        InviteSession().start(make_invite(body=b""), 0.0)
    with pytest.raises(InviteSessionError, match="no SDP offer"):
        InviteSession().start(make_invite(body=b"hello", content_type="text/plain"), 0.0)
    session, _, _ = started()
    with pytest.raises(InviteSessionError, match="started already"):
        session.start(make_invite(), 0.0)


def test_responses_to_unknown_requests_are_ignored():
    session, invite, _ = started()
    stray = reply(make_invite(cseq=99), 200, body=ANSWER)
    assert session.response(stray, 0.1) == []


def test_a_2xx_after_timer_b_is_acked_and_ended_without_reviving_the_call():
    session, invite, _ = started()
    session.timeout(32.0)
    actions = session.response(reply(invite, 200, body=ANSWER), 33.0)
    assert [type(a) for a in actions] == [SendAck, SendRequest]
    assert actions[1].request.method == "BYE" and states(actions) == []
    assert (session.state, session.code) == (SessionState.FAILED, 408)
    assert session.response(reply(actions[1].request, 200, contact=None), 33.1) == []
    assert (session.state, session.code) == (SessionState.FAILED, 408)
