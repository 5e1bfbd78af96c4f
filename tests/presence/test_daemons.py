"""Presence between two real sipd daemons and no server at all: each one's built-in `local`
account is its own presence agent. Everything is driven over RPC, as a client does."""

from __future__ import annotations

import pytest

from tests.daemon import running

from .rpc_peer import open_peer


@pytest.fixture
def daemons(tmp_path):
    with running(tmp_path) as started:
        yield started


async def test_two_daemons_see_each_others_status(daemons):
    async with open_peer(daemons[0]) as a, open_peer(daemons[1]) as b:
        await a.call("presence.subscribe", to=b.uri())
        # b holds a new watcher pending: a hears nothing of b's status yet
        pending = await b.event("presence.watcher", status="pending")
        assert pending["watcher"] == a.uri() and pending["event"] == "subscribe"
        await a.event("presence.subscription", to=b.uri(), state="pending")
        watchers = await b.call("presence.watchers")
        assert [(w["watcher"], w["status"]) for w in watchers["watchers"]] == \
            [(a.uri(), "pending")]

        allowed = await b.call("presence.authorize", watcher=a.uri(), allow=True)
        assert allowed["subscriptions"] == 1
        await b.event("presence.watcher", watcher=a.uri(), status="active")
        await a.event("presence.subscription", to=b.uri(), state="active")
        first = await a.event("presence.state", contact=b.uri())
        assert first["basic"] == "open"  # nothing published yet: the daemon is up

        result = await b.call("presence.publish", status="open", note="at my desk",
                              activities=["working"])
        assert result["watchers"] == 1 and result["published"] is False
        state = await a.event("presence.state", contact=b.uri(), note="at my desk")
        assert (state["status"], state["basic"], state["activities"]) == \
            ("open", "open", ["working"])

        await b.call("presence.publish", status="open", note="lunch", activities=["meal"])
        state = await a.event("presence.state", contact=b.uri(), note="lunch")
        assert state["status"] == "away"

        await b.call("presence.publish", status="closed")
        state = await a.event("presence.state", contact=b.uri(), basic="closed")
        assert state["status"] == "closed"

        snapshot = await a.rpc.call("system.state")
        assert [(s["to"], s["state"]) for s in snapshot["presence"]["subscriptions"]] == \
            [(b.uri(), "active")]
        snapshot = await b.rpc.call("system.state")
        assert [(w["watcher"], w["status"]) for w in snapshot["presence"]["watchers"]] == \
            [(a.uri(), "active")]

        # b stops: its watcher is told (deactivated) and a tries again
        daemons[1].stop()
        ended = await a.event("presence.subscription", to=b.uri(), reason="deactivated")
        assert ended["state"] in ("subscribing", "retrying")


async def test_a_denied_watcher_is_rejected(daemons):
    async with open_peer(daemons[0]) as a, open_peer(daemons[1]) as b:
        await b.call("presence.authorize", watcher=a.uri(), allow=False)
        await a.call("presence.subscribe", to=b.uri())
        ended = await a.event("presence.subscription", to=b.uri(), state="terminated")
        assert ended["code"] == 403

        # allowed later, a new subscription is active at once (over TCP this time)
        await b.call("presence.authorize", watcher=a.uri("tcp"), allow=True)
        await a.call("presence.subscribe", to=b.uri("tcp"))
        await a.event("presence.subscription", to=b.uri("tcp"), state="active")
        await a.event("presence.state", contact=b.uri("tcp"), basic="open")
        await a.call("presence.unsubscribe", to=b.uri("tcp"))
        await a.event("presence.subscription", to=b.uri("tcp"), state="terminated",
                      reason="unsubscribed")
        await b.event("presence.watcher", watcher=a.uri("tcp"), status="terminated")
