"""Chat between two sipd daemons whose accounts are registered at Kamailio: the INVITE goes
through the proxy, the MSRP connection directly between the daemons or through Kamailio's
msrp module as an RFC 4976 relay (AUTH with digest, Use-Path in a=path; the relay over TLS as
msrp.relay requires, the daemons' own URIs over TCP or TLS), one side or both behind it."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.harness.chat import CHAT_TOPICS, converse, hang_up, start_chat
from tests.harness.peer import registered_user
from tests.harness.waits import eventually

pytestmark = pytest.mark.interop

TOPICS = (*CHAT_TOPICS, "accounts")


def msrp_settings(kamailio: Any, transport: str, relayed: bool) -> dict[str, Any]:
    """msrp.transport `transport` (our own URI's); the relay is always reached over TLS
    (msrps:, RFC 4976), verified against the test CA."""
    settings: dict[str, Any] = {"msrp.transport": transport,
                                "tls.ca_list": str(kamailio.ca_cert_path)}
    if relayed:
        settings.update({"msrp.relay": kamailio.msrp_relay_uri("tls"),
                         "msrp.relay_password": kamailio.msrp_password})
    return settings


async def test_chat_between_accounts_registered_at_kamailio(kamailio_factory, tmp_path):
    kamailio = kamailio_factory(tls=True)
    async with registered_user(tmp_path, kamailio, "alice", topics=TOPICS) as alice, \
            registered_user(tmp_path, kamailio, "bob", "tcp", topics=TOPICS) as bob:
        a_id, b_id = await start_chat(alice, bob, to=kamailio.aor("bob"))
        new = bob.events.matching("session.new", id=b_id)[0]
        assert new["remote"].startswith("sip:alice@")
        await converse(alice, a_id, bob, b_id)
        message = bob.events.matching("chat.message", session=b_id)[0]
        assert message["from"] == kamailio.aor("alice")  # CPIM From: alice's AOR
        await hang_up(bob, b_id, alice, a_id)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
@pytest.mark.parametrize("both", [False, True], ids=["one-side", "both-sides"])
async def test_chat_through_the_kamailio_msrp_relay(kamailio_factory, tmp_path, transport,
                                                    both):
    kamailio = kamailio_factory(tls=True, features={"msrp"})
    async with registered_user(tmp_path, kamailio, "alice", topics=TOPICS,
                               settings=msrp_settings(kamailio, transport, True)) as alice, \
            registered_user(tmp_path, kamailio, "bob", topics=TOPICS,
                            settings=msrp_settings(kamailio, transport, both)) as bob:
        relay_port = kamailio.tls_port
        a_id, b_id = await start_chat(alice, bob, to=kamailio.aor("bob"))
        # 2048-byte chunks through the relay (Kamailio's takes frames under 10 KB)
        await converse(alice, a_id, bob, b_id, big=30_000)
        (line,) = (await alice.call("sessions.get", id=a_id))["lines"]
        assert line["kind"] == "chat" and line["connected"]
        assert len(line["local_path"]) == 2  # the relay's Use-Path, then alice
        assert line["local_path"][0].startswith(f"msrps://127.0.0.1:{relay_port}/")
        (theirs,) = (await bob.call("sessions.get", id=b_id))["lines"]
        assert len(theirs["local_path"]) == (2 if both else 1)
        assert theirs["remote_path"] == line["local_path"]
        await hang_up(alice, a_id, bob, b_id)


async def test_a_refreshed_relay_path_reaches_the_peer(kamailio_factory, tmp_path):
    """Kamailio grants 3 s: alice's relay link refreshes every ~2 s with a new Use-Path, which
    a re-INVITE tells bob; bob's messages still reach alice once the first grant is gone."""
    kamailio = kamailio_factory(tls=True, features={"msrp"}, msrp_expires=3)
    async with registered_user(tmp_path, kamailio, "alice", topics=TOPICS,
                               settings=msrp_settings(kamailio, "tls", True)) as alice, \
            registered_user(tmp_path, kamailio, "bob", topics=TOPICS,
                            settings=msrp_settings(kamailio, "tls", False)) as bob:
        a_id, b_id = await start_chat(alice, bob, to=kamailio.aor("bob"))
        first = (await bob.call("sessions.get", id=b_id))["lines"][0]["remote_path"]
        started = trio.current_time()

        async def moved_on() -> list[str] | None:
            # the first grant lives 3 + 5 s at the relay (its htable entry's lifetime)
            path = (await bob.call("sessions.get", id=b_id))["lines"][0]["remote_path"]
            return path if path != first and trio.current_time() - started > 9 else None

        path = await eventually(moved_on, what="bob to learn alice's new path", timeout=30,
                                interval=0.5)
        ours = (await alice.call("sessions.get", id=a_id))["lines"][0]["local_path"]
        assert path == ours and path[-1] == first[-1]  # the same alice, a new relay path
        sent = (await bob.call("chat.send", session=b_id, content="after the refresh"))
        got = await alice.events.wait("chat.message", session=a_id,
                                      message_id=sent["message_id"])
        assert got["content"] == "after the refresh"
        await bob.events.wait("chat.delivery", session=b_id, message_id=sent["message_id"],
                              status="delivered")
        await hang_up(alice, a_id, bob, b_id)
