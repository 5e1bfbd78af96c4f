"""Early media (RFC 3261 §13.2.1, RFC 3960): 180 and 183 of a callee before its answer.

sipd calls a sipp UAS that rings (180, no SDP), then sends early media (183 with SDP), then
answers or turns the call down; and a sipp UAS whose early call sipd cancels. sipp callees
that play a tone as early media (rtp_stream) show that sipd records it while the call is still
early, and after the answer. baresip in answer mode "early" sends its 183 and answers later
(but no audio before its answer: see test_baresip_in_early_answer_mode).

The daemon runs with sip.t1 = 50 ms, so that a call lingers 64*T1 = 3.2 s after it ended.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from sipctl.client import RpcCallError
from tests.harness.audio import TONE_SECONDS, assert_hears
from tests.harness.peer import DaemonPeer
from tests.harness.sipp import finish, messages, starting
from tests.harness.waits import EVENT_TIMEOUT, off_loop
from tests.peers.baresip import write_tone_wav
from tests.peers.ports import free_port
from tests.peers.proc import require_binary

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


def states(peer: DaemonPeer, session: str) -> list[tuple[str, Any]]:
    return [(e["state"], e.get("code")) for e in peer.events.matching("session.state",
                                                                      id=session)]


async def gone(peer: DaemonPeer, session: str, timeout: float = EVENT_TIMEOUT) -> None:
    """The session is forgotten (after its linger) and no worker carries it any more."""
    with trio.move_on_after(timeout):
        while True:
            try:
                await peer.call("sessions.get", id=session)
            except RpcCallError:
                workers = (await peer.call("system.state"))["media"]["workers"]
                assert all(session not in w["sessions"] for w in workers), workers
                return
            await trio.sleep(0.2)
    raise AssertionError(f"session {session} still there after {timeout} s")


# -- sipd calls sipp ------------------------------------------------------------------------

async def test_ringing_then_early_media_then_answered(peer, sipp):
    uas = sipp.start("call_uas_early_answer.xml", keys={"rtp": str(free_port())})
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]

    ringing = await peer.state(session, "ringing")
    early = await peer.state(session, "early")
    assert ringing["code"] == 180 and early["code"] == 183, (ringing, early)
    assert (await peer.call("sessions.get", id=session))["state"] in ("early", "established")
    await peer.state(session, "established", code=200)

    await peer.call("sessions.end", id=session)
    await peer.state(session, "ended")
    await finish(uas)
    assert [s for s, _ in states(peer, session)] == [
        "calling", "ringing", "early", "established", "ending", "ended"], states(peer, session)


async def test_early_media_then_busy_fails_486_and_tears_the_media_down(peer, sipp):
    uas = sipp.start("call_uas_early_busy.xml", keys={"rtp": str(free_port())})
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]

    assert (await peer.state(session, "early"))["code"] == 183
    failed = await peer.state(session, "failed")

    assert failed["code"] == 486, failed
    await finish(uas)
    await gone(peer, session)
    # and the next call works: the same scenario, answered this time
    uas = sipp.start("call_uas_early_answer.xml", keys={"rtp": str(free_port())})
    to = f"sip:service@{HOST}:{uas.local_port}"
    again = (await peer.call("sessions.start", account="local", to=to))["id"]
    await peer.state(again, "established")
    await peer.call("sessions.end", id=again)
    await peer.state(again, "ended")
    await finish(uas)


async def test_ending_an_early_call_cancels_it_487(peer, sipp):
    uas = sipp.start("call_uas_early_cancel.xml", keys={"rtp": str(free_port())})
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]
    await peer.state(session, "early")

    await peer.call("sessions.end", id=session)

    failed = await peer.state(session, "failed")
    assert failed["code"] == 487 and failed["reason"] == "cancelled", failed
    result = await finish(uas)  # it got the CANCEL, sent 487 and got its ACK
    assert starting(messages(result, "received"), "CANCEL ")
    await gone(peer, session)


# -- early media that is heard -------------------------------------------------------------

CALLER_TONE, CALLEE_TONE = 440, 1000


def mu_law_tone(tmp_path: Path, frequency: float = CALLEE_TONE) -> Path:
    """A WAV file of a tone as sipp's rtp_stream sends it: 8 kHz mono mu-law (PCMU)."""
    path = tmp_path / f"tone-{frequency:g}.wav"
    subprocess.run([require_binary("sox"), "-n", "-r", "8000", "-c", "1", "-e", "u-law",
                    str(path), "synth", "10", "sine", f"{frequency:g}", "vol", "0.3"],
                   check=True, timeout=30)
    return path


