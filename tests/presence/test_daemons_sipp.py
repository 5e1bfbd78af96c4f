"""A sipd daemon subscribing to sipp notifiers that make it work (RFC 6665 at the wire):
423 Interval Too Brief, a hostile body, a forked NOTIFY, terminated;reason=deactivated, a
NOTIFY for a subscription it no longer holds, and 481 to a refresh. Driven over RPC."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.process import SipdProcess
from tests.peers.sipp import Sipp

from .rpc_peer import open_peer

pytestmark = pytest.mark.interop

SCENARIOS = Path(__file__).with_name("scenarios")


@pytest.fixture
def sipd(tmp_path):
    daemon = SipdProcess(tmp_path, name="sipd").start()
    try:
        yield daemon
    finally:
        daemon.stop()


async def test_interval_too_brief_hostile_body_forks_and_deactivation(sipd, tmp_path):
    notifier = Sipp(tmp_path).start(SCENARIOS / "notifier_edges.xml", timeout=20)
    async with open_peer(sipd) as peer:
        bob = f"sip:bob@127.0.0.1:{notifier.local_port}"
        await peer.call("presence.subscribe", to=bob)
        # a DOCTYPE is refused with a reason, nothing fetched; the subscription lives on
        refused = await peer.event("presence.subscription", to=bob, state="active")
        while "error" not in refused:
            refused = await peer.event("presence.subscription", to=bob)
        assert "DOCTYPE" in refused["error"], refused
        first = await peer.event("presence.state", contact=bob, note="first notifier")
        assert first["basic"] == "open"
        second = await peer.event("presence.state", contact=bob, note="second notifier")
        assert second["basic"] == "open"
        # deactivated in both dialogs: subscribe again at once
        again = await peer.event("presence.subscription", to=bob, reason="deactivated")
        assert again["state"] == "subscribing"
    result = notifier.wait(timeout=20)
    assert result.ok, result.report()


async def test_a_refresh_answered_481_subscribes_again(sipd, tmp_path):
    notifier = Sipp(tmp_path).start(SCENARIOS / "notifier_refresh_481.xml", timeout=20)
    async with open_peer(sipd) as peer:
        bob = f"sip:bob@127.0.0.1:{notifier.local_port}"
        await peer.call("presence.subscribe", to=bob)
        await peer.event("presence.state", contact=bob, note="soon gone")
        again = await peer.event("presence.subscription", to=bob, code=481)
        assert again["state"] == "subscribing"
        assert again["reason"].startswith("481")
        result = notifier.wait(timeout=20)
        assert result.ok, result.report()
        await peer.call("presence.unsubscribe", to=bob)


async def test_watchers_edges(sipd, tmp_path):
    async with open_peer(sipd) as peer:
        watcher = Sipp(tmp_path).start(SCENARIOS / "watcher_edges.xml",
                                       target=("127.0.0.1", peer.ports["udp"]), timeout=30)
        uri = f"sip:sipp@127.0.0.1:{watcher.local_port}"
        pending = await peer.event("presence.watcher", watcher=uri, status="pending")
        assert pending["event"] == "subscribe"
        await peer.call("presence.authorize", watcher=uri, allow=True)
        await peer.event("presence.watcher", watcher=uri, status="active")
        await peer.call("presence.publish", status="open", note="answered 481")
        gone = await peer.event("presence.watcher", watcher=uri, status="terminated")
        assert gone["event"] == "timeout"
        result = watcher.wait(timeout=20)
        assert result.ok, result.report()
        assert (await peer.call("presence.watchers"))["watchers"] == []


async def test_a_notify_that_overtakes_the_2xx_finds_its_subscription(sipd, tmp_path):
    """The dialog is claimed in the user agent's dialog table before the SUBSCRIBE leaves."""
    notifier = Sipp(tmp_path).start(SCENARIOS / "notifier_notify_first.xml", timeout=20)
    async with open_peer(sipd) as peer:
        bob = f"sip:bob@127.0.0.1:{notifier.local_port}"
        await peer.call("presence.subscribe", to=bob)
        state = await peer.event("presence.state", contact=bob, note="before the 200")
        assert state["basic"] == "open"
        await peer.event("presence.subscription", to=bob, state="active")
        await peer.call("presence.unsubscribe", to=bob)
        await peer.event("presence.subscription", to=bob, state="terminated",
                         reason="unsubscribed")
        result = notifier.wait(timeout=20)
        assert result.ok, result.report()
