"""The subscriber (RFC 6665), fed what a notifier sends: SUBSCRIBE and its headers, NOTIFY
before and after the 2xx, refresh, 423, digest retries, 481 and terminated NOTIFYs with each
reason, forked NOTIFYs, unsubscribe, Timer N, and what it answers to NOTIFYs it does not
hold."""

from __future__ import annotations

import pytest

from sipd.presence.actions import ClaimDialog, DialogKey, ReleaseDialog, SendRequest, SendResponse
from sipd.presence.events import Notified, SubscriptionChanged, SubscriptionState
from sipd.presence.payload import PIDF_TYPE
from sipd.presence.subscriber import Subscriber, SubscriberError, SubscribeTarget
from sipd.sip.header_values import Address, parse_address
from sipd.sip.uri import parse_uri

from .peer import ALICE, ALICE_CONTACT, BOB_URI, notify, reply, wire

RR = ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")


class NoJitter:
    def random(self) -> float:
        return 0.0


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def one(actions, kind):
    found = of(actions, kind)
    assert len(found) == 1, actions
    return found[0]


def states(actions):
    return [(a.state.value, a.reason, a.code) for a in of(actions, SubscriptionChanged)]


def answer(actions):
    response = one(actions, SendResponse)
    return response.status


def make(**kwargs) -> Subscriber:
    target = SubscribeTarget(BOB_URI, from_=ALICE, contact=ALICE_CONTACT,
                             routes=(parse_address("<sip:proxy.example.com;lr>"),),
                             headers=(("User-Agent", "sipd-test"),))
    kwargs.setdefault("accept", (PIDF_TYPE,))
    return Subscriber(target, rng=NoJitter(), **kwargs)


def started(**kwargs):
    sub = make(**kwargs)
    actions = sub.start(0.0)
    send = one(actions, SendRequest)
    return sub, send.request, send.key


def active(sub, subscribe, key, now=1.0, tag="bobtag"):
    """The 200 and the first NOTIFY (active, an hour)."""
    assert sub.response(key, reply(subscribe, 200, tag=tag, headers=[("Expires", "3600")],
                                   record_route=RR), now) == []
    actions = sub.notify(notify(subscribe, tag=tag), now)
    assert answer(actions) == 200
    return actions


def test_start_claims_the_dialog_and_sends_the_subscribe():
    sub = make()
    actions = sub.start(0.0)
    claim = one(actions, ClaimDialog)
    send = one(actions, SendRequest)
    assert actions.index(claim) < actions.index(send)
    assert send.dialog is None and states(actions) == [("subscribing", None, None)]
    sent = wire(send.request)
    assert sent.method == "SUBSCRIBE" and str(sent.uri) == "sip:bob@example.com"
    assert claim.key == DialogKey(sent.call_id, sent.from_.tag) == sub.dialog_key
    assert sent.headers.get("Event") == "presence"
    assert sent.headers.get("Accept") == "application/pidf+xml"
    assert sent.expires == 3600 and "Supported" not in sent.headers
    assert sent.contacts[0].uri == ALICE_CONTACT.uri
    assert sent.headers.values("Route") == ["<sip:proxy.example.com;lr>"]
    assert sent.headers.get("User-Agent") == "sipd-test"
    assert sub.next_deadline() == 32.0  # Timer N
    with pytest.raises(SubscriberError):
        sub.start(1.0)


def test_a_list_subscription_says_eventlist_and_accepts_rlmi():
    _, subscribe, _ = started(eventlist=True, expires=600)
    sent = wire(subscribe)
    assert sent.supported == ["eventlist"] and sent.expires == 600
    assert sent.headers.get("Accept") == \
        "application/pidf+xml, multipart/related, application/rlmi+xml"


def test_200_then_notify_makes_it_active_and_schedules_the_refresh():
    sub, subscribe, key = started()
    actions = active(sub, subscribe, key)
    note = one(actions, Notified)
    assert note.first and note.state == "active" and note.dialog.remote_tag == "bobtag"
    assert states(actions) == [("active", None, None)]
    assert one(actions, SubscriptionChanged).expires == 3600
    # 80 % of the hour after the NOTIFY's expires (the 2xx said the same)
    assert sub.next_deadline() == pytest.approx(1.0 + 2880)
    assert sub.state is SubscriptionState.ACTIVE

    refresh = sub.timer(2881.0)
    send = one(refresh, SendRequest)
    sent = wire(send.request)
    assert send.dialog == sub.dialogs[0].id
    assert str(sent.uri) == "sip:bob@192.0.2.2:5062"  # the notifier's Contact
    assert sent.headers.values("Route") == list(reversed(RR))
    assert sent.to.tag == "bobtag" and sent.cseq.number == 2 and sent.expires == 3600
    assert sub.next_deadline() == pytest.approx(3601.0)  # only the expiry while it is out
    assert sub.response(send.key, reply(send.request, 200, headers=[("Expires", "1800")]),
                        2882.0) == []
    assert sub.next_deadline() == pytest.approx(2882.0 + 1440)