async def recorded(peer: DaemonPeer, session: str, path: Path) -> None:
    done = await peer.events.wait("session.recording", id=session, path=str(path))
    assert done["complete"] is True, done


async def test_early_media_is_heard_before_any_answer(peer, sipp, tmp_path):
    """A callee that plays a tone as early media (183 with SDP, then RTP) and never answers:
    sipd records it while the call is early, and cancelling ends it."""
    uas = sipp.start("call_uas_early_tone.xml", inputs={"tone.wav": mu_law_tone(tmp_path)},
                     extra_args=["-mp", str(free_port())])
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]
    assert (await peer.state(session, "early"))["code"] == 183
    heard = tmp_path / "heard-early.wav"

    await peer.call("sessions.record", id=session, path=str(heard))
    await trio.sleep(TONE_SECONDS)

    assert (await peer.call("sessions.get", id=session))["state"] == "early"  # never answered
    await peer.call("sessions.end", id=session)
    assert (await peer.state(session, "failed"))["code"] == 487
    await recorded(peer, session, heard)
    assert_hears(heard, CALLEE_TONE, CALLER_TONE)
    await finish(uas)


async def test_early_media_goes_on_once_answered(peer, sipp, tmp_path):
    uas = sipp.start("call_uas_early_tone_answer.xml",
                     inputs={"tone.wav": mu_law_tone(tmp_path)},
                     extra_args=["-mp", str(free_port())])
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]
    assert (await peer.state(session, "early"))["code"] == 183
    await peer.state(session, "established", code=200)
    heard = tmp_path / "heard-answered.wav"

    await peer.call("sessions.record", id=session, path=str(heard))
    await trio.sleep(TONE_SECONDS)

    await peer.call("sessions.end", id=session)
    await peer.state(session, "ended")
    await recorded(peer, session, heard)
    assert_hears(heard, CALLEE_TONE, CALLER_TONE)
    await finish(uas)


async def test_baresip_in_early_answer_mode(peer, baresip_factory, tmp_path):
    """baresip with answermode=early answers an INVITE with a 183 with SDP at once and with a
    200 when told (ctrl_tcp accept). sipd calls it directly: early media is between the two
    user agents, and a proxy relays a 183 as it is (test_calls_interop.py covers Kamailio).

    baresip 1.0.0 does not send audio before its 200, though: its call_progress() sends the
    183 but never sets the remote RTP address from the offer, so its audio starts only on
    answering. What baresip sends is therefore checked once answered; the sipp callees above
    show that early audio is heard."""
    source = write_tone_wav(tmp_path / "bob-tone.wav", frequency=CALLEE_TONE, seconds=60)
    bob = baresip_factory(account="sip:bob@127.0.0.1", register=False, answermode="early",
                          audio_source=source)
    to = f"sip:bob@{HOST}:{bob.sip_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]
    early = await peer.state(session, "early")
    assert early["code"] == 183, early

    await off_loop(bob.answer)
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=EVENT_TIMEOUT)
    await peer.state(session, "established", code=200)
    heard = tmp_path / "heard-from-bob.wav"
    await peer.call("sessions.record", id=session, path=str(heard))
    await trio.sleep(TONE_SECONDS)

    await peer.call("sessions.end", id=session)
    await peer.state(session, "ended")
    await off_loop(bob.wait_event, "CALL_CLOSED", timeout=EVENT_TIMEOUT)
    await recorded(peer, session, heard)
    assert_hears(heard, CALLEE_TONE, CALLER_TONE)
