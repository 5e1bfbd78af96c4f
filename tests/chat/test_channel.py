"""Two chat channels over real MSRP connections on 127.0.0.1 (TCP and TLS): messages and their
delivery, composing, display notifications, and a peer that goes away."""

from __future__ import annotations

import pytest
import trio

from sipd.chat.conversation import ChatConversation
from sipd.chat.payload import LOCAL_ACCEPT_TYPES, LOCAL_ACCEPT_WRAPPED_TYPES, ChatPayloads
from sipd.chat.trio.channel import ChatChannel
from sipd.messages.cpim import CPIMIdentity
from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint

ALICE, BOB = CPIMIdentity("sip:alice@127.0.0.1"), CPIMIdentity("sip:bob@127.0.0.1")


class Events:
    def __init__(self):
        self.items: list[tuple[str, dict]] = []
        self.changed = trio.Event()

    def __call__(self, name, data):
        self.items.append((name, data))
        self.changed.set()
        self.changed = trio.Event()

    async def wait(self, name, **match):
        with trio.fail_after(10):
            while True:
                for got, data in self.items:
                    if got == name and all(data.get(k) == v for k, v in match.items()):
                        return data
                await self.changed.wait()


async def channels(nursery, tmp_path, transport):
    ends = [MsrpEndpoint(EndpointSettings(transport=transport, state_dir=tmp_path / n))
            for n in ("a", "b")]
    for end in ends:
        await nursery.start(end.serve)
    ra, rb = await ends[0].reserve(), await ends[1].reserve()
    offer = MsrpMedia(ra.local_path, list(LOCAL_ACCEPT_TYPES), setup=Setup.ACTPASS,
                      fingerprints=ra.fingerprints)
    answer = MsrpMedia(rb.local_path, list(LOCAL_ACCEPT_TYPES), setup=Setup.ACTIVE,
                       fingerprints=rb.fingerprints)
    cb = await rb.connect(offer, active=True)
    nursery.start_soon(cb.run)
    ca = await ra.connect(answer, active=False)
    nursery.start_soon(ca.run)
    made = []
    for connection, me, peer, sid in ((ca, ALICE, BOB, "sa"), (cb, BOB, ALICE, "sb")):
        events = Events()
        payloads = ChatPayloads(me, peer, accept_types=LOCAL_ACCEPT_TYPES,
                                accept_wrapped_types=LOCAL_ACCEPT_WRAPPED_TYPES)
        channel = ChatChannel(connection, ChatConversation(payloads), events, session_id=sid,
                              remote=peer.uri)
        await nursery.start(channel.run)
        made.append((channel, events))
    return made


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_chat_both_ways_with_delivery_composing_and_display(tmp_path, transport):
    async with trio.open_nursery() as nursery:
        (alice, alice_events), (bob, bob_events) = await channels(nursery, tmp_path, transport)
        alice.composing("active")
        await bob_events.wait("chat.composing", state="active", **{"from": ALICE.uri})
        sent = alice.send("héllo".encode(), "text/plain")
        message = await bob_events.wait("chat.message", message_id=sent)
        assert message["content"] == "héllo" and message["from"] == ALICE.uri
        await bob_events.wait("chat.composing", state="idle")
        await alice_events.wait("chat.delivery", message_id=sent, status="delivered")
        bob.displayed([sent])
        await alice_events.wait("chat.delivery", message_id=sent, status="displayed")
        picture = bob.send(b"\x89PNG\r\n", "image/png")
        got = await alice_events.wait("chat.message", message_id=picture)
        assert got["encoding"] == "base64"
        nursery.cancel_scope.cancel()


async def test_a_peer_that_goes_away_fails_what_was_in_flight(tmp_path):
    async with trio.open_nursery() as nursery:
        (alice, alice_events), (bob, _) = await channels(nursery, tmp_path, "tcp")
        await bob.connection.stream.aclose()  # bob vanishes without a word
        sent = alice.send(b"anyone there?" * 1000, "text/plain")
        failed = await alice_events.wait("chat.delivery", message_id=sent, status="failed")
        assert failed["reason"]
        with trio.fail_after(10):
            while alice.ended is None:
                await trio.sleep(0.01)
        with pytest.raises(RuntimeError, match="ended"):
            alice.send(b"x", "text/plain")
        nursery.cancel_scope.cancel()
