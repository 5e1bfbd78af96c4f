"""Helpers for the INVITE session tests (real messages: built, serialised and parsed again,
a fake clock, scripted randomness) and end-to-end tests of two sessions wired together by
a tiny in-memory stand-in for the SIP stack."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from sipd.sessions.invite.events import (
    DtmfReceived,
    OfferReceived,
    ReinviteCompleted,
    RemoteSdp,
    SendAck,
    SendCancel,
    SendRequest,
    SendResponse,
    SessionState,
    StateChanged,
)
from sipd.sessions.invite.session import InviteSession
from sipd.sip.builder import build_request, build_response, new_via
from sipd.sip.header_values import parse_address, parse_via
from sipd.sip.message import Request, Response, parse_datagram
from sipd.sip.uri import parse_uri

SDP_TYPE = "application/sdp"


def sdp(name: str, version: int = 1, port: int = 4000, direction: str = "sendrecv") -> bytes:
    return (f"v=0\r\no={name} 100 {version} IN IP4 192.0.2.1\r\ns=-\r\n"
            f"c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
            f"a={direction}\r\n").encode()


OFFER = sdp("alice")
ANSWER = sdp("bob")
ALICE_CONTACT = "<sip:alice@192.0.2.1:5060>"
BOB_CONTACT = "<sip:bob@192.0.2.2:5062>"
RECORD_ROUTE = ("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>")


# --- messages on the wire --------------------------------------------------------------------

def wire(message):
    """The message as a peer sees it: serialised and parsed again."""
    return parse_datagram(message.to_bytes())


def stamp_via(request: Request, host: str = "192.0.2.1", port: int = 5060) -> Request:
    """What the stack does to what it sends: a top Via, a fresh branch unless it has one."""
    values = request.headers.values("Via")
    branch = parse_via(values[0]).branch if values else None
    via = new_via("UDP", host, port, branch=branch)
    if values:
        request.headers.replace_first_value("Via", str(via))
    else:
        request.headers.add_first("Via", str(via))
    return request


def make_invite(body: bytes = OFFER, *, cseq: int = 1, call_id: str = "call-1@192.0.2.1",
                content_type: str | None = SDP_TYPE, from_tag: str = "alicetag") -> Request:
    invite = build_request(
        "INVITE", parse_uri("sip:bob@biloxi.example.com"),
        from_=parse_address(f"Alice <sip:alice@atlanta.example.com>;tag={from_tag}"),
        to=parse_address("Bob <sip:bob@biloxi.example.com>"), call_id=call_id, cseq=cseq,
        contact=parse_address(ALICE_CONTACT), body=body,
        content_type=content_type if body else None)
    return stamp_via(invite)


def reply(request: Request, status: int, *, to_tag: str | None = "bobtag",
          contact: str | None = BOB_CONTACT, record_route: Iterable[str] = (),
          body: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> Response:
    """A response of the remote UAS to `request`, as it arrives."""
    fields = [("Record-Route", rr) for rr in record_route]
    if contact and status > 100:
        fields.append(("Contact", contact))
    fields += list(headers)
    response = build_response(request, status, to_tag=to_tag if status > 100 else None,
                              headers=fields, body=body,
                              content_type=SDP_TYPE if body else None)
    return wire(response)


def of(actions: list, *kinds) -> list:
    return [a for a in actions if isinstance(a, kinds)]


def one(actions: list, kind):
    found = of(actions, kind)
    assert len(found) == 1, actions
    return found[0]


def states(actions: list) -> list[tuple]:
    return [(a.state.value, a.code, a.reason) for a in of(actions, StateChanged)]


class ScriptedRandom:
    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0) if self.values else 0.5


@dataclass
class Clock:
    now: float = 0.0

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


# --- two sessions and a stand-in for the stack between them ----------------------------------

@dataclass(eq=False)
class Ref:
    """What the stack hands a UA for an incoming request (IncomingRequest, simplified)."""
    request: Request
    sender: Side
    answered: list[Response] = field(default_factory=list)


@dataclass(eq=False)
class Side:
    name: str
    session: InviteSession
    host: str
    contact: str
    events: list = field(default_factory=list)
    sent: list = field(default_factory=list)


class Pair:
    """Alice (UAC) and Bob (UAS): runs the actions of each session like the trio driver
    would, delivering messages (as bytes) to the other side in order."""

    def __init__(self, *, alice_rng=None, bob_rng=None) -> None:
        self.clock = Clock()
        self.alice = Side("alice", InviteSession(rng=alice_rng), "192.0.2.1", ALICE_CONTACT)
        self.bob = Side("bob", InviteSession(rng=bob_rng), "192.0.2.2", BOB_CONTACT)
        self.queue: deque = deque()
        self.invite_ref: Ref | None = None

    def other(self, side: Side) -> Side:
        return self.bob if side is self.alice else self.alice

    def run(self, side: Side, actions: list) -> None:
        for action in actions:
            side.sent.append(action)
            if isinstance(action, SendRequest):
                stamp_via(action.request, side.host)
                self.queue.append(("request", self.other(side), wire(action.request), side))
            elif isinstance(action, SendAck):
                stamp_via(action.ack, side.host)
                self.queue.append(("request", self.other(side), wire(action.ack), side))
            elif isinstance(action, SendResponse):
                response = action.build(action.ref.request)
                action.ref.answered.append(response)
                self.queue.append(("response", action.ref.sender, wire(response), side))
            elif isinstance(action, SendCancel):
                # the stack of the other side answers the CANCEL and 487s the INVITE
                assert self.invite_ref is not None
                self.queue.append(("cancel", self.other(side), None, side))
            else:
                side.events.append(action)

    def deliver(self, limit: int = 100) -> None:
        while self.queue and limit:
            limit -= 1
            kind, target, message, sender = self.queue.popleft()
            now = self.clock.now
            if kind == "cancel":
                ref = self.invite_ref
                if not ref.answered or ref.answered[-1].status < 200:
                    self.run(target, target.session.cancelled(now, already_answered=True))
                    response = wire(build_response(ref.request, 487,
                                                   to_tag=target.session.local_tag))
                    ref.answered.append(response)
                    self.queue.append(("response", sender, response, target))
                continue
            if kind == "response":
                self.run(target, target.session.response(message, now))
                continue
            ref = Ref(message, sender)
            if message.method == "INVITE" and not message.to.tag:
                self.invite_ref = ref
                actions = target.session.incoming(message, now, contact=target.contact,
                                                  ref=ref)
            else:
                actions = target.session.request(message, now, ref=ref)
            self.run(target, actions)

    def call(self, side: Side, method: str, *args, **kwargs) -> None:
        self.run(side, getattr(side.session, method)(*args, self.clock.now, **kwargs))
        self.deliver()

    def establish(self) -> None:
        self.run(self.alice, self.alice.session.start(make_invite(), self.clock.now))
        self.deliver()
        self.call(self.bob, "ring")
        self.call(self.bob, "accept", ANSWER)

    def tick(self, until: float) -> None:
        """Advances the clock to `until`, running the timers of both sides as they fall due."""
        while True:
            due = [(s.session.next_deadline(), s) for s in (self.alice, self.bob)]
            due = [(d, s) for d, s in due if d is not None and d <= until]
            if not due:
                break
            deadline, side = min(due, key=lambda item: item[0])
            self.clock.now = max(self.clock.now, deadline)
            self.run(side, side.session.timer(self.clock.now))
            self.deliver()
        self.clock.now = until


def event_states(side: Side) -> list[str]:
    return [e.state.value for e in side.events if isinstance(e, StateChanged)]


# --- end to end ------------------------------------------------------------------------------

def test_a_call_set_up_held_and_hung_up_end_to_end():
    pair = Pair()
    pair.establish()
    alice, bob = pair.alice, pair.bob
    assert event_states(alice) == ["calling", "ringing", "established"]
    assert event_states(bob) == ["calling", "ringing", "established"]
    assert [e.kind for e in alice.events if isinstance(e, RemoteSdp)] == ["answer"]
    assert [e.kind for e in bob.events if isinstance(e, RemoteSdp)] == ["offer"]
    assert alice.session.dialog.id.remote_tag == bob.session.local_tag
    assert bob.session.next_deadline() is None  # the ACK stopped the 2xx retransmissions

    hold = sdp("alice", 2, direction="sendonly")
    pair.call(alice, "reinvite", hold)
    offer = [e for e in bob.events if isinstance(e, OfferReceived)]
    assert offer == [OfferReceived(hold)]
    held = sdp("bob", 2, direction="recvonly")
    pair.call(bob, "answer_reinvite", held)
    assert alice.events[-2:] == [RemoteSdp(held, "answer"), ReinviteCompleted(True, 200, "OK")]
    assert (alice.session.local_sdp, alice.session.remote_sdp) == (hold, held)
    assert (bob.session.local_sdp, bob.session.remote_sdp) == (held, hold)
    assert bob.session.next_deadline() is None  # ACKed

    pair.call(bob, "send_dtmf", "7", duration=120)
    assert DtmfReceived("7", 120) in alice.events

    pair.call(alice, "end")
    assert event_states(alice)[-2:] == ["ending", "ended"]
    assert alice.session.reason == "local hangup"
    assert bob.session.state is SessionState.ENDED and bob.session.reason == "remote hangup"


def test_a_call_cancelled_end_to_end():
    pair = Pair()
    pair.run(pair.alice, pair.alice.session.start(make_invite(), 0.0))
    pair.deliver()
    pair.call(pair.bob, "ring")
    pair.call(pair.alice, "cancel")
    assert (pair.alice.session.state, pair.alice.session.code) == (SessionState.FAILED, 487)
    assert (pair.bob.session.state, pair.bob.session.code) == (SessionState.FAILED, 487)
    assert pair.bob.session.accept(ANSWER, 1.0) == []  # too late: the caller is gone


def test_glare_on_both_sides_resolves_by_the_random_waits():
    # Alice owns the Call-ID: she waits 2.1-4 s; Bob 0-2 s (RFC 3261 §14.1).
    pair = Pair(alice_rng=ScriptedRandom(0.5), bob_rng=ScriptedRandom(0.5))
    pair.establish()
    alice, bob = pair.alice, pair.bob
    offers = {"alice": 0, "bob": 0}

    def offer_of(side):
        def build():
            offers[side.name] += 1
            return sdp(side.name, 10 + offers[side.name], direction="sendonly")
        return build

    # both send a re-INVITE before either arrives
    pair.run(alice, alice.session.reinvite(offer_of(alice), pair.clock.now))
    pair.run(bob, bob.session.reinvite(offer_of(bob), pair.clock.now))
    pair.deliver()
    answered_491 = [a for side in (alice, bob) for a in side.sent
                    if isinstance(a, SendResponse) and a.status == 491]
    assert len(answered_491) == 2
    assert alice.session.next_deadline() == pytest.approx(2.1 + 1.9 * 0.5)
    assert bob.session.next_deadline() == pytest.approx(2.0 * 0.5)

    pair.tick(1.0)  # Bob retries first; Alice answers his offer
    assert offers["bob"] == 2
    alice_offer = [e for e in alice.events if isinstance(e, OfferReceived)]
    assert len(alice_offer) == 1
    pair.call(alice, "answer_reinvite", sdp("alice", 20))
    assert ReinviteCompleted(True, 200, "OK") in bob.events
    pair.tick(3.05)  # then Alice's retry, with an offer built afresh
    assert offers["alice"] == 2
    last_offer = [e for e in bob.events if isinstance(e, OfferReceived)][-1]
    assert last_offer.sdp == sdp("alice", 12, direction="sendonly")
    pair.call(bob, "answer_reinvite", sdp("bob", 30))
    assert ReinviteCompleted(True, 200, "OK") in alice.events
    assert alice.session.can_reinvite and bob.session.can_reinvite


def test_bob_hangs_up_end_to_end():
    pair = Pair()
    pair.establish()
    pair.call(pair.bob, "end")
    assert pair.bob.session.state is SessionState.ENDED
    assert pair.alice.session.state is SessionState.ENDED
    assert pair.alice.session.reason == "remote hangup"
    assert pair.bob.session.reason == "local hangup"
    assert pair.bob.session.dialog.state.value == "terminated"


def test_2xx_retransmitted_until_the_lost_ack_is_replaced():
    pair = Pair()
    pair.run(pair.alice, pair.alice.session.start(make_invite(), 0.0))
    pair.deliver()
    pair.run(pair.bob, pair.bob.session.accept(ANSWER, 0.0))
    # the 200 is lost: Alice has not seen it
    pair.queue.clear()
    assert pair.bob.session.next_deadline() == 0.5
    pair.tick(0.5)  # the retransmission reaches Alice, she ACKs, Bob is established
    assert pair.alice.session.state is SessionState.ESTABLISHED
    assert pair.bob.session.state is SessionState.ESTABLISHED
    assert pair.bob.session.next_deadline() is None
