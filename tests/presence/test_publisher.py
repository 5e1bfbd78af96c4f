"""The publisher (RFC 3903): initial PUBLISH, refresh with SIP-If-Match and no body, modify,
remove, 412 (republish everything), 423, one request at a time, digest retries, failures,
and the entity tag kept for as long as the publication lives."""

from __future__ import annotations

import pytest

from sipd.presence.actions import SendRequest
from sipd.presence.events import PublicationChanged, PublicationState
from sipd.presence.payload import PIDF_TYPE
from sipd.presence.publisher import Publisher, PublisherError, PublishTarget
from sipd.sip.header_values import parse_address

from .peer import ALICE, reply, wire

OPEN = b"<presence>open</presence>"
AWAY = b"<presence>away</presence>"
BUSY = b"<presence>busy</presence>"


class NoJitter:
    def random(self) -> float:
        return 0.0


def one(actions, kind=SendRequest):
    found = [a for a in actions if isinstance(a, kind)]
    assert len(found) == 1, actions
    return found[0]


def changes(actions):
    return [(a.state.value, a.code) for a in actions if isinstance(a, PublicationChanged)]


def make(**kwargs) -> Publisher:
    target = PublishTarget(ALICE.uri, from_=ALICE,
                           routes=(parse_address("<sip:proxy.example.com;lr>"),))
    return Publisher(target, rng=NoJitter(), **kwargs)


def ok(send, etag="etag-1", expires=3600):
    headers = [("Expires", str(expires))]
    if etag is not None:
        headers.append(("SIP-ETag", etag))
    return reply(send.request, 200, headers=headers, contact=None)


def published(now=0.0):
    pub = make()
    send = one(pub.publish(OPEN, now))
    actions = pub.response(send.key, ok(send), now + 0.1)
    assert changes(actions) == [("published", 200)]
    return pub, send


def test_initial_publish():
    pub = make()
    actions = pub.publish(OPEN, 0.0)
    send = one(actions)
    sent = wire(send.request)
    assert send.dialog is None and changes(actions) == [("publishing", None)]
    assert sent.method == "PUBLISH" and str(sent.uri) == "sip:alice@example.com"
    assert sent.headers.get("Event") == "presence" and sent.expires == 3600
    assert sent.content_type.mime == PIDF_TYPE and sent.body == OPEN
    assert "SIP-If-Match" not in sent.headers and sent.to.uri == ALICE.uri
    assert sent.headers.values("Route") == ["<sip:proxy.example.com;lr>"]
    done = pub.response(send.key, ok(send), 0.5)
    assert changes(done) == [("published", 200)]
    assert done[0].expires == 3600 and pub.etag == "etag-1"
    assert pub.next_deadline() == pytest.approx(0.5 + 2880)
    with pytest.raises(PublisherError):
        pub.publish(b"", 1.0)


def test_refresh_has_the_tag_and_no_body():
    pub, first = published()
    send = one(pub.timer(2880.1))
    sent = wire(send.request)
    assert sent.headers.get("SIP-If-Match") == "etag-1" and sent.body == b""
    assert "Content-Type" not in sent.headers and sent.expires == 3600
    assert sent.call_id == wire(first.request).call_id
    assert sent.cseq.number == wire(first.request).cseq.number + 1
    assert sent.from_.tag == wire(first.request).from_.tag
    # a refresh that works is no news; the server may change the tag
    assert changes(pub.response(send.key, ok(send, etag="etag-2"), 2881.0)) == []
    assert pub.etag == "etag-2"


def test_modify_sends_the_new_body_with_the_tag():
    pub, _ = published()
    send = one(pub.publish(AWAY, 100.0))
    sent = wire(send.request)
    assert sent.headers.get("SIP-If-Match") == "etag-1" and sent.body == AWAY
    assert changes(pub.response(send.key, ok(send, etag="etag-2"), 100.1)) == [
        ("published", 200)]


def test_one_publish_at_a_time_the_latest_state_wins():
    pub = make()
    first = one(pub.publish(OPEN, 0.0))
    assert pub.publish(AWAY, 0.1) == [] and pub.publish(BUSY, 0.2) == []
    assert pub.refresh(0.3) == []
    assert pub.next_deadline() is None
    actions = pub.response(first.key, ok(first), 0.4)
    modify = one(actions)
    assert wire(modify.request).body == BUSY
    assert wire(modify.request).headers.get("SIP-If-Match") == "etag-1"


def test_412_republishes_the_whole_state():
    pub, _ = published()
    refresh = one(pub.timer(2881.0))
    actions = pub.response(refresh.key, reply(refresh.request, 412), 2881.1)
    again = one(actions)
    sent = wire(again.request)
    assert "SIP-If-Match" not in sent.headers and sent.body == OPEN
    assert changes(actions) == [("publishing", None)]
    assert changes(pub.response(again.key, ok(again, etag="fresh"), 2881.2)) == [
        ("published", 200)]
    assert pub.etag == "fresh"


