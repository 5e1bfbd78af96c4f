"""Call steps between a sipd user and the independent user agents (baresip `bob`, linphonec
`carol`) through Kamailio, shared by the interop call and transfer tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from tests.harness.audio import assert_hears, finished_wav, recording_done, sipd_plays_and_records
from tests.harness.peer import DaemonPeer, daemon_settings, registered_user
from tests.harness.useragent import PEER_TIMEOUT
from tests.harness.waits import off_loop
from tests.peers.baresip import write_tone_wav

# How long the ends talk before the hang-up: a duration of the scenario, not a wait for a state.
TALK_SECONDS = 3.0


def bob_with_tone(baresip_factory: Any, tmp_path: Path, tone: float) -> Any:
    source = write_tone_wav(tmp_path / f"bob-{tone}.wav", frequency=tone, seconds=60)
    return baresip_factory("bob", audio_source=source)


def carol_with_tone(linphonec_factory: Any, tmp_path: Path, tone: float) -> Any:
    source = write_tone_wav(tmp_path / f"carol-{tone}.wav", frequency=tone, seconds=60)
    return linphonec_factory("carol", audio_source=source)


async def sipd_calls_baresip(alice: DaemonPeer, bob: Any, to: str) -> str:
    """alice calls baresip, which answers: alice's session id, once established."""
    a_id = (await alice.call("sessions.start", account=alice.id, to=to,
                             streams=["audio"]))["id"]
    await off_loop(bob.wait_event, "CALL_INCOMING", timeout=PEER_TIMEOUT)
    await off_loop(bob.answer)
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)
    await alice.state(a_id, "established")
    return a_id


async def talk_then_hang_up(alice: DaemonPeer, a_id: str, tmp_path: Path, alice_tone: float,
                            peer_tone: float, peer_ended: Callable[[], Awaitable[Any]],
                            peer_recording: Callable[[], list[Path]], what: str) -> None:
    """sipd plays its tone and records for a while, hangs up, and each end must have heard
    the other's tone. `peer_ended` is the user agent's `ended_waiter()` (or a narrower one)."""
    heard_by_alice = await sipd_plays_and_records(alice, a_id, tmp_path, alice_tone)
    await trio.sleep(TALK_SECONDS)
    await alice.call("sessions.end", id=a_id)
    await alice.state(a_id, "ended")
    await peer_ended()
    await recording_done(alice, a_id, heard_by_alice)
    heard_by_peer = await finished_wav(peer_recording, what)
    assert_hears(heard_by_alice, peer_tone, alice_tone)
    assert_hears(heard_by_peer, alice_tone, peer_tone)


def call_user(tmp_path: Path, kamailio: Any, user: str, transport: str = "udp",
              settings: dict[str, Any] | None = None) -> Any:
    """A daemon of its own with media workers (daemon_settings plus `settings`) and `user`
    registered at Kamailio over `transport`: a context manager giving its DaemonPeer."""
    return registered_user(tmp_path, kamailio, user, transport,
                           settings={**daemon_settings(), **(settings or {})})
