"""The notifier (RFC 6665) as sipd's own presence agent: accepting a SUBSCRIBE, pending until
the user decides, NOTIFY on change and on refresh, one NOTIFY at a time, expiry,
unsubscription, shutdown, NOTIFY failures; and a subscriber and a notifier talking to each
other through the wire format."""

from __future__ import annotations

import pytest

from sipd.presence.actions import ClaimDialog, ReleaseDialog, SendRequest, SendResponse
from sipd.presence.events import (
    Notified,
    SubscriptionChanged,
    WatcherChanged,
    WatcherState,
)
from sipd.presence.notifier import Notifier, NotifierError, NotifierPolicy
from sipd.presence.payload import PIDF_TYPE
from sipd.presence.subscriber import Subscriber, SubscribeTarget
from sipd.sip.builder import build_request
from sipd.sip.header_values import Address
from sipd.sip.message import Request
from sipd.sip.uri import parse_uri

from .peer import ALICE, ALICE_CONTACT, BOB_URI, reply, wire

BOB_CONTACT = Address(parse_uri("sip:bob@192.0.2.2:5062"))
DOC1 = b"<presence>1</presence>"
DOC2 = b"<presence>2</presence>"


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def one(actions, kind):
    found = of(actions, kind)
    assert len(found) == 1, actions
    return found[0]


def watchers(actions):
    return [(a.state.value, a.event) for a in of(actions, WatcherChanged)]


def subscribe_request(expires: int | None = 3600, event: str = "presence",
                      accept: str | None = None, record_route=()) -> Request:
    headers = [("Event", event)]
    if expires is not None:
        headers.append(("Expires", str(expires)))
    if accept is not None:
        headers.append(("Accept", accept))
    for route in record_route:
        headers.append(("Record-Route", route))
    request = build_request("SUBSCRIBE", BOB_URI, from_=ALICE, to=Address(BOB_URI),
                            contact=ALICE_CONTACT, headers=headers)
    return wire(request)


def notify_state(send: SendRequest):
    sent = wire(send.request)
    return sent.headers.get("Subscription-State"), sent.body


def make(body=DOC1) -> Notifier:
    return Notifier(event="presence", contact=BOB_CONTACT, content_type=PIDF_TYPE, body=body)


def accepted(decision="pending", expires=3600):
    notifier = make()
    request = subscribe_request(expires, record_route=("<sip:p1.example.com;lr>",))
    actions = notifier.subscribe(request, 0.0, decision=decision)
    return notifier, request, actions


def test_a_pending_watcher_gets_200_and_a_bodiless_notify():
    notifier, request, actions = accepted()
    ok = one(actions, SendResponse)
    assert ok.status == 200 and ok.ref is request and ok.to_tag
    assert dict(ok.headers) == {"Expires": "3600", "Contact": str(BOB_CONTACT)}
    claim = one(actions, ClaimDialog)
    assert (claim.key.call_id, claim.key.local_tag) == (request.call_id, ok.to_tag)
    assert watchers(actions) == [("pending", "subscribe")]
    assert notifier.watcher == "sip:alice@example.com" and notifier.display_name == "Alice"
    send = one(actions, SendRequest)
    sent = wire(send.request)
    assert sent.method == "NOTIFY" and str(sent.uri) == "sip:alice@192.0.2.1:5060"
    assert sent.headers.values("Route") == ["<sip:p1.example.com;lr>"]
    assert sent.from_.tag == ok.to_tag and sent.to.tag == request.from_.tag
    assert sent.headers.get("Event") == "presence"
    assert notify_state(send) == ("pending;expires=3600", b"")
    assert notifier.next_deadline() == 3600.0
    # authorised: active, with the document
    assert notifier.response(send.key, reply(send.request, 200), 0.1) == []
    allowed = notifier.authorize(True, 5.0)
    assert watchers(allowed) == [("active", "approved")]
    state, body = notify_state(one(allowed, SendRequest))
    assert state == "active;expires=3595" and body == DOC1
    assert wire(one(allowed, SendRequest).request).content_type.mime == PIDF_TYPE


def test_an_allowed_watcher_is_active_at_once_and_told_of_changes():
    notifier, request, actions = accepted("allow")
    assert watchers(actions) == [("active", "approved")]
    first = one(actions, SendRequest)
    assert notify_state(first) == ("active;expires=3600", DOC1)
    # a change while the first NOTIFY is out waits for its answer, and only the latest goes
    assert notifier.update(DOC2, 1.0) == []
    assert notifier.update(b"<presence>3</presence>", 1.1) == []
    nxt = one(notifier.response(first.key, reply(first.request, 200), 1.2), SendRequest)
    assert notify_state(nxt)[1] == b"<presence>3</presence>"
    assert wire(nxt.request).cseq.number == wire(first.request).cseq.number + 1
    assert notifier.response(nxt.key, reply(nxt.request, 200), 1.3) == []
    assert notifier.update(b"<presence>3</presence>", 2.0) == []  # no change, no NOTIFY


