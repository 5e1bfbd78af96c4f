"""Bodies of a chat stream: CPIM or plain by what the peer accepts, read back whatever came."""

from __future__ import annotations

import datetime

import pytest

from sipd.chat.imdn import Disposition
from sipd.chat.payload import ChatPayloadError, ChatPayloads, ChatText, Composing, Notice
from sipd.messages.cpim import CPIMIdentity, parse_cpim
from sipd.messages.iscomposing import IsComposing

WHEN = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.UTC)
ALICE = CPIMIdentity("sip:alice@example.com", "Alice")
BOB = CPIMIdentity("sip:bob@example.com")


def payloads(accept, wrapped=()):
    return ChatPayloads(ALICE, BOB, accept_types=accept, accept_wrapped_types=wrapped)


def test_cpim_when_the_peer_takes_it_with_imdn_headers():
    out = payloads(["message/cpim", "text/plain"], ["*"]).message(
        b"hi", "text/plain", message_id="m1", now=WHEN)
    assert out.content_type == "message/cpim"
    envelope = parse_cpim(out.body)
    assert envelope.sender == ALICE and envelope.recipients == [BOB]
    assert envelope.header("Message-ID", "urn:ietf:params:imdn") == "m1"
    assert "display" in envelope.header("Disposition-Notification", "urn:ietf:params:imdn")
    assert envelope.content == b"hi" and envelope.timestamp == WHEN


def test_plain_when_the_peer_takes_no_cpim():
    out = payloads(["text/plain"]).message(b"hi", "text/plain", message_id="m", now=WHEN)
    assert (out.body, out.content_type) == (b"hi", "text/plain")


def test_a_type_accepted_only_plain_goes_plain_beside_cpim():
    # accept-wrapped-types names only text/plain: text/html is taken plain (accept-types).
    out = payloads(["message/cpim", "text/html"], ["text/plain"]).message(
        b"<b>x</b>", "text/html", message_id="m", now=WHEN)
    assert out.content_type == "text/html"


def test_a_type_the_peer_takes_in_no_way_is_refused_before_anything_is_sent():
    with pytest.raises(ChatPayloadError, match="image/png"):
        payloads(["text/plain"]).message(b"x", "image/png", message_id="m", now=WHEN)
    with pytest.raises(ChatPayloadError, match="wrapped"):
        payloads(["message/cpim"], ["text/plain"]).message(b"x", "image/png", message_id="m",
                                                           now=WHEN)


def test_reads_plain_cpim_composing_and_notifications():
    ours = payloads(["message/cpim", "text/*"], ["*"])
    plain = ours.read(b"hello", "text/plain;charset=utf-8", message_id="msrp1")
    assert plain == ChatText("msrp1", None, "text/plain;charset=utf-8", b"hello", None)
    wrapped = ours.read(ours.message("é".encode(), "text/plain", message_id="imdn1",
                                     now=WHEN).body, "message/cpim", message_id="msrp2")
    assert isinstance(wrapped, ChatText)
    assert (wrapped.message_id, wrapped.sender, wrapped.time) == ("imdn1", ALICE.uri, WHEN)
    assert wrapped.dispositions == {"positive-delivery", "negative-delivery", "display"}
    composing = ours.read(ours.composing(IsComposing("active", refresh=60), WHEN).body,
                          "message/cpim", message_id="c")
    assert isinstance(composing, Composing) and composing.indication.state == "active"
    notice = ours.read(ours.notification(Disposition("imdn1", "display", "displayed", WHEN),
                                         message_id="n", now=WHEN).body,
                       "message/cpim", message_id="n")
    assert isinstance(notice, Notice) and notice.disposition.status == "displayed"


@pytest.mark.parametrize("body,content_type,reason", [
    (b"garbage without headers", "message/cpim", "CPIM"),
    (b"<isComposing/>", "application/im-iscomposing+xml", "is-composing"),
    (b"<imdn/>", "message/imdn+xml", "notification"),
    (b"x", None, "Content-Type"),
])
def test_unreadable_bodies_say_why(body, content_type, reason):
    with pytest.raises(ChatPayloadError, match=reason):
        payloads(["*"]).read(body, content_type, message_id="m")


