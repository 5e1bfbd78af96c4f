"""Calls that notice, between two real sipd daemons: a far daemon killed outright (no BYE ever
comes) and a media worker that stops answering (SIGSTOP) both end the call `failed` with
the reason, and `sessions.get` keeps answering meanwhile."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import trio

from tests.harness.peer import DaemonPeer as Peer
from tests.harness.peer import call_and_answer, daemon_settings, open_peer
from tests.harness.process import SipdProcess

WAIT = 60.0  # bound on each wait; the settings below make each step take seconds
NEAR_SETTINGS = {"rtp.inactivity_timeout": 2, "media.heartbeat_interval": 1,
                 "media.unresponsive_grace": 4,
                 "sip.t1": 100}  # a BYE to a dead peer gives up within seconds


@asynccontextmanager
async def two_daemons(base: Path, far_settings: dict[str, Any] | None = None,
                      ) -> AsyncIterator[tuple[Peer, Peer, SipdProcess]]:
    near = SipdProcess(base, {**daemon_settings(), **NEAR_SETTINGS}, name="near")
    far = SipdProcess(base, {**daemon_settings(), **(far_settings or {})}, name="far")
    try:
        near.start()
        far.start()
        async with open_peer(near) as a, open_peer(far) as b:
            yield a, b, far
    finally:
        far.stop()
        near.stop()


def worker_pids(state: dict[str, Any]) -> list[int]:
    return [worker["pid"] for worker in state["media"]["workers"]]


async def test_a_killed_far_daemon_ends_the_call_for_lack_of_media(tmp_path):
    async with two_daemons(tmp_path) as (a, b, far):
        a_id, _b_id = await call_and_answer(a, b)
        far_workers = worker_pids(await b.call("system.state"))
        try:
            far.signal(signal.SIGKILL)  # no BYE, ever: only the media stops
            failed = await a.state(a_id, "failed", timeout=WAIT)
        finally:
            for pid in far_workers:  # they leave on their own when their daemon is gone
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        assert failed["reason"] == "no media from the remote party", failed
        assert not a.events.matching("session.state", id=a_id, state="ended")
        # The near daemon goes on: its worker is still there for the next call.
        assert (await a.call("system.state"))["media"]["workers"]


async def test_a_stuck_media_worker_is_noticed_and_its_call_fails(tmp_path):
    async with two_daemons(tmp_path) as (a, b, _far):
        a_id, b_id = await call_and_answer(a, b)
        workers = (await a.call("system.state"))["media"]["workers"]
        carrier = next(w for w in workers if a_id in w["sessions"])
        with trio.fail_after(WAIT):  # media flows (and the worker said so)
            while not ((await a.call("sessions.get", id=a_id))["rtp"] or {}).get("rx_packets"):
                await trio.sleep(0.2)
        os.kill(carrier["pid"], signal.SIGSTOP)
        try:
            stuck = await a.events.wait("media.worker", state="unresponsive", timeout=WAIT)
            assert stuck["pid"] == carrier["pid"] and stuck["sessions"] == [a_id], stuck
            # sessions.get answers from the last known media state, not after the kill.
            view = await a.call("sessions.get", id=a_id)
            assert not a.events.matching("media.worker", state="crashed")
            assert view["state"] == "established" and view["media"]["active"] is True, view
            assert view["rtp"] is not None and view["rtp"]["rx_packets"] > 0, view
            assert view["rtp"]["stale"] is True, view  # the counters say they are old
            crashed = await a.events.wait("media.worker", state="crashed", timeout=WAIT)
        finally:
            with suppress(ProcessLookupError):
                os.kill(carrier["pid"], signal.SIGCONT)
        assert crashed["pid"] == carrier["pid"] and crashed["sessions"] == [a_id], crashed
        failed = await a.state(a_id, "failed", timeout=WAIT)
        assert failed["reason"].startswith("media engine stopped answering"), failed
        assert (await b.state(b_id, "ended", timeout=WAIT))["reason"] == "remote hangup"
        with suppress(ProcessLookupError):
            os.kill(carrier["pid"], 0)
            raise AssertionError(f"the stuck worker {carrier['pid']} is still there")


async def rx_packets(peer: Peer, session: str) -> int:
    return int(((await peer.call("sessions.get", id=session))["rtp"] or {}).get("rx_packets", 0))


async def test_a_call_on_hold_either_way_stays_up_in_silence(tmp_path):
    async with two_daemons(tmp_path, far_settings=NEAR_SETTINGS) as (a, b, _far):
        a_id, b_id = await call_and_answer(a, b)
        for holder, holder_id, held, held_id in ((a, a_id, b, b_id), (b, b_id, a, a_id)):
            await holder.call("sessions.hold", id=holder_id)
            await holder.events.wait("session.hold", id=holder_id, on_hold=True)
            await held.events.wait("session.hold", id=held_id, on_hold=True)
            # The holder's media is sendonly: it hears nothing, for longer than the timeout.
            before = await rx_packets(holder, holder_id)
            await trio.sleep(3 * NEAR_SETTINGS["rtp.inactivity_timeout"])
            assert await rx_packets(holder, holder_id) - before < 5  # (a packet in flight)
            for peer, session in ((a, a_id), (b, b_id)):
                assert (await peer.call("sessions.get", id=session))["state"] == "established"
            mark = holder.events.mark()
            await holder.call("sessions.unhold", id=holder_id)
            await holder.events.wait("session.hold", id=holder_id, on_hold=False, since=mark)
        for peer, session in ((a, a_id), (b, b_id)):
            assert not peer.events.matching("session.state", id=session, state="failed")
        await a.call("sessions.end", id=a_id)
        assert (await b.state(b_id, "ended"))["reason"] == "remote hangup"