def test_a_notify_before_the_200_creates_the_dialog():
    sub, subscribe, key = started()
    actions = sub.notify(notify(subscribe, record_route=RR), 0.5)
    assert answer(actions) == 200 and states(actions) == [("active", None, None)]
    assert one(actions, Notified).first
    dialog = sub.dialogs[0]
    # route set and target as a UAS takes them from the NOTIFY
    assert [str(r) for r in dialog.route_set] == list(RR)
    assert str(dialog.remote_target) == "sip:bob@192.0.2.2:5062"
    assert sub.response(key, reply(subscribe, 200, headers=[("Expires", "3600")]), 0.6) == []
    assert len(sub.dialogs) == 1
    # no Timer N any more: the next thing is the refresh
    assert sub.next_deadline() > 100


def test_a_body_is_handed_over_with_its_type():
    sub, subscribe, key = started()
    actions = sub.notify(notify(subscribe, body=b"<presence/>", content_type=PIDF_TYPE), 0.5)
    note = one(actions, Notified)
    assert note.body == b"<presence/>" and note.content_type == PIDF_TYPE
    again = sub.notify(notify(subscribe, cseq=2, body=b"<x/>", content_type=PIDF_TYPE), 0.6)
    assert not one(again, Notified).first and states(again) == []


def test_pending_then_active():
    sub, subscribe, key = started()
    pending = sub.notify(notify(subscribe, state="pending;expires=3600"), 0.5)
    assert states(pending) == [("pending", None, None)]
    now_active = sub.notify(notify(subscribe, cseq=2), 10.0)
    assert states(now_active) == [("active", None, None)]


def test_423_raises_the_expiry_to_min_expires_and_retries():
    sub, subscribe, key = started(expires=60)
    actions = sub.response(key, reply(subscribe, 423, headers=[("Min-Expires", "1800")]), 0.2)
    send = one(actions, SendRequest)
    again = wire(send.request)
    first = wire(subscribe)
    assert again.expires == 1800 and sub.expires == 1800
    assert again.call_id == first.call_id and again.from_.tag == first.from_.tag
    assert again.cseq.number == first.cseq.number + 1 and send.dialog is None
    assert states(actions) == []
    # a 423 whose Min-Expires is no higher: the end, with the code
    end = sub.response(send.key, reply(send.request, 423, headers=[("Min-Expires", "60")]), 0.3)
    assert states(end) == [("terminated", "Interval Too Brief", 423)]
    assert of(end, ReleaseDialog)


def test_423_on_a_refresh_refreshes_again_with_min_expires():
    sub, subscribe, key = started(expires=600)
    active(sub, subscribe, key)
    refresh = one(sub.timer(sub.next_deadline()), SendRequest)
    actions = sub.response(refresh.key, reply(refresh.request, 423,
                                              headers=[("Min-Expires", "900")]), 500.0)
    again = one(actions, SendRequest)
    assert wire(again.request).expires == 900 and again.dialog == refresh.dialog
    assert wire(again.request).cseq.number == wire(refresh.request).cseq.number + 1


def test_a_challenge_is_answered_through_resend():
    sub, subscribe, key = started()
    copy = wire(subscribe)
    copy.headers.remove("Via")
    copy.headers.set("CSeq", "2 SUBSCRIBE")
    copy.headers.add("Authorization", 'Digest username="alice"')
    actions = sub.resend(key, copy, 0.2)
    send = one(actions, SendRequest)
    assert send.request is copy and send.key != key and send.dialog is None
    assert sub.response(key, reply(subscribe, 200), 0.3) == []  # the old key is gone
    assert sub.response(send.key, reply(copy, 200, headers=[("Expires", "3600")]), 0.3) == []
    assert states(sub.notify(notify(copy), 0.4)) == [("active", None, None)]
    # the refresh continues the dialog's CSeq after the authorised copy
    refresh = one(sub.timer(sub.next_deadline()), SendRequest)
    assert wire(refresh.request).cseq.number == 3
    with pytest.raises(SubscriberError):
        sub.resend("no such key", copy, 1.0)


