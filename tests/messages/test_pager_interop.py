"""Pager-mode messages through Kamailio, between sipd and independent user agents.

alice (and dave) are accounts of real sipd daemons registered at Kamailio; bob is baresip
(driven over ctrl_tcp; it reports what it receives only in its log), carol is linphonec
(driven over stdin). Every MESSAGE goes through Kamailio, which authenticates the sender and
looks the recipient up in its location table.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.peer import registered_user
from tests.harness.waits import off_loop

pytestmark = pytest.mark.interop


def sipd_user(tmp_path: Any, kamailio: Any, user: str, transport: str) -> Any:
    """A daemon of its own with `user` registered at Kamailio over `transport`."""
    return registered_user(tmp_path, kamailio, user, transport, topics=("messages", "accounts"))


@pytest.fixture(params=["udp", "tcp"])
async def alice(request, tmp_path, kamailio):
    """alice on a sipd, registered over UDP or TCP (tests that need one use `alice_udp`)."""
    async with sipd_user(tmp_path, kamailio, "alice", request.param) as user:
        yield user


@pytest.fixture
async def alice_udp(tmp_path, kamailio):
    async with sipd_user(tmp_path, kamailio, "alice", "udp") as user:
        yield user


@pytest.fixture
async def dave_tcp(tmp_path, kamailio):
    async with sipd_user(tmp_path, kamailio, "dave", "tcp") as user:
        yield user


async def test_sipd_and_baresip(kamailio, alice, baresip_factory):
    transport = alice.transport
    bob = baresip_factory("bob", contacts=[kamailio.aor("alice")])
    await off_loop(bob.wait_event, "REGISTER_OK")

    result = await alice.send(kamailio.aor("bob"), f"héllo ✓ bob ({transport})")

    assert result["code"] == 200 and result["delivered"] is True
    assert await off_loop(bob.wait_message, text=f"héllo ✓ bob ({transport})") == (
        kamailio.aor("alice"), f"héllo ✓ bob ({transport})")

    await off_loop(bob.send_message, kamailio.aor("alice"), "héllo ✓ alice, from bob")

    received = await alice.event("message.received", content="héllo ✓ alice, from bob")
    assert received["account"] == alice.id
    assert received["from"] == kamailio.aor("bob")
    assert received["to"] == kamailio.aor("alice")
    assert received["content_type"] == "text/plain"


async def test_sipd_and_linphonec(kamailio, alice, linphonec_factory):
    transport = alice.transport
    carol = linphonec_factory("carol")
    await off_loop(carol.wait_registered)

    result = await alice.send(kamailio.aor("carol"), f"héllo ✓ carol ({transport})")

    assert result["delivered"] is True, result
    peer, text = await off_loop(carol.wait_message, text=f"héllo ✓ carol ({transport})")
    assert kamailio.aor("alice") in peer

    await off_loop(carol.send_chat, kamailio.aor("alice"), "héllo ✓ alice, from carol")

    received = await alice.event("message.received", content="héllo ✓ alice, from carol")
    assert received["from"] == kamailio.aor("carol")
    assert received["to"] == kamailio.aor("alice")
    assert received["content_type"] == "text/plain"


async def test_sipd_to_sipd_through_kamailio(kamailio, alice_udp, dave_tcp):
    alice, dave = alice_udp, dave_tcp

    result = await alice.send(kamailio.aor("dave"), "héllo ✓ dave")
    assert result["delivered"] is True, result
    received = await dave.event("message.received", content="héllo ✓ dave")
    assert received["from"] == kamailio.aor("alice") and received["to"] == kamailio.aor("dave")

    result = await dave.send(kamailio.aor("alice"), "héllo ✓ alice, wrapped", cpim=True)
    assert result["delivered"] is True, result
    received = await alice.event("message.received", content="héllo ✓ alice, wrapped")
    assert received["from"] == kamailio.aor("dave")
    assert received["cpim"]["from"] == f"<{kamailio.aor('dave')}>"
    assert received["cpim"]["to"] == [f"<{kamailio.aor('alice')}>"]

    # Later MESSAGEs carry the credentials Kamailio asked for the first time: no new 407.
    log_start = len(alice.daemon.log())
    assert "received 407" in alice.daemon.log()  # the first one was challenged
    assert (await alice.send(kamailio.aor("dave"), "again"))["delivered"] is True
    assert "received 407" not in alice.daemon.log()[log_start:]

    assert (await alice.composing(kamailio.aor("dave"), "active"))["delivered"] is True
    composing = await dave.event("message.composing")
    assert composing["state"] == "active" and composing["from"] == kamailio.aor("alice")
    await alice.composing(kamailio.aor("dave"), "idle")
    assert (await dave.event("message.composing"))["state"] == "idle"


async def test_offline_user_and_wrong_password(kamailio, alice_udp):
    alice = alice_udp

    offline = await alice.send(kamailio.aor("carol"), "are you there?")  # carol never registered

    assert offline["code"] == 404 and offline["delivered"] is False
    delivery = await alice.event("message.delivery", id=offline["id"])
    assert delivery["code"] == 404

    await alice.rpc.call("accounts.update", {"id": alice.id, "changes": {
        "password": "not-alice-secret", "register": False}})
    refused = await alice.send(kamailio.aor("bob"), "let me through")

    assert refused["delivered"] is False and refused["code"] in (401, 403, 407), refused
