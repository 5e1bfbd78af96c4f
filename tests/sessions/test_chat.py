"""Chat sessions between two real sipd daemons, direct (no server): MSRP over TLS with
fingerprints (the default msrp.transport) and over TCP, chat-only and beside audio, driven
over RPC. A chat-only session starts no media worker."""

from __future__ import annotations

import socket

import pytest

from sipctl.client import RpcCallError
from tests.harness.chat import CHAT_TOPICS, converse, hang_up, start_chat
from tests.harness.peer import daemon_settings, open_peer
from tests.harness.process import SipdProcess, running
from tests.harness.waits import eventually

PEER_TOPICS = CHAT_TOPICS


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


async def test_chat_before_audio_keeps_its_m_line_order(a, b):
    a_id, b_id = await start_chat(a, b, ["chat", "audio"])
    (line,) = (await b.call("sessions.get", id=b_id))["lines"]
    assert line["index"] == 0 and line["kind"] == "chat"
    sent = (await b.call("chat.send", session=b_id, content="first line first"))["message_id"]
    await a.events.wait("chat.message", session=a_id, message_id=sent)
    await hang_up(a, a_id, b, b_id)


async def test_chat_only_over_tcp(tmp_path):
    settings = {**daemon_settings(), "msrp.transport": "tcp"}
    with running(tmp_path, settings) as (one, two):
        async with open_peer(one, PEER_TOPICS) as a, open_peer(two, PEER_TOPICS) as b:
            a_id, b_id = await start_chat(a, b, to=b.uri("tcp"))
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


async def test_a_daemon_without_msrp_refuses_chat_clearly(tmp_path):
    with socket.socket() as squatter:  # its msrp.local_port is taken: MSRP does not start
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        one = SipdProcess(tmp_path, {**daemon_settings(), "msrp.local_port": taken},
                          name="without").start()
        two = SipdProcess(tmp_path, daemon_settings(), name="with").start()
        try:
            async with open_peer(one, PEER_TOPICS) as a, open_peer(two, PEER_TOPICS) as b:
                with pytest.raises(RpcCallError) as unavailable:
                    await a.call("sessions.start", account="local", to=b.uri(),
                                 streams=["chat"])
                assert unavailable.value.code == -32005
                assert "MSRP is not available" in unavailable.value.data["reason"]

                started = await b.call("sessions.start", account="local", to=a.uri(),
                                       streams=["chat"])
                failed = await b.state(started["id"], "failed")
                assert failed["code"] == 488, failed
                new = await a.events.wait("session.new", direction="incoming")
                assert new["streams"] == ["chat"]
        finally:
            one.stop()
            two.stop()
