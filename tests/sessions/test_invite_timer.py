"""RFC 4028 session timers in the INVITE session, sans-I/O: the headers of our INVITE and 2xx,
who refreshes, 422 both ways, refreshes with the offer unchanged, and the BYE when the
refresher lets the session expire."""

from __future__ import annotations

from sipd.sessions.invite.events import SendAck, SendRequest, SendResponse
from sipd.sessions.invite.session import InviteSession
from sipd.sessions.invite.timer import SessionTimerConfig

from .test_invite_peer import (
    ANSWER,
    BOB_CONTACT,
    OFFER,
    make_invite,
    of,
    one,
    reply,
    stamp_via,
    states,
    wire,
)
from .test_invite_uas import Caller

CONFIG = SessionTimerConfig(interval=600, min_se=90)


def calling(config: SessionTimerConfig = CONFIG):
    session = InviteSession(session_timer=config)
    invite = make_invite()
    actions = session.start(invite, 0.0)
    return session, wire(stamp_via(one(actions, SendRequest).request))


def established(se: str, now: float = 0.0):
    session, invite = calling()
    actions = session.response(reply(invite, 200, body=ANSWER,
                                     headers=[("Session-Expires", se)]), now)
    assert states(actions) == [("established", 200, "OK")]
    return session, invite


def test_our_invite_asks_for_the_interval_and_says_it_supports_timers():
    _, invite = calling()
    assert invite.headers.get("Session-Expires") == "600"
    assert invite.headers.get("Min-SE") == "90"
    assert "timer" in invite.supported


def test_a_422_is_answered_by_asking_again_for_its_min_se():
    session, invite = calling(SessionTimerConfig(interval=100, min_se=90))
    actions = session.response(reply(invite, 422, headers=[("Min-SE", "1800")]), 0.5)

    assert states(actions) == []
    retry = one(actions, SendRequest).request
    assert retry.headers.get("Session-Expires") == "1800"
    assert retry.headers.get("Min-SE") == "1800"
    assert retry.cseq.number == invite.cseq.number + 1 and retry.call_id == invite.call_id
    assert retry.headers.values("Via") == []
    # The same Min-SE again is not asked for a third time: the call fails.
    again = session.response(reply(wire(stamp_via(retry)), 422,
                                   headers=[("Min-SE", "1800")]), 1.0)
    assert states(again) == [("failed", 422, "Session Interval Too Small")]


def test_the_refresher_refreshes_at_half_the_interval_with_the_offer_unchanged():
    session, _ = established("120;refresher=uac", now=10.0)
    assert session.next_deadline() == 70.0

    actions = session.timer(70.0)

    refresh = one(actions, SendRequest).request
    assert refresh.method == "INVITE" and refresh.body == OFFER
    assert refresh.headers.get("Session-Expires") == "120;refresher=uac"
    # Its 2xx starts the interval again.
    ok = reply(wire(stamp_via(refresh)), 200, body=ANSWER,
               headers=[("Session-Expires", "120;refresher=uac")])
    session.response(ok, 71.0)
    assert session.next_deadline() == 131.0


def test_a_session_the_remote_should_refresh_ends_when_it_expires():
    session, _ = established("120;refresher=uas")
    assert session.next_deadline() == 120 - 32

    actions = session.timer(88.0)

    bye = one(actions, SendRequest).request
    assert bye.method == "BYE"
    assert states(actions) == [("ending", None, "session timer expired")]
    over = session.response(reply(wire(stamp_via(bye)), 200), 89.0)
    assert states(over) == [("failed", None, "session timer expired")]


def test_a_2xx_without_session_expires_means_no_timer():
    session, invite = calling()
    session.response(reply(invite, 200, body=ANSWER), 0.0)
    assert session.next_deadline() is None


def incoming(headers, config: SessionTimerConfig = CONFIG):
    invite = make_invite()
    for name, value in headers:
        invite.headers.add(name, value)
    invite = wire(invite)
    session = InviteSession(session_timer=config)
    actions = session.incoming(invite, 0.0, contact=BOB_CONTACT, ref=object())
    return session, invite, actions


def test_an_interval_below_our_min_se_gets_422():
    session, _, actions = incoming([("Session-Expires", "60")])
    response = one(actions, SendResponse)
    assert response.status == 422 and ("Min-SE", "90") in response.headers
    assert states(actions) == [("failed", 422, "Session Interval Too Small")]