def test_no_notifications_to_a_peer_without_cpim():
    with pytest.raises(ChatPayloadError):
        payloads(["text/plain"]).notification(Disposition("a", "delivery", "delivered"),
                                              message_id="n", now=WHEN)


@pytest.mark.parametrize("accept, wrapped, takes", [
    (["message/cpim", "text/plain"], ["*"], True),
    (["message/cpim"], ["text/plain", "message/imdn+xml"], True),
    (["message/cpim", "message/imdn+xml"], ["text/plain"], True),  # RFC 4975: or accept-types
    (["message/cpim", "message/*"], ["text/plain"], True),
    # python-sipsimple (Blink): 413 for a CPIM wrapping a type not in its wrapped types
    (["message/cpim", "text/*", "image/*", "application/im-iscomposing+xml"],
     ["text/*", "image/*", "application/im-iscomposing+xml"], False),
    (["message/cpim", "text/plain"], ["text/plain"], False),
    (["message/cpim"], [], False),
])
def test_notifications_only_asked_of_and_sent_to_a_peer_that_takes_imdn(accept, wrapped, takes):
    ours = payloads(accept, wrapped)
    assert ours.notifications is takes
    envelope = parse_cpim(ours.message(b"hi", "text/plain", message_id="m1", now=WHEN).body)
    assert envelope.header("Message-ID", "urn:ietf:params:imdn") == "m1"
    asked = envelope.header("Disposition-Notification", "urn:ietf:params:imdn")
    assert (asked == "positive-delivery, negative-delivery, display") is takes, asked
    assert (asked is None) is not takes
    notice = Disposition("m0", "delivery", "delivered", WHEN)
    if takes:
        out = ours.notification(notice, message_id="n", now=WHEN)
        assert parse_cpim(out.body).media_type == "message/imdn+xml"
    else:
        with pytest.raises(ChatPayloadError, match="imdn"):
            ours.notification(notice, message_id="n", now=WHEN)


def test_an_ascii_line_and_an_accented_one_each_say_their_charset_right():
    """The envelope kept per type (payload.message's cache) is per ASCII-or-not: pure ASCII
    goes as bare text/plain (SipLib compares it with that), the rest says UTF-8."""
    ours = payloads(["message/cpim"], ["*"])
    for _ in range(2):  # the second time from the kept envelope
        ascii_line = parse_cpim(ours.message(b"hi", "text/plain", message_id="a",
                                             now=WHEN).body)
        assert ascii_line.content_type == "text/plain" and ascii_line.text == "hi"
        accented = parse_cpim(ours.message("h\u00e9".encode(), "text/plain", message_id="b",
                                           now=WHEN).body)
        assert accented.content_type == "text/plain;charset=utf-8"
        assert accented.text == "h\u00e9"
@pytest.mark.parametrize("when", [
    WHEN, WHEN.replace(microsecond=999_999), WHEN.replace(microsecond=1),
    WHEN.astimezone(datetime.timezone(datetime.timedelta(hours=-5, minutes=-30)))])
@pytest.mark.parametrize("dispositions", [("display",), ["positive-delivery", "display"], ()])
def test_kept_envelope_gives_the_composed_bytes(when, dispositions):
    """The second message of a type is built from the first one's kept envelope: the same
    bytes as composing it field by field."""
    reference = payloads(["message/cpim"], ["*"])
    reference.message(b"x", "text/plain", message_id="m0", now=when,
                      dispositions=["negative-delivery"])  # another envelope kept
    composed = reference.message(b"hello", "text/plain", message_id="m1", now=when,
                                 dispositions=dispositions)
    kept = reference.message(b"hello", "text/plain", message_id="m1", now=when,
                             dispositions=dispositions)
    assert kept == composed
    assert parse_cpim(kept.body).timestamp == when.replace(
        microsecond=when.microsecond // 1000 * 1000)
