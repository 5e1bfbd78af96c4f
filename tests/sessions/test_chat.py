"""Chat sessions between two real sipd daemons, direct (no server): MSRP over TLS with
fingerprints (the default msrp.transport) and over TCP, chat-only and beside audio, driven
over RPC. A chat-only session starts no media worker."""

from __future__ import annotations

import base64

import pytest

from sipctl.client import RpcCallError
from tests.harness.peer import DaemonPeer, daemon_settings, open_peer
from tests.harness.process import running
from tests.harness.waits import eventually

PEER_TOPICS = ("sessions", "media", "chat")


async def start_chat(a: DaemonPeer, b: DaemonPeer, streams: list[str] | None = None,
                     transport: str = "udp") -> tuple[str, str]:
    """A opens a session with `streams` (chat only by default) to B's `local` account; B
    answers: (A's session id, B's)."""
    streams = streams or ["chat"]
    mark = b.events.mark()
    started = await a.call("sessions.start", account="local", to=b.uri(transport),
                           streams=streams)
    assert started["streams"] == streams
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    assert new["streams"] == streams  # announced with what its offer carries
    await b.state(new["id"], "ringing")
    await b.call("sessions.answer", id=new["id"])
    await a.state(started["id"], "established")
    await b.state(new["id"], "established")
    return started["id"], new["id"]


async def converse(a: DaemonPeer, a_id: str, b: DaemonPeer, b_id: str) -> None:
    """Messages both ways with their delivery, composing, a display notification."""
    await a.call("chat.composing", session=a_id, state="active")
    await b.events.wait("chat.composing", session=b_id, state="active")
    sent = (await a.call("chat.send", session=a_id, content="héllo Bob"))["message_id"]
    message = await b.events.wait("chat.message", session=b_id, message_id=sent)
    assert message["content"] == "héllo Bob"
    assert message["content_type"].startswith("text/plain")
    assert message["from"].startswith("sip:local@")
    await a.events.wait("chat.delivery", session=a_id, message_id=sent, status="delivered")
    await b.call("chat.displayed", session=b_id, message_ids=[sent])
    await a.events.wait("chat.delivery", session=a_id, message_id=sent, status="displayed")
    big = "x" * 200_000  # in chunks
    back = (await b.call("chat.send", session=b_id, content=big))["message_id"]
    assert (await a.events.wait("chat.message", session=a_id, message_id=back))["content"] == big
    await b.events.wait("chat.delivery", session=b_id, message_id=back, status="delivered")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n-not-really").decode()
    picture = (await a.call("chat.send", session=a_id, content=png, content_type="image/png",
                            encoding="base64"))["message_id"]
    got = await b.events.wait("chat.message", session=b_id, message_id=picture)
    assert got["encoding"] == "base64" and got["content"] == png


async def hang_up(a: DaemonPeer, a_id: str, b: DaemonPeer, b_id: str) -> None:
    await a.call("sessions.end", id=a_id)
    await a.state(a_id, "ended")
    assert (await b.state(b_id, "ended"))["reason"] == "remote hangup"
    with pytest.raises(RpcCallError) as over:
        await b.call("chat.send", session=b_id, content="too late")
    assert over.value.code == -32003 and "ended" in over.value.data["reason"]


async def test_chat_only_over_tls_with_no_media_worker(a, b):
    a_id, b_id = await start_chat(a, b)
    await converse(a, a_id, b, b_id)
    for peer in (a, b):
        assert not peer.events.matching("media.worker")
        assert (await peer.call("system.state"))["media"]["workers"] == []
    await hang_up(a, a_id, b, b_id)

    async def in_history() -> list[dict]:
        rows = (await a.call("history.messages", session=a_id))["messages"]
        return rows if len(rows) == 3 else []

    rows = await eventually(in_history, what="the chat in A's history")
    by_direction = sorted((row["direction"], row["status"], row["kind"]) for row in rows)
    assert by_direction == [("incoming", "received", "chat"), ("outgoing", "delivered", "chat"),
                            ("outgoing", "displayed", "chat")]


async def test_audio_and_chat_in_one_session(a, b):
    a_id, b_id = await start_chat(a, b, ["audio", "chat"])
    await converse(a, a_id, b, b_id)
    workers = (await a.call("system.state"))["media"]["workers"]
    assert any(a_id in worker["sessions"] for worker in workers)  # audio has its worker
    await hang_up(b, b_id, a, a_id)


async def test_chat_only_over_tcp(tmp_path):
    settings = {**daemon_settings(), "msrp.transport": "tcp"}
    with running(tmp_path, settings) as (one, two):
        async with open_peer(one, PEER_TOPICS) as a, open_peer(two, PEER_TOPICS) as b:
            a_id, b_id = await start_chat(a, b, transport="tcp")
            await converse(a, a_id, b, b_id)
            await hang_up(a, a_id, b, b_id)


async def test_chat_errors_name_what_is_wrong(a, b):
    with pytest.raises(RpcCallError) as unknown_kind:
        await a.call("sessions.start", account="local", to=b.uri(), streams=["video"])
    assert unknown_kind.value.code == -32602 and "video" in unknown_kind.value.message \
        + str(unknown_kind.value.data)
    with pytest.raises(RpcCallError) as no_session:
        await a.call("chat.send", session="nope", content="hi")
    assert no_session.value.code == -32002

    started = await a.call("sessions.start", account="local", to=b.uri(), streams=["chat"])
    with pytest.raises(RpcCallError) as early:
        await a.call("chat.send", session=started["id"], content="hi")
    assert early.value.code == -32003 and "not connected" in early.value.data["reason"]
    new = await b.events.wait("session.new", direction="incoming")
    await b.call("sessions.reject", id=new["id"], code=486)
    await a.state(started["id"], "failed")

    a_id, b_id = await start_chat(a, b, ["audio"])
    with pytest.raises(RpcCallError) as no_chat:
        await a.call("chat.send", session=a_id, content="hi")
    assert no_chat.value.code == -32003 and "no chat" in no_chat.value.data["reason"]
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")