def test_challenges_without_end_fail():
    sub, subscribe, key = started()
    for _ in range(3):
        key = one(sub.resend(key, subscribe.copy(), 0.1), SendRequest).key
    actions = sub.resend(key, subscribe.copy(), 0.2)
    assert states(actions) == [("terminated", "authentication failed", 401)]


@pytest.mark.parametrize("reason", ["deactivated", "timeout"])
def test_terminated_deactivated_or_timeout_subscribes_again_at_once(reason):
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    actions = sub.notify(notify(subscribe, cseq=2, state=f"terminated;reason={reason}"), 100.0)
    assert answer(actions) == 200
    released, claimed = one(actions, ReleaseDialog), one(actions, ClaimDialog)
    send = one(actions, SendRequest)
    assert actions.index(released) < actions.index(claimed) < actions.index(send)
    new = wire(send.request)
    assert released.key.call_id == wire(subscribe).call_id != new.call_id
    assert new.to.tag is None and send.dialog is None
    assert states(actions) == [("subscribing", reason, None)]
    # a NOTIFY in the old dialog is no longer ours
    late = sub.notify(notify(subscribe, cseq=3), 100.5)
    assert answer(late) == 481

    # ended again right away: not at once this time, but after a backoff
    active(sub, send.request, send.key, now=101.0)
    again = sub.notify(notify(send.request, cseq=2, state=f"terminated;reason={reason}"),
                       102.0)
    assert states(again) == [("retrying", reason, None)] and not of(again, SendRequest)
    retry_at = one(again, SubscriptionChanged).retry_at
    assert retry_at == pytest.approx(104.0) and sub.next_deadline() == retry_at
    assert one(sub.timer(retry_at), SendRequest)


def test_a_subscription_active_for_a_while_resubscribes_at_once_again():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    first = sub.notify(notify(subscribe, cseq=2, state="terminated;reason=deactivated"), 100.0)
    send = one(first, SendRequest)
    active(sub, send.request, send.key, now=101.0)
    later = sub.notify(notify(send.request, cseq=2, state="terminated;reason=deactivated"),
                       500.0)
    assert one(later, SendRequest)


@pytest.mark.parametrize("reason", ["rejected", "noresource", "invariant"])
def test_terminated_rejected_or_noresource_ends_it(reason):
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    actions = sub.notify(notify(subscribe, cseq=2, state=f"terminated;reason={reason}"), 5.0)
    assert answer(actions) == 200
    assert states(actions) == [("terminated", reason, None)]
    assert of(actions, ReleaseDialog) and not of(actions, SendRequest)
    assert sub.finished and sub.next_deadline() is None


def test_rejected_in_the_first_notify():
    sub, subscribe, key = started()
    actions = sub.notify(notify(subscribe, state="terminated;reason=rejected"), 0.5)
    assert answer(actions) == 200 and states(actions) == [("terminated", "rejected", None)]


def test_probation_retries_after_retry_after():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    actions = sub.notify(notify(subscribe, cseq=2,
                                state="terminated;reason=probation;retry-after=120"), 10.0)
    assert states(actions) == [("retrying", "probation", None)]
    assert one(actions, SubscriptionChanged).retry_at == 130.0
    assert sub.timer(129.0) == []
    assert wire(one(sub.timer(130.0), SendRequest).request).method == "SUBSCRIBE"


def test_a_mangled_subscription_state_still_ends_the_subscription():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    # linphone 5: the reason cannot be read, the substate can
    actions = sub.notify(notify(subscribe, cseq=2, state="terminated;reason=reason=noresource"),
                         10.0)
    assert answer(actions) == 200
    assert states(actions) == [("retrying", None, None)]  # no reason: try later


def test_481_on_refresh_subscribes_again():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    refresh = one(sub.timer(sub.next_deadline()), SendRequest)
    actions = sub.response(refresh.key, reply(refresh.request, 481), 2900.0)
    assert of(actions, ReleaseDialog) and of(actions, ClaimDialog)
    assert states(actions) == [("subscribing", "481 Call/Transaction Does Not Exist", 481)]
    assert one(actions, SendRequest).dialog is None


