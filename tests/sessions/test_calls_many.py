"""Twelve simultaneous audio calls between two sipd daemons, three media workers each.

A places 12 calls to B's `local` account at once; B answers all; A plays a distinct tone on
each call and B records each. The API gives no way to pair A's session with B's (same remote
URI, no Call-ID in the views), so the check is a bijection: every one of B's 12 recordings
has exactly one of the 12 tones dominant, and together they hold all 12 tones once each.
"""

from __future__ import annotations

from typing import Any

import trio

from sipd.media.process import port_slices
from sipd.media.protocol import MAX_CALLS_PER_WORKER
from tests.harness.events import EventLog
from tests.harness.peer import daemon_settings, open_peer
from tests.harness.process import SipdProcess
from tests.media.audio import goertzel_power, read_wav, write_tone
from tests.media.conftest import db
from tests.peers.ports import rtp_port_range

WORKERS = 3
CALLS = WORKERS * MAX_CALLS_PER_WORKER  # 12
TONES = [300 + 100 * i for i in range(CALLS)]  # 300 .. 1400 Hz
TONE_SECONDS = 2.0
TIMEOUT = 45.0  # per phase; the whole test is bounded by BUDGET
BUDGET = 85.0


def wide_rtp_range(per_worker: int = 40) -> str:
    """Room for WORKERS slices of `per_worker` ports (8 needed: RTP+RTCP for 4 calls)."""
    ports = rtp_port_range(WORKERS * per_worker)
    low, high = map(int, ports.split("-"))
    assert all(count >= 2 * MAX_CALLS_PER_WORKER for _, count in port_slices(low, high, WORKERS))
    return ports


def settings() -> dict[str, Any]:
    return {**daemon_settings(), "media.max_workers": WORKERS, "rtp.port_range": wide_rtp_range()}


async def wait_count(events: EventLog, name: str, count: int, since: int = 0,
                     timeout: float = TIMEOUT, **match: Any) -> list[dict[str, Any]]:
    with trio.move_on_after(timeout):
        while True:
            found = events.matching(name, since, **match)
            if len(found) >= count:
                return found
            await events._changed.wait()
    raise AssertionError(f"only {len(events.matching(name, since, **match))} of {count} "
                         f"{name} {match} within {timeout} s")


async def all_in_state(events: EventLog, ids: list[str], state: str, since: int = 0) -> None:
    with trio.move_on_after(TIMEOUT):
        while True:
            missing = [i for i in ids if not events.matching("session.state", since, id=i,
                                                             state=state)]
            if not missing:
                return
            await events._changed.wait()
    states = {i: [e["state"] for e in events.matching("session.state", since, id=i)]
              for i in missing}
    raise AssertionError(f"{len(missing)} of {len(ids)} sessions not {state}: {states}")


def tone_powers(path: str) -> tuple[int, dict[int, float]]:
    samples, rate = read_wav(path)
    return len(samples) // rate, {f: db(goertzel_power(samples, rate, f)) for f in TONES}


async def test_twelve_simultaneous_calls_each_carry_their_tone(tmp_path):
    daemons = [SipdProcess(tmp_path, settings(), name=name) for name in ("many-a", "many-b")]
    try:
        for daemon in daemons:
            daemon.start(wait=False)
        for daemon in daemons:
            daemon.wait_ready()
        with trio.fail_after(BUDGET):
            async with open_peer(daemons[0]) as a, open_peer(daemons[1]) as b:
                await _run(a, b, tmp_path)
    finally:
        for daemon in daemons:
            daemon.stop()


async def _run(a, b, tmp_path) -> None:
    a_mark, b_mark = a.events.mark(), b.events.mark()
    a_ids: list[str | None] = [None] * CALLS

    async def place(i: int) -> None:
        started = await a.call("sessions.start", account="local", to=b.uri(), streams=["audio"])
        a_ids[i] = started["id"]

    async with trio.open_nursery() as nursery:  # all 12 at once
        for i in range(CALLS):
            nursery.start_soon(place, i)
    assert len(set(a_ids)) == CALLS and None not in a_ids

    incoming = await wait_count(b.events, "session.new", CALLS, since=b_mark,
                                direction="incoming")
    b_ids = [new["id"] for new in incoming[:CALLS]]
    assert len(set(b_ids)) == CALLS
    await all_in_state(b.events, b_ids, "ringing", since=b_mark)

    async with trio.open_nursery() as nursery:
        for b_id in b_ids:
            nursery.start_soon(_rpc, b, "sessions.answer", {"id": b_id})
    await all_in_state(a.events, a_ids, "established", since=a_mark)
    await all_in_state(b.events, b_ids, "established", since=b_mark)

    for peer in (a, b):
        workers = (await peer.call("system.state"))["media"]["workers"]
        assert len(workers) == WORKERS, workers
        carried = sorted(s for w in workers for s in w["sessions"])
        assert carried == sorted(a_ids if peer is a else b_ids), workers
        assert all(len(w["sessions"]) == MAX_CALLS_PER_WORKER for w in workers), workers

    recordings = {b_id: tmp_path / f"b-heard-{n}.wav" for n, b_id in enumerate(b_ids)}
    async with trio.open_nursery() as nursery:
        for b_id, path in recordings.items():
            nursery.start_soon(_rpc, b, "sessions.record", {"id": b_id, "path": str(path)})
    tones = [write_tone(tmp_path / f"a-{f}.wav", f) for f in TONES]
    async with trio.open_nursery() as nursery:
        for a_id, tone in zip(a_ids, tones, strict=False):
            nursery.start_soon(_rpc, a, "sessions.play",
                               {"id": a_id, "path": str(tone), "loop": True})
    await trio.sleep(TONE_SECONDS)

    end_mark = b.events.mark()
    async with trio.open_nursery() as nursery:
        for a_id in a_ids:
            nursery.start_soon(_rpc, a, "sessions.end", {"id": a_id})
    await all_in_state(a.events, a_ids, "ended", since=a_mark)
    await all_in_state(b.events, b_ids, "ended", since=b_mark)
    done = await wait_count(b.events, "session.recording", CALLS, since=end_mark)
    assert {d["id"] for d in done} == set(b_ids) and all(d["complete"] for d in done), done

    dominant = []
    for path in recordings.values():
        seconds, powers = await trio.to_thread.run_sync(tone_powers, str(path))
        ranked = sorted(powers, key=powers.get, reverse=True)
        best, second = ranked[0], ranked[1]
        assert seconds >= 1, (path.name, seconds)
        # Its own tone must dominate every other call's tone by far (20 dB).
        assert powers[best] > powers[second] + 20, (path.name, best, second, powers)
        dominant.append(best)
    assert sorted(dominant) == TONES, dominant


async def _rpc(peer, method: str, params: dict[str, Any]) -> None:
    await peer.call(method, **params)
