"""Audio proven end to end: each end plays its own tone and records the other, whose tone must
dominate its recording (Goertzel power, 20 dB). TONE_SECONDS is how long the ends talk: a
duration of the scenario, not a wait for a state."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import trio

from tests.harness.peer import DaemonPeer
from tests.harness.useragent import PEER_TIMEOUT
from tests.harness.waits import off_loop, wait_until
from tests.media.audio import goertzel_power, read_wav, write_tone
from tests.media.conftest import db

TONE_SECONDS = 2.0
CALLER_TONE, CALLEE_TONE = 440, 1000



def assert_hears(recording: Path, expected: float, other: float) -> None:
    samples, rate = read_wav(recording)
    assert len(samples) > rate // 2, f"{recording.name} holds almost nothing"
    wanted, unwanted = (goertzel_power(samples, rate, f) for f in (expected, other))
    # The other end's tone must dominate this end's own tone by far (20 dB).
    assert db(wanted) > db(unwanted) + 20, (recording.name, db(wanted), db(unwanted))


async def exchange_tones(a: DaemonPeer, a_id: str, b: DaemonPeer, b_id: str,
                         tmp_path: Path) -> tuple[tuple[DaemonPeer, str, Path], ...]:
    """A plays 440 Hz and B 1000 Hz into their calls, each recording what it hears, for
    TONE_SECONDS; the recordings for `heard_each_other` once the calls have ended."""
    heard = ((a, a_id, tmp_path / f"heard-by-{a_id}.wav"),
             (b, b_id, tmp_path / f"heard-by-{b_id}.wav"))
    for (peer, session, path), hz in zip(heard, (440, 1000), strict=True):
        await peer.call("sessions.record", id=session, path=str(path))
        tone = write_tone(tmp_path / f"{session}-{hz}.wav", hz)
        await peer.call("sessions.play", id=session, path=str(tone), loop=True)
    await trio.sleep(TONE_SECONDS)
    return heard


async def heard_each_other(heard: tuple[tuple[DaemonPeer, str, Path], ...]) -> None:
    """Each end's recording (complete once its worker says so) holds the other's tone."""
    for peer, session, path in heard:
        done = await peer.events.wait("session.recording", id=session, path=str(path))
        assert done["complete"] is True, done
    (_, _, heard_by_a), (_, _, heard_by_b) = heard
    assert_hears(heard_by_a, 1000, 440)
    assert_hears(heard_by_b, 440, 1000)


async def sipd_plays_and_records(peer: DaemonPeer, session: str, tmp_path: Path,
                                 tone: float) -> Path:
    """`peer` records what it hears and plays `tone` in a loop; the recording's path."""
    heard = tmp_path / f"heard-by-{peer.daemon.base.name}.wav"
    source = write_tone(tmp_path / f"{peer.daemon.base.name}-{tone}.wav", tone)
    await peer.call("sessions.record", id=session, path=str(heard))
    await peer.call("sessions.play", id=session, path=str(source), loop=True)
    return heard


async def recording_done(peer: DaemonPeer, session: str, path: Path) -> None:
    done = await peer.events.wait("session.recording", id=session)
    assert done["path"] == str(path) and done["complete"] is True, done


async def sipd_talk(a: DaemonPeer, a_id: str, b: DaemonPeer, b_id: str, tmp_path: Path) -> None:
    """Two sipd users in a call play their tones (CALLER_TONE, CALLEE_TONE); `a` hangs up;
    each must have heard the other."""
    heard_by_a = await sipd_plays_and_records(a, a_id, tmp_path, CALLER_TONE)
    heard_by_b = await sipd_plays_and_records(b, b_id, tmp_path, CALLEE_TONE)
    await trio.sleep(TONE_SECONDS)
    await a.call("sessions.end", id=a_id)
    await a.state(a_id, "ended")
    assert (await b.state(b_id, "ended"))["reason"] == "remote hangup"
    await recording_done(a, a_id, heard_by_a)
    await recording_done(b, b_id, heard_by_b)
    assert_hears(heard_by_a, CALLEE_TONE, CALLER_TONE)
    assert_hears(heard_by_b, CALLER_TONE, CALLEE_TONE)


def _wav_frames(path: Path) -> int:
    try:
        with wave.open(str(path)) as w:
            return w.getnframes()
    except (OSError, EOFError, wave.Error):
        return 0


async def finished_wav(paths: Any, what: str) -> Path:
    """The first WAV file of `paths()` holding at least half a second, once there is one."""
    def ready() -> Path | None:
        for path in paths():
            if _wav_frames(path) > 4000:
                return path
        return None

    return await off_loop(wait_until, ready, timeout=PEER_TIMEOUT, what=what, interval=0.2)
