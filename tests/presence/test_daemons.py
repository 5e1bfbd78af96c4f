"""Presence between two real sipd daemons and no server at all: each one's built-in `local`
account is its own presence agent. Everything is driven over RPC, as a client does."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest

from sipctl.client import Client, connect
from tests.daemon import SipdProcess, running


class Peer:
    def __init__(self, daemon: SipdProcess, rpc: Client, ports: dict[str, int]) -> None:
        self.daemon = daemon
        self.rpc = rpc
        self.ports = ports
        self.unread: list[dict[str, Any]] = []  # events read past while waiting for others

    def uri(self, transport: str = "udp") -> str:
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"sip:local@127.0.0.1:{self.ports[transport]}{suffix}"

    async def call(self, method: str, **params: Any) -> Any:
        return await self.rpc.call(method, {"account": "local", **params})

    async def event(self, name: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The first event `name` not returned before whose data has the `match` values (the
        order of events of different names is not the point here)."""
        def fits(params: dict[str, Any]) -> bool:
            return params["name"] == name and all(params["data"].get(k) == v
                                                  for k, v in match.items())
        for params in self.unread:
            if fits(params):
                self.unread.remove(params)
                return params["data"]
        while True:
            params = await self.rpc.next_event(timeout=timeout)
            if fits(params):
                return params["data"]
            self.unread.append(params)


@asynccontextmanager
async def open_peer(daemon: SipdProcess) -> AsyncIterator[Peer]:
    log_start = len(daemon.log())
    try:
        async with connect(daemon.endpoint) as rpc:
            await rpc.call("events.subscribe", {"topics": ["presence"]})
            state = await rpc.call("system.state")
            yield Peer(daemon, rpc, state["sip"]["ports"])
    finally:  # pytest shows it when the test failed
        print(f"--- sipd {daemon.base.name} during the test ---\n{daemon.log()[log_start:]}")


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
