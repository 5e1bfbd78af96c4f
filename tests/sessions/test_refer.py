"""Call transfer, sans-I/O (sipd.sessions.refer): Replaces, Refer-To with an embedded
Replaces, Referred-By, message/sipfrag, and the transferor's and transferee's state
machines, with bad input of every kind."""

from __future__ import annotations

import pytest

from sipd.sessions.refer import (
    ReferError,
    ReferNotifier,
    ReferSubscriber,
    Replaces,
    parse_refer_to,
    parse_referred_by,
    parse_replaces,
    parse_sipfrag,
    refer_to_value,
    sipfrag,
    state_of,
)
from sipd.sip.header_values import parse_address
from sipd.sip.uri import parse_uri

FRAG = "message/sipfrag;version=2.0"


# -- Replaces ---------------------------------------------------------------------------------

def test_replaces_round_trips():
    value = Replaces("12345@192.0.2.1", "alice-tag", "bob-tag")
    assert str(value) == "12345@192.0.2.1;to-tag=alice-tag;from-tag=bob-tag"
    assert parse_replaces(str(value)) == value
    early = parse_replaces("abc;from-tag=2; to-tag=1 ;early-only")
    assert early == Replaces("abc", "1", "2", early_only=True)
    assert str(early).endswith(";early-only")


@pytest.mark.parametrize("text", ["", ";to-tag=1;from-tag=2", "abc", "abc;to-tag=1",
                                  "abc;from-tag=2", "abc;to-tag=;from-tag=2",
                                  "a b;to-tag=1;from-tag=2", "abc;to-tag=1;from-tag=2;;"])
def test_bad_replaces_is_400(text):
    with pytest.raises(ReferError) as bad:
        parse_replaces(text)
    assert bad.value.status == 400 and bad.value.reason


# -- Refer-To ---------------------------------------------------------------------------------

def test_refer_to_escapes_the_replaces_into_the_uri():
    uri = parse_uri("sip:carol@192.0.2.3:5070;transport=tcp")
    replaces = Replaces("a%1@h", "t+1", "f~2")
    value = refer_to_value(uri, replaces)
    # RFC 3261 §19.1.1: '@', ';', '=' and '%' are escaped in a URI header value.
    assert value == ("<sip:carol@192.0.2.3:5070;transport=tcp"
                     "?Replaces=a%251%40h%3Bto-tag%3Dt+1%3Bfrom-tag%3Df~2>")
    target = parse_refer_to(value)
    assert str(target.uri) == "sip:carol@192.0.2.3:5070;transport=tcp"
    assert target.replaces == replaces  # decoded exactly once


def test_refer_to_without_replaces_and_plain_forms():
    assert refer_to_value(parse_uri("sip:carol@example.com")) == "<sip:carol@example.com>"
    plain = parse_refer_to("sip:carol@example.com")  # an addr-spec, no brackets
    assert str(plain.uri) == "sip:carol@example.com" and plain.replaces is None
    named = parse_refer_to('"Carol" <sips:carol@example.com>')
    assert named.display_name == "Carol" and named.uri.scheme == "sips"


def test_refer_to_as_other_agents_write_it():
    # Lower-case header name, escapes in lower case, extra embedded headers dropped.
    value = ("<sip:carol@192.0.2.3?replaces=abc%40host%3bto-tag%3d1%3bfrom-tag%3d2"
             "&Subject=hello&Priority=urgent>")
    target = parse_refer_to(value)
    assert target.replaces == Replaces("abc@host", "1", "2")
    assert target.uri.headers == [] and str(target.uri) == "sip:carol@192.0.2.3"


@pytest.mark.parametrize("text,status", [
    ("", 400), ("<sip:carol@example.com", 400), ("not a uri", 400),
    ("<tel:+15551234>", 416), ("<http://example.com/>", 416),
    ("<sip:c@example.com?Replaces=abc>", 400),
    ("<sip:c@example.com?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2"
     "&Replaces=b%3Bto-tag%3D1%3Bfrom-tag%3D2>", 400),
])
def test_bad_refer_to(text, status):
    with pytest.raises(ReferError) as bad:
        parse_refer_to(text)
    assert bad.value.status == status


def test_referred_by():
    by = parse_referred_by('"Alice" <sip:alice@example.com>;cid="x@y"')
    assert by is not None and str(by.uri) == "sip:alice@example.com"
    assert parse_referred_by(None) is None and parse_referred_by("") is None
    assert parse_referred_by("<broken") is None  # informative only: never fatal