def test_202_for_pending_watchers_when_asked():
    notifier = Notifier(contact=BOB_CONTACT, body=DOC1, policy=NotifierPolicy(pending_status=202))
    answer = one(notifier.subscribe(subscribe_request(), 0.0), SendResponse)
    assert (answer.status, answer.reason) == (202, "Accepted")
    allowed = Notifier(contact=BOB_CONTACT, body=DOC1, policy=NotifierPolicy(pending_status=202))
    assert one(allowed.subscribe(subscribe_request(), 0.0, decision="allow"),
               SendResponse).status == 200


def test_denied_watchers_get_403():
    notifier = make()
    actions = notifier.subscribe(subscribe_request(), 0.0, decision="deny")
    assert one(actions, SendResponse).status == 403 and not of(actions, ClaimDialog)


def test_rejecting_a_pending_watcher_ends_it():
    notifier, _, actions = accepted()
    first = one(actions, SendRequest)
    notifier.response(first.key, reply(first.request, 200), 0.1)
    rejected = notifier.authorize(False, 3.0)
    assert watchers(rejected) == [("terminated", "rejected")]
    final = one(rejected, SendRequest)
    assert notify_state(final) == ("terminated;reason=rejected", b"")
    done = notifier.response(final.key, reply(final.request, 200), 3.1)
    assert of(done, ReleaseDialog) and notifier.finished
    assert notifier.authorize(True, 4.0) == []


def refresh_of(request: Request, ok: SendResponse, expires: int, cseq: int) -> Request:
    refresh = wire(request)
    refresh.headers.remove("Via")
    to = refresh.to
    to.tag = ok.to_tag
    refresh.headers.set("To", str(to))
    refresh.headers.set("CSeq", f"{cseq} SUBSCRIBE")
    refresh.headers.set("Expires", str(expires))
    return wire(refresh)


def test_a_refresh_is_answered_and_notified():
    notifier, request, actions = accepted("allow")
    ok = one(actions, SendResponse)
    first = one(actions, SendRequest)
    notifier.response(first.key, reply(first.request, 200), 0.1)
    again = notifier.subscribe(refresh_of(request, ok, 1800, 2), 1000.0)
    assert one(again, SendResponse).status == 200
    assert dict(one(again, SendResponse).headers)["Expires"] == "1800"
    assert notify_state(one(again, SendRequest)) == ("active;expires=1800", DOC1)
    assert notifier.next_deadline() == 2800.0
    # an old CSeq is out of order
    assert one(notifier.subscribe(refresh_of(request, ok, 1800, 1), 1001.0),
               SendResponse).status == 500


def test_unsubscribe_gets_a_final_notify_with_the_state():
    notifier, request, actions = accepted("allow")
    ok = one(actions, SendResponse)
    first = one(actions, SendRequest)
    notifier.response(first.key, reply(first.request, 200), 0.1)
    ended = notifier.subscribe(refresh_of(request, ok, 0, 2), 10.0)
    assert one(ended, SendResponse).status == 200
    assert watchers(ended) == [("terminated", "timeout")]
    final = one(ended, SendRequest)
    assert notify_state(final) == ("terminated;reason=timeout", DOC1)
    assert of(notifier.response(final.key, reply(final.request, 200), 10.1), ReleaseDialog)
    assert one(notifier.subscribe(refresh_of(request, ok, 60, 3), 11.0),
               SendResponse).status == 481


def test_expiry():
    notifier, request, actions = accepted("allow", expires=600)
    first = one(actions, SendRequest)
    notifier.response(first.key, reply(first.request, 200), 0.1)
    assert notifier.timer(599.0) == []
    expired = notifier.timer(600.0)
    assert watchers(expired) == [("terminated", "timeout")]
    assert notify_state(one(expired, SendRequest))[0] == "terminated;reason=timeout"
    assert notifier.next_deadline() is None


def test_shutdown_terminates_with_the_reason_after_the_notify_in_flight():
    notifier, request, actions = accepted("allow")
    first = one(actions, SendRequest)
    ended = notifier.terminate(5.0, "probation", retry_after=60)
    assert watchers(ended) == [("terminated", "probation")] and not of(ended, SendRequest)
    final = one(notifier.response(first.key, reply(first.request, 200), 5.1), SendRequest)
    assert notify_state(final) == ("terminated;reason=probation;retry-after=60", b"")
    with pytest.raises(NotifierError):
        make().terminate(0.0, "because")


@pytest.mark.parametrize("status", [481, 408, 489])
def test_a_failed_notify_ends_the_subscription(status):
    notifier, request, actions = accepted("allow")
    first = one(actions, SendRequest)
    gone = notifier.response(first.key, reply(first.request, status), 0.2)
    assert watchers(gone)[0][0] == "terminated"
    assert of(gone, ReleaseDialog) and not of(gone, SendRequest) and notifier.finished


