"""Chat added to and removed from an audio call between two sipd daemons (re-INVITE): the
callee sees a proposal it accepts or rejects; removing the chat leaves the call up."""

from __future__ import annotations

import pytest

from sipctl.client import RpcCallError
from tests.harness.chat import CHAT_TOPICS, converse
from tests.harness.peer import call_and_answer

PEER_TOPICS = CHAT_TOPICS


async def test_chat_added_to_a_call_then_removed(a, b):
    a_id, b_id = await call_and_answer(a, b)
    mark_a, mark_b = a.events.mark(), b.events.mark()
    added = await a.call("sessions.add_stream", id=a_id, stream="chat")
    assert added["stream"] == "chat" and added["index"] == 1
    proposal = await b.events.wait("session.proposal", id=b_id, state="pending", since=mark_b)
    assert proposal["streams"] == ["chat"]
    await b.call("sessions.accept_proposal", id=b_id)
    for peer, session, by in ((a, a_id, "local"), (b, b_id, "remote")):
        change = await peer.events.wait("session.streams", id=session, since=mark_a
                                        if peer is a else mark_b)
        assert change["streams"] == ["audio", "chat"] and change["change"] == "added"
        assert change["by"] == by
    await converse(a, a_id, b, b_id, big=20_000)

    await b.call("sessions.remove_stream", id=b_id, stream="chat")
    removed = await a.events.wait("session.streams", id=a_id, change="removed")
    assert removed["streams"] == ["audio"] and removed["by"] == "remote"
    with pytest.raises(RpcCallError) as gone:
        await a.call("chat.send", session=a_id, content="still there?")
    assert gone.value.code == -32003
    assert (await a.call("sessions.get", id=a_id))["state"] == "established"
    await a.call("sessions.hold", id=a_id)  # the audio goes on as before
    await b.events.wait("session.hold", id=b_id, on_hold=True)
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")


async def test_a_rejected_proposal_leaves_the_call_as_it_was(a, b):
    a_id, b_id = await call_and_answer(a, b)
    mark = b.events.mark()
    await a.call("sessions.add_stream", id=a_id, stream="chat")
    pending = await b.events.wait("session.proposal", id=b_id, state="pending", since=mark)
    with pytest.raises(RpcCallError) as wrong:
        await b.call("sessions.accept_proposal", id=b_id, proposal="not-it")
    assert wrong.value.code == -32602
    await b.call("sessions.reject_proposal", id=b_id, proposal=pending["proposal"])
    refused = await a.events.wait("session.streams", id=a_id, change="refused")
    assert refused["streams"] == ["audio"] and refused["code"] == 488, refused
    with pytest.raises(RpcCallError) as none:
        await b.call("sessions.reject_proposal", id=b_id)
    assert none.value.code == -32003
    with pytest.raises(RpcCallError) as audio_later:
        await a.call("sessions.add_stream", id=a_id, stream="audio")
    assert audio_later.value.code == -32602
    with pytest.raises(RpcCallError) as last:
        await a.call("sessions.remove_stream", id=a_id, stream="audio")
    assert last.value.code == -32003
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")


async def test_an_account_may_accept_chat_by_itself(a, b):
    account = await b.call("accounts.add", aor="sip:chatter@127.0.0.1", register=False,
                           auto_accept_chat=True)
    assert account["auto_accept_chat"] is True
    try:
        mark = b.events.mark()
        a_id = (await a.call("sessions.start", account="local",
                             to=b.uri(user="chatter")))["id"]
        new = await b.events.wait("session.new", direction="incoming", since=mark)
        assert new["account"] == account["id"]
        await b.call("sessions.answer", id=new["id"])
        await a.state(a_id, "established")
        await a.call("sessions.add_stream", id=a_id, stream="chat")
        await b.events.wait("session.proposal", id=new["id"], state="accepted")
        await a.events.wait("session.streams", id=a_id, change="added")
        sent = await a.call("chat.send", session=a_id, content="no click needed")
        await b.events.wait("chat.message", session=new["id"], message_id=sent["message_id"])
        await a.call("sessions.end", id=a_id)
        await b.state(new["id"], "ended")
    finally:
        await b.call("accounts.remove", id=account["id"])


async def test_a_proposal_nobody_answers_is_refused_after_30_s(a, b):
    a_id, b_id = await call_and_answer(a, b)
    await a.call("sessions.add_stream", id=a_id, stream="chat")
    await b.events.wait("session.proposal", id=b_id, state="pending")
    expired = await b.events.wait("session.proposal", id=b_id, state="expired", timeout=45)
    assert expired["streams"] == ["chat"]
    refused = await a.events.wait("session.streams", id=a_id, change="refused", timeout=15)
    assert refused["code"] == 488 and refused["streams"] == ["audio"]
    assert (await b.call("sessions.get", id=b_id))["streams"] == ["audio"]
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")
