"""Audio calls through Kamailio between registered accounts: sipd, baresip and linphonec.

alice and dave are accounts of real sipd daemons (each with its own media workers on loopback)
registered at the `kamailio` fixture over UDP; bob is baresip (aufile source, sndfile recorder,
driven over ctrl_tcp), carol is linphonec (wav files instead of a sound card, driven over
stdin). Every INVITE goes through Kamailio, which challenges the caller and looks the callee up
in its location table. Audio is proven as in test_calls.py: each end plays its own tone and the
other end's recording must be dominated by it.
"""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from sipctl.client import connect
from tests.daemon import SipdProcess
from tests.media.audio import write_tone
from tests.messages.test_pager_interop import account_fields
from tests.peers.baresip import write_tone_wav
from tests.peers.proc import off_loop, wait_until
from tests.sessions.test_calls import TONE_SECONDS, Events, Peer, assert_hears, daemon_settings

pytestmark = pytest.mark.interop

CALLER_TONE, CALLEE_TONE = 440, 1000
PEER_TIMEOUT = 30.0


class SipdUser(Peer):
    """A sipd daemon with one account registered at Kamailio, with all its session events."""

    def __init__(self, daemon: SipdProcess, rpc: Any, events: Events, ports: dict[str, int],
                 account: dict[str, Any]) -> None:
        super().__init__(daemon, rpc, events, ports)
        self.account = account

    @property
    def id(self) -> str:
        return self.account["id"]


@asynccontextmanager
async def sipd_user(tmp_path: Path, kamailio: Any, user: str, transport: str = "udp",
                    settings: dict[str, Any] | None = None) -> AsyncIterator[SipdUser]:
    """A daemon of its own (daemon_settings plus `settings`) with `user` registered at
    Kamailio over `transport`."""
    daemon = SipdProcess(tmp_path, {**daemon_settings(), **(settings or {})},
                         name=f"sipd-{user}")
    try:
        daemon.start()
        async with connect(daemon.endpoint) as rpc, trio.open_nursery() as nursery:
            events = Events()
            nursery.start_soon(events.collect, rpc)
            await rpc.call("events.subscribe", {"topics": ["sessions", "media", "accounts"]})
            ports = (await rpc.call("system.state"))["sip"]["ports"]
            account = await rpc.call("accounts.add", account_fields(kamailio, user, transport))
            registration = await events.wait(
                "account.registration", account=account["id"], state="registered")
            assert registration["state"] == "registered", registration
            yield SipdUser(daemon, rpc, events, ports, account)
            nursery.cancel_scope.cancel()
    finally:
        daemon.stop()
        print(f"--- {daemon.base.name} ---\n{daemon.log()}")  # shown on failure


@pytest.fixture
async def alice(tmp_path, kamailio):
    async with sipd_user(tmp_path, kamailio, "alice") as user:
        yield user


@pytest.fixture(params=["udp", "tcp"])
async def dave(request, tmp_path, kamailio):
    """dave registered over UDP, or over TCP with Kamailio as his outbound proxy."""
    async with sipd_user(tmp_path, kamailio, "dave", request.param) as user:
        yield user


async def sipd_plays_and_records(peer: SipdUser, session: str, tmp_path: Path,
                                 tone: float) -> Path:
    """`peer` records what it hears and plays `tone` in a loop; the recording's path."""
    heard = tmp_path / f"heard-by-{peer.daemon.base.name}.wav"
    source = write_tone(tmp_path / f"{peer.daemon.base.name}-{tone}.wav", tone)
    await peer.call("sessions.record", id=session, path=str(heard))
    await peer.call("sessions.play", id=session, path=str(source), loop=True)
    return heard


async def recording_done(peer: SipdUser, session: str, path: Path) -> None:
    done = await peer.events.wait("session.recording", id=session)
    assert done["path"] == str(path) and done["complete"] is True, done


async def sipd_talk(a: SipdUser, a_id: str, b: SipdUser, b_id: str, tmp_path: Path) -> None:
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


# -- sipd <-> sipd --------------------------------------------------------------------------

async def test_sipd_calls_sipd_through_kamailio(kamailio, alice, dave, tmp_path):
    mark = dave.events.mark()
    a_id = (await alice.call("sessions.start", account=alice.id, to=kamailio.aor("dave"),
                             streams=["audio"]))["id"]
    new = await dave.events.wait("session.new", direction="incoming", since=mark)
    d_id = new["id"]
    assert new["account"] == dave.id and new["streams"] == ["audio"]
    assert new["remote"] == kamailio.aor("alice"), new
    await dave.state(d_id, "ringing")
    await alice.state(a_id, "ringing")
    await dave.call("sessions.answer", id=d_id)
    await alice.state(a_id, "established")
    await dave.state(d_id, "established")
    # Kamailio challenged the INVITE; it went again with the credentials.
    log = alice.daemon.log()
    assert "received 407 Proxy Authentication Required" in log
    assert log.count(f"sending INVITE {kamailio.aor('dave')} ") >= 2

    await sipd_talk(alice, a_id, dave, d_id, tmp_path)


# -- sipd <-> baresip -----------------------------------------------------------------------

def bob_with_tone(baresip_factory: Any, tmp_path: Path, tone: float) -> Any:
    source = write_tone_wav(tmp_path / f"bob-{tone}.wav", frequency=tone, seconds=60)
    return baresip_factory("bob", audio_source=source)


def bob_closed(bob):
    """Before the hang-up: what waits for baresip to see the call end."""
    return lambda: off_loop(bob.wait_event, "CALL_CLOSED", timeout=PEER_TIMEOUT)


