"""sipd daemons at a real presence server: Kamailio with presence, presence_xml (and winfo),
presence_mwi, presence_dialoginfo and rls. Each daemon's account registers there; everything
is driven over RPC, the way a client does it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.peer import daemon_settings
from tests.harness.process import SipdProcess, running
from tests.peers.fixtures import PEER_USERS
from tests.peers.kamailio import Kamailio
from tests.peers.sipp import Sipp

from .rpc_peer import open_peer
from .test_kamailio import store_rls_services

pytestmark = pytest.mark.interop

SCENARIOS = Path(__file__).with_name("scenarios")


@pytest.fixture(scope="module")
def kam(tmp_path_factory):
    with Kamailio(tmp_path_factory.mktemp("kamailio-presence"), users=dict(PEER_USERS),
                  tls=False, features={"presence"}) as kamailio:
        yield kamailio


@pytest.fixture
def daemons(tmp_path):
    started = [SipdProcess(tmp_path, name=name) for name in ("a", "b")]
    try:
        for daemon in started:
            daemon.start(wait=False)
        for daemon in started:
            daemon.wait_ready()
        yield started
    finally:
        for daemon in started:
            daemon.stop()


def account(kam: Kamailio, user: str, **fields):
    registrar = kam.proxy_uri("udp").replace(";transport=udp", "")
    return {"aor": kam.aor(user), "password": PEER_USERS[user], "registrar": registrar,
            **fields}


async def test_published_at_kamailio_and_seen_by_another_sipd(kam, daemons):
    async with open_peer(daemons[0], accounts=(account(kam, "alice"),)) as alice, \
            open_peer(daemons[1], accounts=(account(kam, "bob"),)) as bob:
        result = await alice.call("presence.publish", status="open", note="at my desk",
                                  activities=["working"])
        assert result["published"] is True
        published = await alice.event("presence.publication", state="published")
        assert published["code"] == 200

        await bob.call("presence.subscribe", to=kam.aor("alice"))
        await bob.event("presence.subscription", to=kam.aor("alice"), state="active")
        state = await bob.event("presence.state", contact=kam.aor("alice"), note="at my desk")
        assert (state["status"], state["basic"], state["activities"]) == \
            ("open", "open", ["working"])

        # the server's watcher information shows bob watching alice
        await alice.call("presence.watchers")
        watcher = await alice.event("presence.watcher", watcher=kam.aor("bob"),
                                    status="active")
        assert watcher["package"] == "presence"
        listed = await alice.call("presence.watchers")
        assert any(w["watcher"] == kam.aor("bob") and w["status"] == "active"
                   for w in listed["watchers"])

        # a modification (SIP-If-Match) reaches the watcher
        await alice.call("presence.publish", status="open", note="lunch", activities=["meal"])
        state = await bob.event("presence.state", contact=kam.aor("alice"), note="lunch")
        assert state["status"] == "away"
        snapshot = await alice.rpc.call("system.state")
        [publication] = snapshot["presence"]["publications"]
        assert publication["server"] == "published" and publication["etag"]

        # removed: the watcher learns alice is gone (no document, or closed)
        await alice.call("presence.unpublish")
        await alice.event("presence.publication", state="unpublished")
        await bob.event("presence.state", contact=kam.aor("alice"), status="closed")

        await bob.call("presence.unsubscribe", to=kam.aor("alice"))
        await bob.event("presence.subscription", to=kam.aor("alice"), state="terminated",
                        reason="unsubscribed")
        await alice.event("presence.watcher", watcher=kam.aor("bob"), status="terminated")


async def test_a_resource_list_gives_one_subscription_and_a_state_per_contact(kam, daemons):
    store_rls_services(kam, "dave")
    friends = f"sip:friends@{kam.domain}"
    async with open_peer(daemons[0], accounts=(account(kam, "alice"),)) as alice, \
            open_peer(daemons[1], accounts=(account(kam, "dave"),)) as dave:
        await alice.call("presence.publish", status="open", note="here")
        await alice.event("presence.publication", state="published")

        await dave.call("presence.subscribe", to=friends, list=True)
        seen = {}
        while set(seen) != {kam.aor(user) for user in ("alice", "bob", "carol")} \
                or seen[kam.aor("alice")].get("note") != "here":
            state = await dave.event("presence.state", list=friends, timeout=15)
            seen[state["contact"]] = state
        snapshot = await dave.rpc.call("system.state")
        assert [(s["to"], s["list"]) for s in snapshot["presence"]["subscriptions"]] == \
            [(friends, True)]  # one subscription for the three of them
        await dave.call("presence.unsubscribe", to=friends)
        await dave.event("presence.subscription", to=friends, state="terminated")


async def test_message_summary_published_by_a_voicemail_system(kam, daemons, tmp_path):
    async with open_peer(daemons[0], topics=("presence", "accounts"),
                         accounts=(account(kam, "carol", voicemail=kam.aor("carol")),)
                         ) as carol:
        # the account subscribes to its voicemail's summary once it has registered
        await carol.event("presence.subscription", event="message-summary", state="active")
        voicemail = Sipp(tmp_path).start(
            SCENARIOS / "publish_message_summary.xml", target=("127.0.0.1", kam.udp_port),
            rows=[["carol", kam.domain,
                   f"[authentication username=carol password={PEER_USERS['carol']}]",
                   "3", "7"]], timeout=20)
        result = voicemail.wait(timeout=15)
        assert result.ok, result.report()
        summary = await carol.event("account.message_summary", waiting=True)
        assert (summary["new"], summary["old"]) == (3, 7)
        assert summary["account"] == carol.id


async def test_a_call_lights_the_busy_lamp(kam, daemons, tmp_path):
    """pua_dialoginfo publishes the state of a call the proxy routes (sipp to sipp); a sipd
    watching the caller's dialog state sees it confirmed, then terminated."""
    sipp = Sipp(tmp_path)
    async with open_peer(daemons[0], accounts=(account(kam, "bob"),)) as bob:
        await bob.call("presence.subscribe", to=kam.aor("alice"), event="dialog")
        await bob.event("presence.subscription", to=kam.aor("alice"), event="dialog",
                        state="active")
        callee = sipp.start(SCENARIOS / "call_uas_answer.xml", timeout=20)
        caller = sipp.start(SCENARIOS / "call_uac_auth.xml", target=("127.0.0.1", kam.udp_port),
                            rows=[["alice", kam.domain, "carol", str(callee.local_port),
                                   f"[authentication username=alice "
                                   f"password={PEER_USERS['alice']}]"]], timeout=20)
        lit = await bob.event("presence.dialog", contact=kam.aor("alice"), state="confirmed")
        assert lit["busy"] is True
        out = await bob.event("presence.dialog", contact=kam.aor("alice"), state="terminated",
                              timeout=15)
        assert out["busy"] is False
        for run in (caller, callee):
            result = run.wait(timeout=15)
            assert result.ok, result.report()