def test_412_for_ever_gives_up():
    pub, _ = published()
    send = one(pub.publish(AWAY, 10.0))
    for _ in range(3):
        send = one(pub.response(send.key, reply(send.request, 412), 10.1))
    actions = pub.response(send.key, reply(send.request, 412), 10.2)
    assert changes(actions) == [("failed", 412)] and actions[0].retry_at is None


def test_423_raises_the_expiry():
    pub = make(expires=60)
    send = one(pub.publish(OPEN, 0.0))
    again = one(pub.response(send.key, reply(send.request, 423,
                                             headers=[("Min-Expires", "600")]), 0.1))
    assert wire(again.request).expires == 600 and pub.expires == 600
    assert wire(again.request).body == OPEN


def test_unpublish_removes_with_the_tag():
    pub, _ = published()
    actions = pub.unpublish(50.0)
    send = one(actions)
    sent = wire(send.request)
    assert sent.expires == 0 and sent.headers.get("SIP-If-Match") == "etag-1"
    assert sent.body == b""
    done = pub.response(send.key, ok(send, etag=None, expires=0), 50.1)
    assert changes(done) == [("unpublished", 200)]
    assert pub.finished and pub.etag is None and pub.next_deadline() is None


def test_unpublish_while_a_publish_is_out():
    pub = make()
    send = one(pub.publish(OPEN, 0.0))
    assert pub.unpublish(0.1) == []
    remove = one(pub.response(send.key, ok(send), 0.2))
    assert wire(remove.request).expires == 0
    assert pub.response(remove.key, reply(remove.request, 481), 0.3)[0].state \
        is PublicationState.UNPUBLISHED
    assert pub.finished


def test_unpublish_without_a_publication():
    pub = make()
    assert changes(pub.unpublish(0.0)) == [("unpublished", None)]
    assert pub.finished


def test_the_tag_survives_until_the_publication_expires():
    pub, _ = published()
    # the account registered again (a new network): refresh at once, same tag
    send = one(pub.refresh(1000.0))
    assert wire(send.request).headers.get("SIP-If-Match") == "etag-1"
    pub.response(send.key, ok(send), 1000.1)
    # long offline: the tag has expired, the next PUBLISH is an initial one
    pub2, _ = published()
    send2 = one(pub2.refresh(4000.0))
    assert "SIP-If-Match" not in wire(send2.request).headers
    assert wire(send2.request).body == OPEN


def test_a_2xx_without_tag_makes_the_refresh_publish_anew():
    pub = make()
    send = one(pub.publish(OPEN, 0.0))
    pub.response(send.key, ok(send, etag=None), 0.1)
    refresh = one(pub.timer(2881.0))
    assert wire(refresh.request).body == OPEN
    assert "SIP-If-Match" not in wire(refresh.request).headers


def test_transient_failures_retry_with_backoff():
    pub = make()
    send = one(pub.publish(OPEN, 0.0))
    actions = pub.no_response(send.key, 32.0, "timed out")
    assert changes(actions) == [("failed", 408)] and actions[0].retry_at == 37.0
    assert actions[0].reason == "timed out"
    send = one(pub.timer(37.0))
    actions = pub.response(send.key, reply(send.request, 503,
                                           headers=[("Retry-After", "120")]), 37.1)
    assert actions[0].retry_at == pytest.approx(157.1)
    send = one(pub.timer(157.1))
    assert changes(pub.response(send.key, ok(send), 157.2)) == [("published", 200)]


@pytest.mark.parametrize("status", [403, 404, 489, 501])
def test_permanent_failures_wait_for_the_next_publish(status):
    pub = make()
    send = one(pub.publish(OPEN, 0.0))
    actions = pub.response(send.key, reply(send.request, status), 0.1)
    assert changes(actions) == [("failed", status)] and actions[0].retry_at is None
    assert pub.next_deadline() is None
    assert one(pub.publish(AWAY, 10.0))


def test_a_challenge_is_answered_through_resend():
    pub = make()
    send = one(pub.publish(OPEN, 0.0))
    copy = wire(send.request)
    copy.headers.remove("Via")
    copy.headers.set("CSeq", "2 PUBLISH")
    copy.headers.add("Authorization", 'Digest username="alice"')
    again = one(pub.resend(send.key, copy, 0.1))
    assert again.request is copy
    pub.response(again.key, ok(again), 0.2)
    refresh = one(pub.timer(3000.0))
    assert wire(refresh.request).cseq.number == 3
    for _ in range(3):
        refresh = one(pub.resend(refresh.key, refresh.request, 3000.1))
    assert changes(pub.resend(refresh.key, refresh.request, 3000.2)) == [("failed", 401)]
    with pytest.raises(PublisherError):
        pub.resend("nope", copy, 1.0)


def test_dialog_event_publication():
    pub = make(event="dialog", content_type="application/dialog-info+xml")
    sent = wire(one(pub.publish(b"<dialog-info/>", 0.0)).request)
    assert sent.headers.get("Event") == "dialog"
    assert sent.content_type.mime == "application/dialog-info+xml"
