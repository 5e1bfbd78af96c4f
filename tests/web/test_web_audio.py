"""The web audio channel without a browser: a program speaks the page's protocol on
/audio/SESSION of one daemon's page server, into a call with another daemon. Its 440 Hz must
be what the other daemon records, and the other daemon's 1000 Hz what comes back."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.harness.peer import DaemonPeer
from tests.media.audio import goertzel_power, read_wav, write_tone
from tests.media.conftest import db

PEER_TOPICS = ("sessions", "media")
RATE, FRAME = 16000, 320  # samples: 20 ms


def tone_frame(n: int, frequency: float) -> bytes:
    start = n * FRAME
    return struct.pack(f"<{FRAME}h", *(int(12000 * math.sin(2 * math.pi * frequency * (start + i)
                                                            / RATE)) for i in range(FRAME)))


async def page_url(peer: DaemonPeer) -> str:
    return (await peer.call("system.state"))["web"]["url"]


async def web_call(a: DaemonPeer, b: DaemonPeer) -> tuple[str, str]:
    """A calls B with audio_device web; B answers (its audio: a WAV player)."""
    mark = b.events.mark()
    started = await a.call("sessions.start", account="local", to=b.uri(), audio_device="web")
    assert started["audio_device"] == "web"
    b_id = (await b.events.wait("session.new", direction="incoming", since=mark))["id"]
    await b.call("sessions.answer", id=b_id)
    await a.state(started["id"], "established")
    await b.state(b_id, "established")
    return started["id"], b_id


async def test_page_audio_both_ways(a: DaemonPeer, b: DaemonPeer, tmp_path: Path) -> None:
    a_id, b_id = await web_call(a, b)
    heard_by_b = tmp_path / "heard-by-b.wav"
    await b.call("sessions.record", id=b_id, path=str(heard_by_b))
    await b.call("sessions.play", id=b_id, path=str(write_tone(tmp_path / "b.wav", 1000, 5)),
                 loop=True)
    url = (await page_url(a)).replace("http://", "ws://") + f"audio/{a_id}"
    received: list[bytes] = []
    async with open_websocket_url(url) as ws:
        await ws.send_message(json.dumps({"token": a.daemon.endpoint.token}))
        assert json.loads(await ws.get_message())["ready"] is True

        async def speak() -> None:
            for n in range(100):  # 2 s, paced like a microphone
                await ws.send_message(tone_frame(n, 440))
                await trio.sleep(0.02)

        async def listen() -> None:
            while True:
                message = await ws.get_message()
                if isinstance(message, bytes):
                    received.append(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            await speak()
            nursery.cancel_scope.cancel()
    await a.call("sessions.end", id=a_id)
    await b.state(b_id, "ended")
    await b.events.wait("session.recording", lambda data: data.get("complete"), id=b_id)

    assert all(len(frame) == 640 for frame in received) and len(received) > 50
    samples = [s for frame in received[10:] for s in struct.unpack("<320h", frame)]
    assert db(goertzel_power(samples, RATE, 1000)) > db(goertzel_power(samples, RATE, 440)) + 20
    heard, rate = read_wav(heard_by_b)
    assert db(goertzel_power(heard, rate, 440)) > db(goertzel_power(heard, rate, 1000)) + 20


async def test_channel_needs_the_token_and_a_web_session(a: DaemonPeer, b: DaemonPeer) -> None:
    base = (await page_url(a)).replace("http://", "ws://") + "audio/"
    async with open_websocket_url(base + "nosuchsession") as ws:
        await ws.send_message(json.dumps({"token": "wrong"}))
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
        assert ws.closed.code == 1008
    async with open_websocket_url(base + "nosuchsession") as ws:
        await ws.send_message(json.dumps({"token": a.daemon.endpoint.token}))
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
        assert ws.closed.code == 4404
    mark = b.events.mark()
    plain = await a.call("sessions.start", account="local", to=b.uri())  # audio_device null
    b_id = (await b.events.wait("session.new", direction="incoming", since=mark))["id"]
    await b.call("sessions.answer", id=b_id)
    await a.state(plain["id"], "established")
    async with open_websocket_url(base + plain["id"]) as ws:
        await ws.send_message(json.dumps({"token": a.daemon.endpoint.token}))
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
        assert ws.closed.code == 4409 and "audio_device" in ws.closed.reason
    await a.call("sessions.end", id=plain["id"])


async def test_channel_closes_when_the_call_ends(a: DaemonPeer, b: DaemonPeer) -> None:
    a_id, b_id = await web_call(a, b)
    url = (await page_url(a)).replace("http://", "ws://") + f"audio/{a_id}"
    async with open_websocket_url(url) as ws:
        await ws.send_message(json.dumps({"token": a.daemon.endpoint.token}))
        assert json.loads(await ws.get_message())["ready"] is True
        async with open_websocket_url(url) as second:  # one channel per session
            await second.send_message(json.dumps({"token": a.daemon.endpoint.token}))
            with pytest.raises(ConnectionClosed):
                await second.get_message()
            assert second.closed.code == 4409 and "already" in second.closed.reason
        with pytest.raises(ConnectionClosed):
            await ws.send_message(b"\x00" * 5000)  # not a frame: dropped, the channel stays
            await ws.send_message(b"\x00" * 640)
            await b.call("sessions.end", id=b_id)  # the other side hangs up
            while True:
                await ws.get_message()
        assert (ws.closed.code, ws.closed.reason) == (1000, "the call ended")
    await a.state(a_id, "ended")