async def test_sipd_publishes_its_calls_and_another_sipd_sees_them(kam, tmp_path):
    """alice's daemon (presence.publish_dialogs on) calls a sipp UAS through Kamailio and
    publishes the call's dialog state there; bob's daemon watching alice's dialogs sees the
    dialog sipd named after its session confirmed, then terminated."""
    settings = {**daemon_settings(), "presence.publish_dialogs": True}
    with running(tmp_path, settings) as (a_daemon, b_daemon):
        async with open_peer(a_daemon, topics=("presence", "sessions"),
                             accounts=(account(kam, "alice"),)) as alice, \
                open_peer(b_daemon, accounts=(account(kam, "bob"),)) as bob:
            await bob.call("presence.subscribe", to=kam.aor("alice"), event="dialog")
            await bob.event("presence.subscription", to=kam.aor("alice"), event="dialog",
                            state="active")
            callee = Sipp(tmp_path).start(SCENARIOS / "call_uas_answer.xml", timeout=20)
            session = await alice.call("sessions.start",
                                       to=f"sip:carol@127.0.0.1:{callee.local_port}")
            await alice.event("presence.publication", event="dialog", state="published")
            lit = await bob.event("presence.dialog", contact=kam.aor("alice"),
                                  id=session["id"], state="confirmed", timeout=15)
            assert lit["busy"] is True
            await alice.event("session.state", id=session["id"], state="established")
            await alice.rpc.call("sessions.end", {"id": session["id"]})
            await bob.event("presence.dialog", contact=kam.aor("alice"), id=session["id"],
                            state="terminated")
            result = callee.wait(timeout=15)
            assert result.ok, result.report()