# -- message/sipfrag --------------------------------------------------------------------------

def test_sipfrag_round_trips():
    assert sipfrag(180, "Ringing") == b"SIP/2.0 180 Ringing\r\n"
    assert parse_sipfrag(b"SIP/2.0 200 OK\r\n") == (200, "OK")
    assert parse_sipfrag(b"SIP/2.0 100 Trying") == (100, "Trying")
    assert parse_sipfrag(b"\r\nsip/2.0 603 Declined\nContact: <sip:x@y>\n") == (603, "Declined")
    assert parse_sipfrag(b"SIP/2.0 486") == (486, "")


@pytest.mark.parametrize("body", [b"", b"INVITE sip:x@y SIP/2.0\r\n", b"SIP/2.0 99 Low",
                                  b"SIP/2.0 700 High", b"SIP/2.0 2000 Long", b"\xff\xfe",
                                  b"SIP/3.0 200 OK", b"SIP/2.0 abc OK"])
def test_bad_sipfrag(body):
    with pytest.raises(ValueError):
        parse_sipfrag(body)


def test_state_of_status():
    assert [state_of(s) for s in (100, 180, 183, 200, 202, 302, 486, 603)] == [
        "trying", "ringing", "ringing", "completed", "completed", "failed", "failed", "failed"]


# -- the transferor -----------------------------------------------------------------------------

def notify(sub, status_line: bytes | None, state="active;expires=60", event="refer;id=7",
           content_type=FRAG, now=1.0):
    return sub.notify(event, state, content_type, status_line or b"", now)


