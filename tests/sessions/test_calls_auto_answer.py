"""An account with auto_answer takes its incoming calls by itself: no sessions.answer.

Two real daemons on 127.0.0.1, as in test_calls. The built-in local account is read-only, so
B gets a real account (register false, aor sip:bob@127.0.0.1) with auto_answer true; A calls
sip:bob@127.0.0.1:<B's port>, which B routes to that account by the AOR's user part.
"""

from __future__ import annotations

import pytest
import trio

from tests.harness.peer import DaemonPeer


@pytest.fixture
async def bob(b):
    """B's auto-answering account; removed afterwards."""
    account = await b.call("accounts.add", aor="sip:bob@127.0.0.1", register=False,
                           auto_answer=True)
    assert account["auto_answer"] is True
    try:
        yield account
    finally:
        await b.call("accounts.remove", id=account["id"])


def bob_uri(b: DaemonPeer) -> str:
    return f"sip:bob@127.0.0.1:{b.ports['udp']}"


async def test_auto_answer_account_establishes_without_an_answer_call(a, b, bob):
    fetched = await b.call("accounts.get", id=bob["id"])
    assert fetched["auto_answer"] is True
    mark = b.events.mark()
    a_id = (await a.call("sessions.start", account="local", to=bob_uri(b)))["id"]
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    b_id = new["id"]
    assert new["account"] == bob["id"]
    # No sessions.answer on B: both ends get to established by themselves.
    await b.state(b_id, "established")
    await a.state(a_id, "established")
    await a.call("sessions.end", id=a_id)
    await a.state(a_id, "ended")
    await b.state(b_id, "ended")


async def test_other_accounts_still_ring_until_answered(a, b, bob):
    """The local account (auto_answer false) keeps ringing while the other answers itself."""
    assert (await b.call("accounts.get", id="local"))["auto_answer"] is False
    mark = b.events.mark()
    a_id = (await a.call("sessions.start", account="local", to=b.uri()))["id"]
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    b_id = new["id"]
    assert new["account"] == "local"
    await b.state(b_id, "ringing")
    await a.state(a_id, "ringing")
    await trio.sleep(1.0)
    assert not b.events.matching("session.state", since=mark, id=b_id, state="established")
    await a.call("sessions.end", id=a_id)  # a CANCEL: never answered
    assert (await a.state(a_id, "failed"))["code"] == 487
    assert (await b.state(b_id, "failed"))["code"] == 487
