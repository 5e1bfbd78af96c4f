"""Presence between two real sipd daemons and no server at all: each one's built-in `local`
account is its own presence agent. Everything is driven over RPC, as a client does."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.harness.peer import daemon_settings
from tests.harness.process import running
from tests.peers.sipp import Sipp

from .rpc_peer import open_peer

SCENARIOS = Path(__file__).with_name("scenarios")


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


async def test_busy_lamp_of_a_direct_account(tmp_path):
    """a (presence.publish_dialogs on) calls a sipp UAS; b, an authorized dialog watcher of
    a's local account, sees the call trying, confirmed, then terminated."""
    settings = {**daemon_settings(), "presence.publish_dialogs": True}
    with running(tmp_path, settings) as (a_daemon, b_daemon):
        async with open_peer(a_daemon, topics=("presence", "sessions")) as a, \
                open_peer(b_daemon) as b:
            await a.call("presence.authorize", watcher=b.uri(), allow=True)
            await b.call("presence.subscribe", to=a.uri(), event="dialog")
            await b.event("presence.subscription", to=a.uri(), event="dialog",
                          state="active")
            callee = Sipp(tmp_path).start(SCENARIOS / "call_uas_answer.xml", timeout=20)
            session = await a.call("sessions.start",
                                   to=f"sip:carol@127.0.0.1:{callee.local_port}")
            lit = await b.event("presence.dialog", contact=a.uri(), id=session["id"],
                                state="confirmed", timeout=15)
            assert lit["busy"] is True and lit["direction"] == "initiator"
            await a.event("session.state", id=session["id"], state="established")
            await a.rpc.call("sessions.end", {"id": session["id"]})
            out = await b.event("presence.dialog", contact=a.uri(), id=session["id"],
                                state="terminated")
            assert out["busy"] is False
            result = callee.wait(timeout=15)
            assert result.ok, result.report()


async def test_dialog_state_is_not_served_unless_published(daemons):
    async with open_peer(daemons[0]) as a, open_peer(daemons[1]) as b:
        await b.call("presence.subscribe", to=a.uri(), event="dialog")
        ended = await b.event("presence.subscription", to=a.uri(), state="terminated")
        assert ended["code"] == 489


async def test_watchers_beyond_the_limit_get_503(tmp_path):
    with running(tmp_path, {"presence.max_watchers": 1}) as (a_daemon, b_daemon):
        async with open_peer(a_daemon) as a, open_peer(b_daemon) as b:
            await a.call("presence.subscribe", to=b.uri())
            await b.event("presence.watcher", watcher=a.uri(), status="pending")
            await a.call("presence.subscribe", to=b.uri("tcp"))
            refused = await a.event("presence.subscription", to=b.uri("tcp"), code=503)
            assert refused["state"] == "retrying" and refused["retry_at"]
            assert len((await b.call("presence.watchers"))["watchers"]) == 1


async def test_presence_follows_changes_of_the_account(daemons):
    """An account that changes subscribes again with its new settings; one that is removed
    ends its subscriptions."""
    async with open_peer(daemons[0]) as a, open_peer(daemons[1]) as b:
        carol = await a.rpc.call("accounts.add", {"aor": "sip:carol@127.0.0.1",
                                                  "register": False})
        await b.call("presence.authorize", watcher="sip:carol@127.0.0.1", allow=True)
        await a.rpc.call("presence.subscribe", {"account": carol["id"], "to": b.uri()})
        await a.event("presence.subscription", account=carol["id"], state="active")
        await b.call("presence.publish", status="open", note="for carol")
        await a.event("presence.state", account=carol["id"], note="for carol")

        await a.rpc.call("accounts.update", {"id": carol["id"],
                                             "changes": {"display_name": "Carol"}})
        await a.event("presence.subscription", account=carol["id"], state="terminated",
                      reason="unsubscribed")
        await a.event("presence.subscription", account=carol["id"], state="active")
        await a.event("presence.state", account=carol["id"], note="for carol")
        watchers = (await b.call("presence.watchers"))["watchers"]
        assert [w["display_name"] for w in watchers if w["status"] == "active"] == ["Carol"]

        await a.rpc.call("accounts.remove", {"id": carol["id"]})
        await a.event("presence.subscription", account=carol["id"], state="terminated",
                      reason="unsubscribed")
        await b.event("presence.watcher", display_name="Carol", status="terminated")
        with trio.fail_after(5):  # the final NOTIFY is in: the subscription is forgotten
            while (await a.rpc.call("system.state"))["presence"]["subscriptions"]:
                await trio.sleep(0.05)
