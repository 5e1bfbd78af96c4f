"""Presence authorisation decided by the server: Kamailio's presence server reads the
presentity's pres-rules (RFC 5025) from its own XCAP server (presence_xml with
integrated_xcap_server, no force_active), and sipd writes them there with presence.authorize.

alice's daemon has XCAP; bob's (and carol's) subscribe to alice. A watcher no rule names waits
pending; alice sees it pending in her watcher information (presence.winfo); allow makes it
active and brings alice's status; block terminates it (reason rejected), confirm leaves it
pending; polite-block keeps it active without showing alice as available."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from sipd.xcap.commonpolicy import parse_ruleset
from sipd.xcap.presrules import effective_action
from sipd.xcap.trio.client import XcapClient, XcapResponse
from sipd.xcap.uri import XcapUri
from tests.harness.peer import DaemonPeer, account_fields, open_peer
from tests.harness.process import SipdProcess
from tests.harness.waits import eventually
from tests.peers.fixtures import PEER_USERS
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.interop

TOPICS = ("presence", "accounts", "contacts", "xcap")


@pytest.fixture(scope="module")
def kam(tmp_path_factory):
    with Kamailio(tmp_path_factory.mktemp("kamailio-presrules"), users=dict(PEER_USERS),
                  tls=False, features={"presence", "xcap", "presrules"}) as kamailio:
        yield kamailio


def xcap_root(kam: Kamailio) -> str:
    return f"http://127.0.0.1:{kam.xcap_port}/xcap-root"


@asynccontextmanager
async def user(tmp_path, kam: Kamailio, name: str, *, xcap: bool = False
               ) -> AsyncIterator[DaemonPeer]:
    """A daemon of its own with `name` registered at Kamailio (and its XCAP root, with
    `xcap`)."""
    daemon = SipdProcess(tmp_path, {"xcap.retries": 1, "xcap.timeout": 5}, name=f"sipd-{name}")
    try:
        daemon.start()
        async with open_peer(daemon, TOPICS) as peer:
            fields: dict[str, Any] = account_fields(kam, name, "udp")
            if xcap:
                fields["xcap"] = {"root": xcap_root(kam)}
            peer.account = await peer.call("accounts.add", **fields)
            registration = await peer.wait(
                "account.registration", lambda d: d["state"] in ("registered", "failed"),
                account=peer.id)
            assert registration["state"] == "registered", registration
            yield peer
    finally:
        daemon.stop()


async def server_action(kam: Kamailio, watcher: str) -> str | None:
    """What alice's pres-rules on the server say about `watcher`, read as another client."""
    root = xcap_root(kam)
    async with XcapClient(root, username="alice", password=PEER_USERS["alice"]) as client:
        got = await client.get(XcapUri(root, "pres-rules", "index", kam.aor("alice")))
    assert isinstance(got, XcapResponse)
    return effective_action(parse_ruleset(got.content), watcher)


async def test_pres_rules_written_by_sipd_decide_at_the_presence_server(kam, tmp_path):
    alice_aor, bob_aor = kam.aor("alice"), kam.aor("bob")
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(user(tmp_path, kam, "alice", xcap=True))
        bob = await stack.enter_async_context(user(tmp_path, kam, "bob"))

        await alice.call("presence.publish", account=alice.id, status="open",
                         note="in the lab")
        await alice.wait("presence.publication", state="published")
        listed = await alice.call("presence.watchers", account=alice.id)
        assert listed["watchers"] == []
        await alice.wait("presence.subscription", event="presence.winfo", state="active")

        # nobody decided about bob: his subscription waits, and alice's winfo says so
        await bob.call("presence.subscribe", account=bob.id, to=alice_aor)
        await bob.wait("presence.subscription", to=alice_aor, state="pending")
        pending = await alice.wait("presence.watcher", watcher=bob_aor, status="pending")
        assert pending["package"] == "presence"
        assert not bob.events.matching("presence.state", contact=alice_aor, status="open")

        # allowed: a pres-rules document on the server, which makes bob's subscription active
        mark_a, mark_b = alice.events.mark(), bob.events.mark()
        result = await alice.call("presence.authorize", account=alice.id, watcher=bob_aor,
                                  allow=True)
        assert (result["store"], result["action"]) == ("xcap", "allow")
        assert await server_action(kam, bob_aor) == "allow"
        await bob.wait("presence.subscription", to=alice_aor, state="active", since=mark_b)
        state = await bob.wait("presence.state", contact=alice_aor, note="in the lab",
                               since=mark_b)
        assert (state["status"], state["basic"]) == ("open", "open")
        await alice.wait("presence.watcher", watcher=bob_aor, status="active", since=mark_a)
        listed = await alice.call("presence.watchers", account=alice.id)
        assert {(w["watcher"], w["status"]) for w in listed["watchers"]} == \
            {(bob_aor, "active")}

        # blocked: the server ends bob's subscription, rejected (RFC 5025 §3.2.1)
        mark_a, mark_b = alice.events.mark(), bob.events.mark()
        result = await alice.call("presence.authorize", account=alice.id, watcher=bob_aor,
                                  allow=False)
        assert result["action"] == "block"
        assert await server_action(kam, bob_aor) == "block"
        ended = await bob.wait("presence.subscription", to=alice_aor, state="terminated",
                               since=mark_b)
        assert ended["reason"] == "rejected"
        gone = await alice.wait("presence.watcher", watcher=bob_aor, status="terminated",
                                since=mark_a)
        # RFC 3857 would list him terminated with event rejected; Kamailio leaves him out of
        # the next full list, which sipd reports as terminated (no event)
        assert gone["event"] in ("rejected", None)
        listed = await alice.call("presence.watchers", account=alice.id)
        assert listed["watchers"] == []

        # a new subscription of a blocked watcher is refused at once
        mark_b = bob.events.mark()
        await bob.call("presence.subscribe", account=bob.id, to=alice_aor)
        again = await bob.wait("presence.subscription", to=alice_aor, state="terminated",
                               since=mark_b)
        assert again["reason"] == "rejected"
        assert not bob.events.matching("presence.state", since=mark_b, contact=alice_aor,
                                       status="open")

        # confirm: the server asks alice each time, and bob waits pending again
        mark_a, mark_b = alice.events.mark(), bob.events.mark()
        await alice.call("presence.authorize", account=alice.id, watcher=bob_aor,
                         action="confirm")
        assert await server_action(kam, bob_aor) == "confirm"
        await bob.call("presence.subscribe", account=bob.id, to=alice_aor)
        await bob.wait("presence.subscription", to=alice_aor, state="pending", since=mark_b)
        await alice.wait("presence.watcher", watcher=bob_aor, status="pending", since=mark_a)



