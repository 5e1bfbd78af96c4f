"""Chat steps between sipd daemons (a chat session opened and answered, a conversation with its
delivery, composing and display notifications, the hang-up), shared by the chat tests."""

from __future__ import annotations

import base64

import pytest

from sipctl.client import RpcCallError
from tests.harness.peer import DaemonPeer

CHAT_TOPICS = ("sessions", "media", "chat")


async def start_chat(a: DaemonPeer, b: DaemonPeer, streams: list[str] | None = None, *,
                     to: str | None = None) -> tuple[str, str]:
    """A opens a session with `streams` (chat only by default) to `to` (B's `local` account
    unless given), from A's account; B answers: (A's session id, B's)."""
    streams = streams or ["chat"]
    mark = b.events.mark()
    started = await a.call("sessions.start", account=a.id, to=to or b.uri(), streams=streams)
    assert started["streams"] == streams
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    assert new["streams"] == streams  # announced with what its offer carries
    await b.state(new["id"], "ringing")
    await b.call("sessions.answer", id=new["id"])
    await a.state(started["id"], "established")
    await b.state(new["id"], "established")
    return started["id"], new["id"]


async def converse(a: DaemonPeer, a_id: str, b: DaemonPeer, b_id: str, *,
                   big: int = 200_000) -> None:
    """Messages both ways with their delivery, composing, a display notification, a message
    of `big` characters (in chunks) and a binary one."""
    await a.call("chat.composing", session=a_id, state="active")
    await b.events.wait("chat.composing", session=b_id, state="active")
    sent = (await a.call("chat.send", session=a_id, content="héllo Bob"))["message_id"]
    message = await b.events.wait("chat.message", session=b_id, message_id=sent)
    assert message["content"] == "héllo Bob"
    assert message["content_type"].startswith("text/plain")
    assert message["from"].startswith("sip:")
    await a.events.wait("chat.delivery", session=a_id, message_id=sent, status="delivered")
    await b.call("chat.displayed", session=b_id, message_ids=[sent])
    await a.events.wait("chat.delivery", session=a_id, message_id=sent, status="displayed")
    long = "x" * big
    back = (await b.call("chat.send", session=b_id, content=long))["message_id"]
    assert (await a.events.wait("chat.message", session=a_id,
                                message_id=back))["content"] == long
    await b.events.wait("chat.delivery", session=b_id, message_id=back, status="delivered")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n-not-really").decode()
    picture = (await a.call("chat.send", session=a_id, content=png, content_type="image/png",
                            encoding="base64"))["message_id"]
    got = await b.events.wait("chat.message", session=b_id, message_id=picture)
    assert got["encoding"] == "base64" and got["content"] == png


async def hang_up(a: DaemonPeer, a_id: str, b: DaemonPeer, b_id: str) -> None:
    """A ends the session; B sees the remote hangup and its chat refuses more."""
    await a.call("sessions.end", id=a_id)
    await a.state(a_id, "ended")
    assert (await b.state(b_id, "ended"))["reason"] == "remote hangup"
    with pytest.raises(RpcCallError) as over:
        await b.call("chat.send", session=b_id, content="too late")
    assert over.value.code == -32003 and "ended" in over.value.data["reason"]