def test_404_on_refresh_ends_it():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    refresh = one(sub.timer(sub.next_deadline()), SendRequest)
    actions = sub.response(refresh.key, reply(refresh.request, 404), 2900.0)
    assert states(actions) == [("terminated", "404 Not Found", 404)]


def test_a_failed_refresh_keeps_the_subscription_until_it_lapses():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    refresh = one(sub.timer(2881.0), SendRequest)
    assert sub.response(refresh.key, reply(refresh.request, 500), 2882.0) == []
    assert sub.state is SubscriptionState.ACTIVE
    assert sub.next_deadline() == pytest.approx(2912.0)  # tried again 30 s later
    second = one(sub.timer(2912.0), SendRequest)
    assert sub.no_response(second.key, 2944.0, "timed out") == []
    third = one(sub.timer(sub.next_deadline()), SendRequest)
    assert sub.no_response(third.key, 3590.0) == []
    # the hour is over: a fresh SUBSCRIBE
    lapsed = sub.timer(3601.0)
    assert of(lapsed, ReleaseDialog) and one(lapsed, SendRequest).dialog is None
    assert states(lapsed) == [("subscribing", "timeout", None)]


@pytest.mark.parametrize("status, retry_at", [(503, 30.5), (408, 5.5), (480, 5.5)])
def test_a_transient_failure_is_retried_later(status, retry_at):
    sub, subscribe, key = started()
    headers = [("Retry-After", "30")] if status == 503 else []
    actions = sub.response(key, reply(subscribe, status, headers=headers), 0.5)
    assert states(actions)[0][0] == "retrying" and states(actions)[0][2] == status
    assert one(actions, SubscriptionChanged).retry_at == retry_at
    assert of(actions, ReleaseDialog)
    assert one(sub.timer(retry_at), SendRequest)


def test_no_response_is_retried_with_a_growing_backoff():
    sub, subscribe, key = started()
    first = sub.no_response(key, 32.0, "timed out")
    assert states(first) == [("retrying", "timed out", 408)]
    assert one(first, SubscriptionChanged).retry_at == 37.0
    key = one(sub.timer(37.0), SendRequest).key
    second = sub.no_response(key, 69.0)
    assert one(second, SubscriptionChanged).retry_at == 79.0


@pytest.mark.parametrize("status", [403, 404, 489, 603])
def test_a_permanent_failure_ends_it(status):
    sub, subscribe, key = started()
    actions = sub.response(key, reply(subscribe, status), 0.5)
    assert states(actions)[0][0] == "terminated" and states(actions)[0][2] == status
    assert sub.finished


def test_timer_n_no_notify_after_the_200():
    sub, subscribe, key = started()
    sub.response(key, reply(subscribe, 200, headers=[("Expires", "3600")]), 0.5)
    assert sub.next_deadline() == 32.0
    actions = sub.timer(32.0)
    assert states(actions) == [("retrying", "no NOTIFY came within 32 s", None)]


def test_forked_notifies_make_dialogs_of_their_own():
    sub, subscribe, key = started()
    first = sub.notify(notify(subscribe, tag="fork1"), 0.5)
    second = sub.notify(notify(subscribe, tag="fork2", state="pending;expires=600",
                               contact="<sip:bob@192.0.2.3>"), 0.6)
    assert answer(second) == 200 and one(second, Notified).dialog.remote_tag == "fork2"
    assert states(first) == [("active", None, None)] and states(second) == []
    assert {d.remote_tag for d in sub.dialogs} == {"fork1", "fork2"}
    # each is refreshed on its own, the pending one (10 minutes) first
    refresh = one(sub.timer(sub.next_deadline()), SendRequest)
    assert refresh.dialog.remote_tag == "fork2"
    assert str(wire(refresh.request).uri) == "sip:bob@192.0.2.3"
    # one of them ends: still active through the other
    gone = sub.notify(notify(subscribe, tag="fork1", cseq=2,
                             state="terminated;reason=noresource"), 10.0)
    assert answer(gone) == 200 and states(gone) == [("pending", None, None)]
    last = sub.notify(notify(subscribe, tag="fork2", cseq=2,
                             state="terminated;reason=rejected"), 11.0)
    assert states(last) == [("terminated", "rejected", None)]


def test_forks_beyond_the_limit_get_481():
    sub, subscribe, key = started()
    for n in range(8):
        assert answer(sub.notify(notify(subscribe, tag=f"f{n}"), 0.5)) == 200
    assert answer(sub.notify(notify(subscribe, tag="f8"), 0.5)) == 481