async def test_a_domain_allowed_with_one_watcher_blocked_and_one_politely(kam, tmp_path):
    """Everyone at the domain allowed (written first), dave blocked by name, carol politely
    blocked: the server decides each as RFC 5025 says. Kamailio takes the first rule that
    matches and ignores <except>: sipd's watchers' rules must come before its domain rules."""
    alice_aor = kam.aor("alice")
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(user(tmp_path, kam, "alice", xcap=True))
        bob = await stack.enter_async_context(user(tmp_path, kam, "bob"))
        carol = await stack.enter_async_context(user(tmp_path, kam, "carol"))
        dave = await stack.enter_async_context(user(tmp_path, kam, "dave"))

        await alice.call("presence.publish", account=alice.id, status="open", note="around")
        await alice.wait("presence.publication", state="published")
        await alice.call("presence.authorize", account=alice.id, domain=kam.domain,
                         action="allow")
        # (the server keeps alice's rules between tests: her decision about bob is forgotten)
        await alice.call("presence.authorize", account=alice.id, watcher=kam.aor("bob"))
        await alice.call("presence.authorize", account=alice.id, watcher=kam.aor("dave"),
                         action="block")
        await alice.call("presence.authorize", account=alice.id, watcher=kam.aor("carol"),
                         action="polite-block")
        policies = await alice.call("presence.policies", account=alice.id)
        assert {(p["target"], p["action"]) for p in policies["policies"]} == {
            (kam.domain, "allow"), (kam.aor("dave"), "block"), (kam.aor("carol"), "polite-block")}

        # bob: nobody named him, his domain is allowed
        await bob.call("presence.subscribe", account=bob.id, to=alice_aor)
        await bob.wait("presence.subscription", to=alice_aor, state="active")
        await bob.wait("presence.state", contact=alice_aor, note="around", status="open")

        # dave: blocked by name although his domain is allowed
        await dave.call("presence.subscribe", account=dave.id, to=alice_aor)
        refused = await dave.wait("presence.subscription", to=alice_aor, state="terminated")
        assert refused["reason"] == "rejected"
        assert not dave.events.matching("presence.state", contact=alice_aor)

        # carol, politely blocked: her subscription is active, and alice is never shown to her
        # as available, neither at first nor after a change that bob sees
        await carol.call("presence.subscribe", account=carol.id, to=alice_aor)
        await carol.wait("presence.subscription", to=alice_aor, state="active")
        await alice.call("presence.publish", account=alice.id, status="open", note="still here")
        await bob.wait("presence.state", contact=alice_aor, note="still here")

        def carol_read_all() -> bool:  # every NOTIFY Kamailio sent her has been read
            sent = kam.log_text().count(
                f"NOTIFY {kam.aor('carol')} via sip:carol-example-test@")
            read = carol.daemon.log().count(f"presence NOTIFY from {alice_aor}")
            return sent >= 1 and read == sent
        await eventually(carol_read_all, what="carol to read the NOTIFYs of alice's presence")
        assert not carol.events.matching("presence.state", contact=alice_aor, status="open")
        assert not carol.events.matching("presence.state", contact=alice_aor, note="around")
        assert not carol.events.matching("presence.state", contact=alice_aor, note="still here")