def test_subscriber_through_a_successful_transfer():
    sub = ReferSubscriber("7", started=0.0)
    assert sub.state == "requested" and not sub.done
    assert sub.refer_response(202, "Accepted", 0.1).state == "accepted"
    first = notify(sub, b"SIP/2.0 100 Trying\r\n")
    assert (first.status, first.progress.state, first.progress.code) == (200, "trying", 100)
    assert notify(sub, b"SIP/2.0 180 Ringing\r\n").progress.state == "ringing"
    assert notify(sub, b"SIP/2.0 183 Session Progress\r\n").progress.code == 183
    again = notify(sub, b"SIP/2.0 183 Session Progress\r\n")
    assert again.status == 200 and again.progress is None  # nothing new
    final = notify(sub, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource")
    assert final.status == 200 and final.progress.state == "completed"
    assert sub.done and sub.timer(1000.0) is None
    assert notify(sub, b"SIP/2.0 200 OK\r\n").status == 481  # that subscription is over


def test_subscriber_refer_refused_or_lost():
    refused = ReferSubscriber("1", started=0.0)
    step = refused.refer_response(403, "Forbidden", 0.1)
    assert (step.state, step.code, step.reason) == ("failed", 403, "Forbidden")
    assert refused.refer_response(202, "Accepted", 0.2) is None  # over is over
    lost = ReferSubscriber("1", started=0.0)
    assert lost.refer_response(None, "timed out", 32.0).code == 408
    assert lost.done and lost.refer_response(202, "Accepted", 0.0) is None
    provisional = ReferSubscriber("2", started=0.0)
    assert provisional.refer_response(100, "Trying", 0.0) is None
    assert provisional.state == "requested"


def test_subscriber_failure_code_from_the_target():
    sub = ReferSubscriber("7", started=0.0)
    sub.refer_response(202, "Accepted", 0.0)
    answer = notify(sub, b"SIP/2.0 486 Busy Here\r\n", "terminated;reason=noresource")
    assert (answer.status, answer.progress.state, answer.progress.code) == (200, "failed", 486)


def test_subscriber_notify_before_the_202_and_without_id():
    sub = ReferSubscriber("7", started=0.0)
    step = notify(sub, b"SIP/2.0 100 Trying\r\n", event="refer").progress
    assert step.state == "trying"
    assert sub.refer_response(202, "Accepted", 0.2) is None  # the 202 came late: no going back
    assert sub.matches("refer") and sub.matches("Refer;id=7") and not sub.matches("refer;id=8")
    assert not sub.matches("presence") and not sub.matches(None)


def test_subscriber_bad_notifies():
    sub = ReferSubscriber("7", started=0.0)
    sub.refer_response(202, "Accepted", 0.0)
    assert notify(sub, b"SIP/2.0 100 Trying", event="presence").status == 489
    assert notify(sub, b"SIP/2.0 100 Trying", event="refer;id=99").status == 481
    assert notify(sub, b"SIP/2.0 100 Trying", event="").status == 400
    assert notify(sub, b"SIP/2.0 100 Trying", state="").status == 400
    bad = notify(sub, b"garbage")
    assert bad.status == 400 and bad.progress is None and sub.state == "accepted"
    wrong_type = notify(sub, b"SIP/2.0 200 OK", content_type="text/plain")
    assert wrong_type.status == 400 and sub.state == "accepted"
    # A bad body that ends the subscription ends the transfer without a result.
    ended = notify(sub, b"garbage", state="terminated;reason=noresource")
    assert ended.status == 400 and ended.progress.state == "failed" and sub.done


def test_subscriber_reads_a_substate_with_a_malformed_parameter():
    """linphone 5 ends the subscription with `terminated;reason=reason=noresource`."""
    sub = ReferSubscriber("7", started=0.0)
    sub.refer_response(202, "Accepted", 0.0)
    answer = notify(sub, b"SIP/2.0 200 OK\r\n", state="terminated;reason=reason=noresource")
    assert answer.status == 200 and answer.progress.state == "completed"
    other = ReferSubscriber("8", started=0.0)
    assert notify(other, b"SIP/2.0 100 Trying", event="refer;id=8",
                  state="<bad>;x").status == 400


def test_subscriber_terminated_without_a_final_status_fails():
    sub = ReferSubscriber("7", started=0.0)
    sub.refer_response(202, "Accepted", 0.0)
    answer = notify(sub, b"SIP/2.0 180 Ringing", state="terminated;reason=timeout")
    assert answer.status == 200 and answer.progress.state == "failed"
    assert "timeout" in answer.progress.reason


def test_subscriber_gives_up_without_a_result():
    sub = ReferSubscriber("7", started=10.0, timeout=60.0)
    sub.refer_response(202, "Accepted", 10.0)
    assert sub.deadline == 70.0 and sub.timer(69.9) is None
    notify(sub, b"SIP/2.0 180 Ringing", state="active;expires=120", now=20.0)
    assert sub.deadline == 140.0  # the notifier's expires extends it
    assert sub.timer(100.0) is None
    step = sub.timer(140.0)
    assert step.state == "failed" and "no result" in step.reason and sub.done


# -- the transferee -----------------------------------------------------------------------------

def test_notifier_reports_each_step_once_and_ends_on_the_final():
    notifier = ReferNotifier("42")
    trying = notifier.notify(100, "Trying")
    assert dict(trying.headers) == {"Event": "refer;id=42",
                                    "Subscription-State": "active;expires=60"}
    assert trying.body == b"SIP/2.0 100 Trying\r\n" and trying.content_type == FRAG
    assert not trying.final
    assert notifier.notify(100, "Trying") is None
    assert notifier.notify(180, "Ringing").body == b"SIP/2.0 180 Ringing\r\n"
    assert notifier.notify(100, "Trying") is None  # no going back
    final = notifier.notify(200, "OK")
    assert final.final and dict(final.headers)["Subscription-State"] == \
        "terminated;reason=noresource"
    assert notifier.done and notifier.notify(486, "Busy Here") is None


def test_notifier_failure_is_final():
    notifier = ReferNotifier("3")
    notifier.notify(100, "Trying")
    busy = notifier.notify(486, "Busy Here")
    assert busy.final and busy.body == b"SIP/2.0 486 Busy Here\r\n"


def test_notifier_and_subscriber_understand_each_other():
    notifier, sub = ReferNotifier("9"), ReferSubscriber("9", started=0.0)
    sub.refer_response(202, "Accepted", 0.0)
    states = []
    for status, reason in ((100, "Trying"), (180, "Ringing"), (200, "OK")):
        content = notifier.notify(status, reason)
        headers = dict(content.headers)
        answer = sub.notify(headers["Event"], headers["Subscription-State"],
                            content.content_type, content.body, 1.0)
        assert answer.status == 200
        states.append(answer.progress.state)
    assert states == ["trying", "ringing", "completed"]


def test_refer_to_round_trips_through_an_address_parser():
    value = refer_to_value(parse_uri("sip:c@127.0.0.1:5080"), Replaces("id@h", "a", "b"))
    address = parse_address(value, "Refer-To")
    assert address.uri.headers == [("Replaces", "id@h;to-tag=a;from-tag=b")]