def test_notifies_we_do_not_hold():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    assert answer(sub.notify(notify(subscribe, cseq=2, event="dialog"), 1.0)) == 489
    assert answer(sub.notify(notify(subscribe, cseq=2, event="presence;id=7"), 1.0)) == 481
    assert answer(sub.notify(notify(subscribe, cseq=2, state=None), 1.0)) == 400
    assert answer(sub.notify(notify(subscribe, cseq=2, call_id="other@x"), 1.0)) == 481
    assert answer(sub.notify(notify(subscribe, cseq=2, to_tag="nottag"), 1.0)) == 481
    # an old CSeq in a dialog: out of order
    assert answer(sub.notify(notify(subscribe, cseq=3), 1.0)) == 200
    assert answer(sub.notify(notify(subscribe, cseq=2), 1.0)) == 500


def test_unsubscribe_sends_expires_0_and_waits_for_the_final_notify():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    actions = sub.unsubscribe(10.0)
    send = one(actions, SendRequest)
    sent = wire(send.request)
    assert sent.expires == 0 and sent.to.tag == "bobtag" and send.dialog is not None
    assert states(actions) == [("terminated", "unsubscribed", None)]
    assert not sub.finished and not of(actions, ReleaseDialog)
    assert sub.response(send.key, reply(send.request, 200, headers=[("Expires", "0")]),
                        10.1) == []
    final = sub.notify(notify(subscribe, cseq=2, state="terminated;reason=timeout",
                              body=b"<presence/>", content_type=PIDF_TYPE), 10.2)
    assert answer(final) == 200 and of(final, ReleaseDialog)
    assert not of(final, Notified) and not of(final, SendRequest)
    assert sub.finished and sub.next_deadline() is None
    assert sub.unsubscribe(11.0) == [] and sub.refresh(11.0) == []


def test_unsubscribe_gives_up_waiting_after_64_t1():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    sub.unsubscribe(10.0)
    assert sub.next_deadline() == 42.0
    assert of(sub.timer(42.0), ReleaseDialog) and sub.finished


def test_unsubscribe_before_any_answer():
    sub, subscribe, key = started()
    actions = sub.unsubscribe(0.1)
    assert states(actions) == [("terminated", "unsubscribed", None)]
    # a fork that notifies now is refused; the 2xx's dialog is ended with Expires: 0
    assert answer(sub.notify(notify(subscribe, tag="late"), 0.2)) == 481
    ended = sub.response(key, reply(subscribe, 200, headers=[("Expires", "3600")]), 0.3)
    assert wire(one(ended, SendRequest).request).expires == 0
    assert of(sub.no_response(one(ended, SendRequest).key, 32.0), ReleaseDialog)
    assert sub.finished


def test_unsubscribe_while_retrying_is_immediate():
    sub, subscribe, key = started()
    sub.response(key, reply(subscribe, 503), 0.5)
    actions = sub.unsubscribe(1.0)
    assert states(actions) == [("terminated", "unsubscribed", None)]
    assert sub.finished and sub.next_deadline() is None


def test_a_notify_may_bring_the_refresh_forward_not_put_it_off():
    sub, subscribe, key = started()
    active(sub, subscribe, key)  # refresh at 2881
    sub.notify(notify(subscribe, cseq=2, state="active;expires=100"), 1000.0)
    assert sub.next_deadline() == pytest.approx(1070.0)  # 30 s before the 100 s run out
    sub2, subscribe2, key2 = started()
    active(sub2, subscribe2, key2)
    sub2.notify(notify(subscribe2, cseq=2, state="active;expires=2600"), 1000.0)
    assert sub2.next_deadline() == pytest.approx(2881.0)


def test_update_contact_refreshes_with_the_new_contact():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    contact = Address(parse_uri("sip:alice@198.51.100.7:5060"))
    send = one(sub.update_contact(contact, 100.0), SendRequest)
    assert wire(send.request).contacts[0].uri == contact.uri


def test_refresh_on_demand_and_while_retrying():
    sub, subscribe, key = started()
    active(sub, subscribe, key)
    assert one(sub.refresh(50.0), SendRequest).dialog is not None
    assert sub.refresh(51.0) == []  # already on its way
    other, subscribe2, key2 = started()
    other.response(key2, reply(subscribe2, 503), 0.5)
    assert one(other.refresh(1.0), SendRequest).dialog is None