async def sipd_calls_baresip(alice: SipdUser, bob: Any, to: str) -> str:
    """alice calls baresip, which answers: alice's session id, once established."""
    a_id = (await alice.call("sessions.start", account=alice.id, to=to,
                             streams=["audio"]))["id"]
    await off_loop(bob.wait_event, "CALL_INCOMING", timeout=PEER_TIMEOUT)
    await off_loop(bob.answer)
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)
    await alice.state(a_id, "established")
    return a_id


def carol_ended(carol):
    """Before the hang-up (it marks linphonec's log): what waits for the end there."""
    offset = carol.process.log_size()
    return lambda: off_loop(carol.wait_call, "ended", since=offset, timeout=PEER_TIMEOUT)


async def talk_then_hang_up(alice, a_id, tmp_path, alice_tone, peer_tone, peer_ended,
                            peer_recording, what):
    """sipd plays its tone and records for a while, hangs up, and each end must have heard
    the other's tone."""
    heard_by_alice = await sipd_plays_and_records(alice, a_id, tmp_path, alice_tone)
    await trio.sleep(3.0)
    await alice.call("sessions.end", id=a_id)
    await alice.state(a_id, "ended")
    await peer_ended()
    await recording_done(alice, a_id, heard_by_alice)
    heard_by_peer = await finished_wav(peer_recording, what)
    assert_hears(heard_by_alice, peer_tone, alice_tone)
    assert_hears(heard_by_peer, alice_tone, peer_tone)


async def test_sipd_calls_baresip(kamailio, alice, baresip_factory, tmp_path):
    bob = bob_with_tone(baresip_factory, tmp_path, CALLEE_TONE)
    await off_loop(bob.wait_event, "REGISTER_OK")

    a_id = (await alice.call("sessions.start", account=alice.id, to=kamailio.aor("bob"),
                             streams=["audio"]))["id"]
    incoming = await off_loop(bob.wait_event, "CALL_INCOMING", timeout=PEER_TIMEOUT)
    assert incoming["peeruri"] == kamailio.aor("alice"), incoming
    await alice.state(a_id, "ringing")
    await off_loop(bob.answer)
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)
    await alice.state(a_id, "established")

    await talk_then_hang_up(alice, a_id, tmp_path, CALLER_TONE, CALLEE_TONE, bob_closed(bob),
                            lambda: bob.recordings()["received"], "baresip's recording of the call")


async def test_baresip_calls_sipd(kamailio, alice, baresip_factory, tmp_path):
    bob = bob_with_tone(baresip_factory, tmp_path, CALLER_TONE)
    await off_loop(bob.wait_event, "REGISTER_OK")

    mark = alice.events.mark()
    await off_loop(bob.dial, kamailio.aor("alice"))
    new = await alice.events.wait("session.new", direction="incoming", since=mark)
    a_id = new["id"]
    assert new["account"] == alice.id and new["remote"] == kamailio.aor("bob"), new
    await alice.state(a_id, "ringing")
    await alice.call("sessions.answer", id=a_id)
    await alice.state(a_id, "established")
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)

    await talk_then_hang_up(alice, a_id, tmp_path, CALLEE_TONE, CALLER_TONE, bob_closed(bob),
                            lambda: bob.recordings()["received"], "baresip's recording of the call")


# -- sipd <-> linphonec ---------------------------------------------------------------------

def carol_with_tone(linphonec_factory: Any, tmp_path: Path, tone: float) -> Any:
    source = write_tone_wav(tmp_path / f"carol-{tone}.wav", frequency=tone, seconds=60)
    return linphonec_factory("carol", audio_source=source)


async def test_sipd_calls_linphonec(kamailio, alice, linphonec_factory, tmp_path):
    carol = carol_with_tone(linphonec_factory, tmp_path, CALLEE_TONE)
    await off_loop(carol.wait_registered)

    offset = carol.process.log_size()
    a_id = (await alice.call("sessions.start", account=alice.id, to=kamailio.aor("carol"),
                             streams=["audio"]))["id"]
    await off_loop(carol.wait_call, "incoming", since=offset, timeout=PEER_TIMEOUT)
    await alice.state(a_id, "ringing")
    await off_loop(carol.answer)
    await alice.state(a_id, "established")
    await off_loop(carol.wait_call, "streams", since=offset, timeout=PEER_TIMEOUT)

    await talk_then_hang_up(alice, a_id, tmp_path, CALLER_TONE, CALLEE_TONE, carol_ended(carol),
                            lambda: [carol.record_path], "linphonec's recording of the call")


async def test_linphonec_calls_sipd(kamailio, alice, linphonec_factory, tmp_path):
    carol = carol_with_tone(linphonec_factory, tmp_path, CALLER_TONE)
    await off_loop(carol.wait_registered)

    mark = alice.events.mark()
    offset = carol.call(kamailio.aor("alice"))
    new = await alice.events.wait("session.new", direction="incoming", since=mark)
    a_id = new["id"]
    assert new["account"] == alice.id and new["remote"] == kamailio.aor("carol"), new
    await alice.state(a_id, "ringing")
    await alice.call("sessions.answer", id=a_id)
    await alice.state(a_id, "established")
    await off_loop(carol.wait_call, "streams", since=offset, timeout=PEER_TIMEOUT)

    await talk_then_hang_up(alice, a_id, tmp_path, CALLEE_TONE, CALLER_TONE, carol_ended(carol),
                            lambda: [carol.record_path], "linphonec's recording of the call")
