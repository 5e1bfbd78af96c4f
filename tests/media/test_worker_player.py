"""Stopping a file player never lets pjsua call back into a destroyed player.

Regression: a looping pjsua2 AudioMediaPlayer posts an end-of-file event to pjmedia's event
thread each time its file wraps. pjsua2 2.15.1's destructor does not cancel that callback
(fixed upstream after 2.15.1, pjproject #5045), and the port itself is destroyed later, on
the clock thread: an event posted just before the player was dropped then reached freed
memory and the worker died with SIGSEGV, typically as a call playing a tone ended. A file a
frame long wraps on every frame, so each stop below races such an event.
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.media.audio import goertzel_power, read_wav, write_tone
from tests.media.conftest import connect, db

ROUNDS = 40
# One 20 ms frame at 16 kHz: the file wraps, and posts an end-of-file event, every frame.
ONE_FRAME = 0.02


async def test_stopping_a_wrapping_player_again_and_again_keeps_the_worker(
        start_worker, tmp_path: Path) -> None:
    a = await start_worker("a")
    b = await start_worker("b")
    tone = write_tone(tmp_path / "frame.wav", 440, seconds=ONE_FRAME)
    call_a, call_b = await connect(a, b)
    for _ in range(ROUNDS):
        await a.request("play", call=call_a, file=str(tone), loop=True)
        await trio.sleep(0.06)  # a few wraps, so end-of-file events are in flight
        await a.request("stop_play", call=call_a)
    assert (await a.request("status"))["calls"][0]["state"] == "confirmed"


async def test_calls_ending_while_a_wrapping_file_plays_keep_the_worker(
        start_worker, tmp_path: Path) -> None:
    a = await start_worker("a")
    b = await start_worker("b")
    tone = write_tone(tmp_path / "frame.wav", 440, seconds=ONE_FRAME)
    for n in range(ROUNDS // 4):
        call_a, call_b = await connect(a, b, session=f"s{n}")
        await a.request("play", call=call_a, file=str(tone), loop=True)
        await b.request("play", call=call_b, file=str(tone), loop=True)
        await trio.sleep(0.06)
        await b.request("hangup", call=call_b)
        await a.events.wait_for(event="call.state", call=call_a, state="disconnected")
        await b.events.wait_for(event="call.state", call=call_b, state="disconnected")
    for worker in (a, b):
        assert (await worker.request("status"))["free_slots"] == 4


async def test_a_stopped_player_is_silent_at_once(start_worker, tmp_path: Path) -> None:
    """A stopped player is kept a while before it is destroyed: it must be silent already."""
    a = await start_worker("a")
    b = await start_worker("b")
    tone = write_tone(tmp_path / "tone.wav", 1000, seconds=0.5)
    heard = tmp_path / "heard.wav"
    call_a, call_b = await connect(a, b)
    await a.request("play", call=call_a, file=str(tone), loop=True)
    await trio.sleep(0.3)
    await a.request("stop_play", call=call_a)
    await b.request("record", call=call_b, file=str(heard))
    await trio.sleep(1.0)
    await b.request("stop_record", call=call_b)
    assert (await b.events.wait_for(event="record.done", call=call_b))["complete"] is True
    samples, rate = read_wav(heard)
    after_the_jitter_buffer = samples[len(samples) // 2:]
    assert len(after_the_jitter_buffer) > rate // 4
    assert db(goertzel_power(after_the_jitter_buffer, rate, 1000)) < 0


async def test_many_files_played_in_quick_succession_all_start(
        start_worker, tmp_path: Path) -> None:
    """pjsua has room for 32 players, and stopped ones are kept a while: room is made."""
    a = await start_worker("a")
    b = await start_worker("b")
    tone = write_tone(tmp_path / "tone.wav", 440, seconds=0.2)
    call_a, _ = await connect(a, b)
    for _ in range(48):
        await a.request("play", call=call_a, file=str(tone), loop=True)
        await trio.sleep(0.005)
    assert (await a.request("status"))["calls"][0]["playing"] == str(tone)