def test_a_caller_that_supports_timers_refreshes():
    session, invite, _ = incoming([("Supported", "timer"), ("Session-Expires", "1800")])
    ok = one(session.accept(ANSWER, 5.0), SendResponse)
    # Lowered to ours (600), the caller refreshes: it must know it (Require: timer).
    assert ("Session-Expires", "600;refresher=uac") in ok.headers
    assert ("Require", "timer") in ok.headers
    session.request(Caller(invite).ack_for(ok), 5.1)
    assert session.next_deadline() == 5.0 + 600 - 32


def test_a_caller_without_timers_gets_them_with_us_refreshing():
    session, invite, _ = incoming([])
    ok = one(session.accept(ANSWER, 0.0), SendResponse)
    assert ("Session-Expires", "600;refresher=uas") in ok.headers
    assert not any(name == "Require" for name, _ in ok.headers)
    session.request(Caller(invite).ack_for(ok), 0.1)

    refresh = one(session.timer(300.0), SendRequest).request
    assert refresh.method == "INVITE" and refresh.body == ANSWER  # our last SDP, unchanged
    assert refresh.headers.get("Session-Expires") == "600;refresher=uac"


def test_no_session_timer_of_ours_still_grants_the_callers():
    off = SessionTimerConfig(interval=0, min_se=90)
    session, _, _ = incoming([], off)
    ok = one(session.accept(ANSWER, 0.0), SendResponse)
    assert not any(name == "Session-Expires" for name, _ in ok.headers)

    session, _, _ = incoming([("Supported", "timer"), ("Session-Expires", "300")], off)
    ok = one(session.accept(ANSWER, 0.0), SendResponse)
    assert ("Session-Expires", "300;refresher=uac") in ok.headers


def test_a_remote_refresh_starts_the_interval_again():
    session, invite, _ = incoming([("Supported", "timer"),
                                   ("Session-Expires", "300;refresher=uac")])
    caller = Caller(invite)
    ok = one(session.accept(ANSWER, 0.0), SendResponse)
    session.request(caller.ack_for(ok), 0.1)
    assert session.next_deadline() == 300 - 32

    reinvite = caller.dialog.create_request(
        "INVITE", headers=[("Session-Expires", "300;refresher=uac"), ("Supported", "timer")],
        body=OFFER, content_type="application/sdp")
    ref = object()
    session.request(wire(stamp_via(reinvite)), 150.0, ref=ref)
    answered = one(session.answer_reinvite(ANSWER, 150.0), SendResponse)
    assert ("Session-Expires", "300;refresher=uac") in answered.headers
    assert session.session_timer.next_deadline() == 150 + 300 - 32
    ack = caller.dialog.create_ack(reinvite.cseq.number)
    session.request(wire(stamp_via(ack)), 150.1)
    assert session.next_deadline() == 150 + 300 - 32
    assert of(session.timer(268.0), SendAck, SendRequest) == []  # not expired any more


def test_a_refresh_refused_422_goes_again_with_its_min_se():
    session, _ = established("120;refresher=uac")
    refresh = wire(stamp_via(one(session.timer(60.0), SendRequest).request))

    assert session.response(reply(refresh, 422, headers=[("Min-SE", "300")]), 60.5) == []

    again = one(session.timer(60.5), SendRequest).request
    assert again.method == "INVITE" and again.cseq.number == refresh.cseq.number + 1
    assert again.headers.get("Session-Expires") == "300;refresher=uac"
    assert again.headers.get("Min-SE") == "300"


def test_a_refresh_that_times_out_ends_the_call_failed():
    session, _ = established("120;refresher=uac")
    refresh = one(session.timer(60.0), SendRequest)

    actions = session.timeout(92.0, refresh.key)

    assert one(actions, SendRequest).request.method == "BYE"
    assert states(actions) == [("ending", 408, "session timer expired: the refresh got no "
                                               "answer")]


def test_a_refresh_refused_otherwise_is_tried_again_before_the_session_expires():
    session, _ = established("120;refresher=uac")
    refresh = wire(stamp_via(one(session.timer(60.0), SendRequest).request))
    session.response(reply(refresh, 500), 60.5)

    # Half the time left: at 90 s, and the call still stands.
    assert session.next_deadline() == 90.0
    assert one(session.timer(90.0), SendRequest).request.method == "INVITE"
