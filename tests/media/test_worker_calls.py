"""Two real media workers calling each other over SIP on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from sipd.media.process import MediaWorkerError
from tests.media.audio import goertzel_power, read_wav, write_tone
from tests.media.conftest import connect, db

TONE_SECONDS = 2.0


async def test_each_end_records_the_other_ends_tone(start_worker, tmp_path: Path) -> None:
    a = await start_worker("a", codecs=["G722", "PCMU"])
    b = await start_worker("b", codecs=["G722", "PCMU"])
    call_a, call_b = await connect(a, b)
    tone_a = write_tone(tmp_path / "a-440.wav", 440)
    tone_b = write_tone(tmp_path / "b-1000.wav", 1000)
    heard_by_a, heard_by_b = tmp_path / "heard-by-a.wav", tmp_path / "heard-by-b.wav"

    await a.request("record", call=call_a, file=str(heard_by_a))
    await b.request("record", call=call_b, file=str(heard_by_b))
    await a.request("play", call=call_a, file=str(tone_a), loop=True)
    await b.request("play", call=call_b, file=str(tone_b), loop=True)
    await trio.sleep(TONE_SECONDS)
    assert (await a.request("stop_record", call=call_a))["file"] == str(heard_by_a)
    await b.request("stop_record", call=call_b)
    # pjsua finishes a WAV file asynchronously: only record.done says it can be read.
    for worker, call, path in ((a, call_a, heard_by_a), (b, call_b, heard_by_b)):
        done = await worker.events.wait_for(event="record.done", call=call)
        assert done["file"] == str(path) and done["complete"] is True
    await a.request("hangup", call=call_a)
    await a.events.wait_for(event="call.state", call=call_a, state="disconnected")
    await b.events.wait_for(event="call.state", call=call_b, state="disconnected")

    for recording, expected, other in ((heard_by_a, 1000, 440), (heard_by_b, 440, 1000)):
        samples, rate = read_wav(recording)
        assert len(samples) > rate // 2, f"{recording.name} holds almost nothing"
        wanted, unwanted = (goertzel_power(samples, rate, f) for f in (expected, other))
        # The other end's tone must dominate this end's own tone by far (20 dB).
        assert db(wanted) > db(unwanted) + 20, (recording.name, db(wanted), db(unwanted))


async def test_a_non_looping_file_reports_its_end(start_worker, tmp_path: Path) -> None:
    a = await start_worker("a")
    b = await start_worker("b")
    call_a, _ = await connect(a, b)
    tone = write_tone(tmp_path / "short.wav", 440, seconds=0.3)
    await a.request("play", call=call_a, file=str(tone), loop=False)
    done = await a.events.wait_for(event="play.done", call=call_a)
    assert done["file"] == str(tone) and done["session"] == "s1"
    with pytest.raises(MediaWorkerError, match="no such WAV file"):
        await a.request("play", call=call_a, file=str(tmp_path / "missing.wav"))


async def test_rfc2833_digits_arrive_as_events(start_worker) -> None:
    a = await start_worker("a")
    b = await start_worker("b")
    call_a, call_b = await connect(a, b, session="dtmf")
    await a.request("dtmf", call=call_a, digits="19#*A")
    # Each digit's event; the last one ("A") means all five have come, in order.
    await b.events.wait_for(event="call.dtmf", call=call_b, digit="A")
    received = b.events.matching(event="call.dtmf", call=call_b)
    assert "".join(e["digit"] for e in received) == "19#*A"
    assert {e["method"] for e in received} == {"rfc2833"}
    assert {e["session"] for e in received} == {"dtmf"}
    with pytest.raises(MediaWorkerError, match="DTMF digits"):
        await a.request("dtmf", call=call_a, digits="12x")


async def test_hold_and_unhold_change_the_media_direction(start_worker) -> None:
    a = await start_worker("a")
    b = await start_worker("b")
    call_a, call_b = await connect(a, b)

    mark_a, mark_b = a.events.mark(), b.events.mark()
    await a.request("hold", call=call_a)
    held = await a.events.wait_for(mark_a, event="call.media", call=call_a, status="local_hold")
    assert held["direction"] == "sendonly"
    remote = await b.events.wait_for(mark_b, event="call.media", call=call_b,
                                     status="remote_hold")
    assert remote["direction"] == "recvonly"

    mark_a, mark_b = a.events.mark(), b.events.mark()
    await a.request("unhold", call=call_a)
    resumed = await a.events.wait_for(mark_a, event="call.media", call=call_a, status="active")
    assert resumed["direction"] == "sendrecv"
    resumed = await b.events.wait_for(mark_b, event="call.media", call=call_b, status="active")
    assert resumed["direction"] == "sendrecv"


async def test_mandatory_srtp_on_both_ends_carries_the_call(start_worker) -> None:
    a = await start_worker("a", srtp="mandatory")
    b = await start_worker("b", srtp="mandatory")
    call_a, call_b = await connect(a, b)
    for worker, call in ((a, call_a), (b, call_b)):
        media = await worker.events.wait_for(event="call.media", call=call, active=True)
        assert media["proto"] == "RTP/SAVP" and media["srtp"] is True


async def test_optional_srtp_is_reported_when_negotiated(start_worker) -> None:
    a = await start_worker("a", srtp="optional")
    b = await start_worker("b", srtp="disabled")
    call_a, _ = await connect(a, b)
    media = await a.events.wait_for(event="call.media", call=call_a, active=True)
    assert media["proto"] == "RTP/AVP" and media["srtp"] is False


@pytest.mark.parametrize("stun", [False, True])
async def test_ice_on_a_loopback_media_address_without_turn_is_refused_clearly(
        start_worker, stun: bool) -> None:
    # pjnath gathers no host candidate on loopback (and so no usable server-reflexive one):
    # without TURN, ICE has nothing to offer on 127.0.0.1. The refusal must say what to
    # change instead of pjsua's bare "Invalid value or argument" or a 488 from the answerer.
    # (The STUN server named here is never reached: the refusal comes first.)
    a = await start_worker("a", ice=True, stun_servers=["127.0.0.1:9"] if stun else [])
    b = await start_worker("b")
    with pytest.raises(MediaWorkerError, match="ICE has no candidate to offer") as refused:
        await a.request("call", uri=b.uri, session="ice")
    assert "nat.turn.server" in str(refused.value)
    assert (await a.request("status"))["free_slots"] == 4


@pytest.mark.parametrize("caller_srtp, callee_srtp", [("mandatory", "disabled"),
                                                      ("disabled", "mandatory")])
async def test_srtp_mismatch_is_refused_with_488(start_worker, caller_srtp: str,
                                                 callee_srtp: str) -> None:
    a = await start_worker("a", srtp=caller_srtp)
    b = await start_worker("b", srtp=callee_srtp)
    call = (await a.request("call", uri=b.uri, session="secure"))["call"]
    ended = await a.events.wait_for(event="call.state", call=call, state="disconnected")
    assert ended["code"] == 488, ended
    assert not a.events.matching(event="call.state", call=call, state="confirmed")


async def test_a_fifth_call_is_refused_clearly(start_worker) -> None:
    a = await start_worker("a")
    b = await start_worker("b")
    calls = []
    for n in range(4):
        calls.append(await a.request("call", uri=b.uri, session=f"s{n}"))
    for reply in calls:
        await a.events.wait_for(event="call.state", call=reply["call"], state="confirmed")
    status = await a.request("status")
    assert status["free_slots"] == 0 and len(status["calls"]) == 4
    with pytest.raises(MediaWorkerError, match="already carries 4 calls"):
        await a.request("call", uri=b.uri, session="s5")


async def test_calls_wait_for_answer_when_auto_answer_is_off(start_worker) -> None:
    a = await start_worker("a")
    b = await start_worker("b", auto_answer=False)
    call_a = (await a.request("call", uri=b.uri, session="manual"))["call"]
    incoming = await b.events.wait_for(event="call.incoming", session="manual")
    assert not b.events.matching(event="call.state", state="confirmed")
    await b.request("answer", call=incoming["call"], code=180)
    await a.events.wait_for(event="call.state", call=call_a, state="early")
    await b.request("answer", call=incoming["call"])
    await a.events.wait_for(event="call.state", call=call_a, state="confirmed")
    await b.request("hangup", call=incoming["call"])
    await a.events.wait_for(event="call.state", call=call_a, state="disconnected")
    with pytest.raises(MediaWorkerError, match="no call"):
        await b.request("hangup", call=incoming["call"])


async def test_a_recording_survives_a_second_record_to_a_bad_path(
        start_worker, tmp_path: Path) -> None:
    a = await start_worker("a")
    b = await start_worker("b")
    call_a, _ = await connect(a, b)
    first = tmp_path / "first.wav"
    await a.request("record", call=call_a, file=str(first))
    with pytest.raises(MediaWorkerError, match="no folder"):
        await a.request("record", call=call_a, file=str(tmp_path / "missing" / "second.wav"))
    status = (await a.request("status"))["calls"][0]
    assert status["recording"] == str(first)
    assert (await a.request("stop_record", call=call_a))["file"] == str(first)
    done = await a.events.wait_for(event="record.done", call=call_a)
    assert done["file"] == str(first) and done["complete"] is True
