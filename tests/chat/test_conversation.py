"""Two chat conversations over two sans-I/O MSRP sessions: messages, delivery, composing,
notifications and a peer that vanishes — all without a socket."""

from __future__ import annotations

import datetime

import pytest

from sipd.chat.conversation import (
    Arrived,
    ChatConversation,
    ComposingChanged,
    Delivery,
    Send,
    Unreadable,
)
from sipd.chat.payload import (
    LOCAL_ACCEPT_TYPES,
    LOCAL_ACCEPT_WRAPPED_TYPES,
    ChatPayloadError,
    ChatPayloads,
)
from sipd.messages.cpim import CPIMIdentity
from tests.msrp.helpers import Pair

WHEN = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.UTC)
ALICE = CPIMIdentity("sip:alice@example.com")
BOB = CPIMIdentity("sip:bob@example.com")


class Chat:
    """alice and bob, each a conversation over one end of an MSRP pair."""

    def __init__(self, bob_accepts=LOCAL_ACCEPT_TYPES, chunk_size=2048, *,
                 alice_accepts=LOCAL_ACCEPT_TYPES, alice_wraps=LOCAL_ACCEPT_WRAPPED_TYPES):
        self.pair = Pair(chunk_size=chunk_size)
        self.alice = ChatConversation(ChatPayloads(
            ALICE, BOB, accept_types=bob_accepts, accept_wrapped_types=LOCAL_ACCEPT_WRAPPED_TYPES))
        self.bob = ChatConversation(ChatPayloads(
            BOB, ALICE, accept_types=alice_accepts, accept_wrapped_types=alice_wraps))
        self.told = {"alice": [], "bob": []}

    def queue(self, who, outputs):
        session = self.pair.alice if who == "alice" else self.pair.bob
        for item in outputs:
            if isinstance(item, Send):
                session.send_message(item.payload.body, item.payload.content_type,
                                     message_id=item.message_id,
                                     failure_report="yes" if item.report else "no")
            else:
                self.told[who].append(item)

    def run(self, now=0.0):
        for _ in range(20):
            self.pair.now = now
            self.pair.pump()
            a, b = self.pair.alice_events, self.pair.bob_events
            self.pair.alice_events, self.pair.bob_events = [], []
            if not a and not b:
                return
            for event in a:
                self.queue("alice", self.alice.on_msrp(event, now=now, wall=WHEN))
            for event in b:
                self.queue("bob", self.bob.on_msrp(event, now=now, wall=WHEN))

    def of(self, who, kind):
        return [e for e in self.told[who] if isinstance(e, kind)]


def test_a_message_arrives_wrapped_and_its_delivery_is_told_once():
    chat = Chat()
    send = chat.alice.send("grüezi".encode(), "text/plain", now=0, wall=WHEN)
    chat.queue("alice", [send])
    chat.run()
    (arrived,) = chat.of("bob", Arrived)
    assert arrived.text.content == "grüezi".encode() and arrived.text.sender == ALICE.uri
    assert arrived.text.message_id == send.message_id and arrived.text.time == WHEN
    # MSRP's 200 and bob's IMDN "delivered" make one delivery event, not two.
    assert chat.of("alice", Delivery) == [Delivery(send.message_id, "delivered", 200)]


def test_display_notifications_only_for_messages_that_asked():
    chat = Chat()
    send = chat.alice.send(b"read me", "text/plain", now=0, wall=WHEN)
    chat.queue("alice", [send])
    chat.run()
    with pytest.raises(ChatPayloadError, match="nosuchid"):
        chat.bob.displayed([send.message_id, "nosuchid"], wall=WHEN)
    chat.queue("bob", chat.bob.displayed([send.message_id], wall=WHEN))
    chat.run()
    assert chat.of("alice", Delivery)[-1] == Delivery(send.message_id, "displayed")
    with pytest.raises(ChatPayloadError):  # only once
        chat.bob.displayed([send.message_id], wall=WHEN)


def test_no_notification_to_a_peer_that_takes_no_imdn_wrapped():
    """alice's line is python-sipsimple's (Blink): CPIM, but message/imdn+xml neither in its
    accept-wrapped-types nor its accept-types; it answers a CPIM message wrapping a type it
    does not list with 413. bob asked for notifications gets the message, sends none, and
    alice's message is delivered by MSRP's 200 alone."""
    chat = Chat(alice_accepts=["message/cpim", "text/*", "image/*",
                               "application/im-iscomposing+xml"],
                alice_wraps=["text/*", "image/*", "application/im-iscomposing+xml"])
    send = chat.alice.send(b"hi", "text/plain", now=0, wall=WHEN)
    chat.queue("alice", [send])
    chat.pair.pump()
    events, chat.pair.bob_events = chat.pair.bob_events, []
    outputs = [o for e in events for o in chat.bob.on_msrp(e, now=0, wall=WHEN)]
    assert [o.text.content for o in outputs if isinstance(o, Arrived)] == [b"hi"]
    assert not [o for o in outputs if isinstance(o, Send)]  # no "delivered" for alice
    chat.run()
    assert chat.of("alice", Delivery) == [Delivery(send.message_id, "delivered", 200)]
    with pytest.raises(ChatPayloadError):
        chat.bob.displayed([send.message_id], wall=WHEN)


def test_composing_both_ways_and_a_message_ends_it():
    chat = Chat()
    chat.queue("alice", [chat.alice.composing("active", now=0, wall=WHEN)])
    chat.run()
    assert [c.state for c in chat.of("bob", ComposingChanged)] == ["active"]
    assert chat.alice.composing("active", now=1, wall=WHEN) is None  # no refresh yet
    chat.queue("alice", [chat.alice.send(b"done", "text/plain", now=2, wall=WHEN)])
    chat.run(now=2)
    assert [c.state for c in chat.of("bob", ComposingChanged)] == ["active", "idle"]
    assert chat.of("alice", ComposingChanged) == []
    # a peer that stops refreshing goes idle by the clock
    chat.queue("alice", [chat.alice.composing("active", now=3, wall=WHEN)])
    chat.run(now=3)
    deadline = chat.bob.next_deadline()
    assert deadline is not None
    assert [c.state for c in chat.bob.tick(deadline, WHEN)] == ["idle"]


def test_plain_peer_gets_plain_messages_and_no_notifications():
    chat = Chat(bob_accepts=["text/plain"])
    send = chat.alice.send(b"plain", "text/plain", now=0, wall=WHEN)
    assert send.payload.content_type == "text/plain"
    with pytest.raises(ChatPayloadError):
        chat.alice.send(b"x", "image/png", now=0, wall=WHEN)


def test_a_peer_that_vanishes_fails_what_was_not_acknowledged():
    chat = Chat(chunk_size=10)
    send = chat.alice.send(b"x" * 100, "text/plain", now=0, wall=WHEN)
    chat.queue("alice", [send])
    chat.pair.alice.data_to_send(0.0)  # some chunks leave, bob never answers
    chat.pair.alice.connection_lost("connection reset by peer")
    outputs = [o for e in chat.pair.alice.events()
               for o in chat.alice.on_msrp(e, now=0, wall=WHEN)]
    (failed,) = [o for o in outputs if isinstance(o, Delivery)]
    assert failed.status == "failed" and "reset" in (failed.reason or "")


def test_garbage_in_cpim_is_reported_not_raised():
    chat = Chat()
    chat.pair.alice.send_message(b"no headers here", "message/cpim")
    chat.run()
    (bad,) = chat.of("bob", Unreadable)
    assert "CPIM" in bad.reason