def test_a_notify_without_answer_ends_it_too():
    notifier, request, actions = accepted("allow")
    first = one(actions, SendRequest)
    gone = notifier.no_response(first.key, 32.0)
    assert watchers(gone) == [("terminated", "timeout")] and of(gone, ReleaseDialog)


def test_other_failures_keep_it():
    notifier, request, actions = accepted("allow")
    first = one(actions, SendRequest)
    assert notifier.response(first.key, reply(first.request, 500), 0.2) == []
    assert notifier.state is WatcherState.ACTIVE


@pytest.mark.parametrize("request_kwargs, status, header", [
    ({"event": "dialog"}, 489, ("Allow-Events", "presence")),
    ({"expires": 10}, 423, ("Min-Expires", "60")),
    ({"accept": "application/xpidf+xml"}, 406, ("Accept", PIDF_TYPE)),
])
def test_refused_subscriptions(request_kwargs, status, header):
    actions = make().subscribe(subscribe_request(**request_kwargs), 0.0, decision="allow")
    answer = one(actions, SendResponse)
    assert answer.status == status and header in answer.headers
    assert len(actions) == 1


def test_expires_is_capped_and_defaulted():
    notifier = make()
    ok = one(notifier.subscribe(subscribe_request(86400), 0.0, decision="allow"), SendResponse)
    assert dict(ok.headers)["Expires"] == "3600"
    ok = one(make().subscribe(subscribe_request(None), 0.0, decision="allow"), SendResponse)
    assert dict(ok.headers)["Expires"] == "3600"


def test_a_fetch_gets_one_final_notify():
    notifier = make()
    actions = notifier.subscribe(subscribe_request(0), 0.0, decision="allow")
    assert one(actions, SendResponse).status == 200
    assert notify_state(one(actions, SendRequest)) == ("terminated;reason=timeout", DOC1)


def test_a_challenged_notify_is_resent():
    notifier, request, actions = accepted("allow")
    first = one(actions, SendRequest)
    copy = wire(first.request)
    copy.headers.remove("Via")
    copy.headers.set("CSeq", f"{copy.cseq.number + 1} NOTIFY")
    again = one(notifier.resend(first.key, copy, 0.2), SendRequest)
    assert again.request is copy
    notifier.response(again.key, reply(again.request, 200), 0.3)
    nxt = one(notifier.update(DOC2, 1.0), SendRequest)
    assert wire(nxt.request).cseq.number == copy.cseq.number + 1


# --- a subscriber and a notifier, through the wire -----------------------------------------

def test_subscriber_and_notifier_talk():
    """Our Subscriber against our Notifier: pending, authorised, a change, a refresh, an
    unsubscription; every message serialised and parsed on its way."""
    sub = Subscriber(SubscribeTarget(BOB_URI, from_=ALICE, contact=ALICE_CONTACT),
                     accept=(PIDF_TYPE,), expires=600)
    notifier = make()
    events: list[object] = []
    now = 0.0

    def deliver(actions):
        """Carries out actions like a network would: after the input that made them
        returned, requests reach the other side and their responses come back."""
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if not isinstance(action, SendRequest):
                if not isinstance(action, SendResponse):
                    events.append(action)
                continue
            request = wire(action.request)
            if request.method == "SUBSCRIBE":
                first = notifier.state is None
                answers = notifier.subscribe(request, now, decision="pending") if first \
                    else notifier.subscribe(request, now)
                response = wire(one(answers, SendResponse).build(request))
                queue += sub.response(action.key, response, now) + answers
            else:
                answers = sub.notify(request, now)
                response = wire(one(answers, SendResponse).build(request))
                queue += answers + notifier.response(action.key, response, now)

    deliver(sub.start(now))
    assert [e.state.value for e in events if isinstance(e, SubscriptionChanged)] == [
        "subscribing", "pending"]
    events.clear()
    now = 10.0
    deliver(notifier.authorize(True, now))
    notes = [e for e in events if isinstance(e, Notified)]
    assert notes[-1].body == DOC1 and notes[-1].state == "active"
    assert [e.state.value for e in events if isinstance(e, SubscriptionChanged)] == ["active"]
    events.clear()
    now = 20.0
    deliver(notifier.update(DOC2, now))
    assert [e.body for e in events if isinstance(e, Notified)] == [DOC2]
    events.clear()
    now = sub.next_deadline()
    # 80 % of the 600 s the 2xx granted, brought forward by up to a quarter (the spread)
    assert 360.0 <= now <= 480.0, now
    deliver(sub.timer(now))
    assert [e.body for e in events if isinstance(e, Notified)] == [DOC2]
    assert notifier.next_deadline() == pytest.approx(now + 600)
    events.clear()
    now += 5
    deliver(sub.unsubscribe(now))
    assert sub.finished and notifier.finished
    assert [(e.state.value, e.event) for e in events if isinstance(e, WatcherChanged)] == [
        ("terminated", "timeout")]
