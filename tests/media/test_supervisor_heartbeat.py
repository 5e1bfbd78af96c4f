"""The supervisor's heartbeat with real workers: a worker that stops answering (SIGSTOP) is
reported, its calls' status comes from its last heartbeat, and it is killed after the grace;
one that answers again before is reported recovered."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest

from sipd.media.process import MediaWorkerGone
from sipd.media.supervisor import open_media_supervisor
from tests.media.test_supervisor import Recorder, supervisor_config

HEARTBEAT = 0.5  # seconds


async def call_on_supervisor(supervisor, seen, callee, session: str) -> tuple[object, int]:
    worker = await supervisor.allocate(session)
    call = (await supervisor.request(session, "call", uri=callee.uri,
                                     session=session))["call"]
    await seen.events.wait_for(event="call.state", worker=worker.id, call=call,
                               state="confirmed")
    await seen.events.wait_for(event="call.media", worker=worker.id, call=call, active=True)
    return worker, call


async def test_a_stuck_worker_is_reported_then_killed(start_worker) -> None:
    callee = await start_worker("callee")
    seen = Recorder()
    config = dataclasses.replace(supervisor_config(), heartbeat_interval=HEARTBEAT,
                                 unresponsive_grace=6)
    async with open_media_supervisor(config, on_event=seen.on_event,
                                     on_worker_state=seen.on_worker_state) as supervisor:
        stuck, call = await call_on_supervisor(supervisor, seen, callee, "s1")
        fresh = await supervisor.request("s1", "status")
        assert "stale" not in fresh and fresh["calls"][0]["call"] == call

        os.kill(stuck.pid, signal.SIGSTOP)
        try:
            unresponsive = await seen.states.wait_for(state="unresponsive")
            assert unresponsive["worker"] == stuck.id and unresponsive["pid"] == stuck.pid
            assert unresponsive["sessions"] == ["s1"]
            assert "heartbeat" in unresponsive["reason"], unresponsive
            # The call's status: its last known state, without asking the stopped worker.
            status = await supervisor.request("s1", "status")
            assert status["stale"] is True and "heartbeat" in status["problem"], status
            assert [(c["call"], c["state"]) for c in status["calls"]] == [(call, "confirmed")]
            assert not seen.states.matching(state="crashed")  # answered within the grace
            # No new call goes to the stuck worker.
            other = await supervisor.allocate("s2")
            assert other.id != stuck.id
            # A command waits for it, and learns why it will never be answered.
            with pytest.raises(MediaWorkerGone, match="media engine stopped answering"):
                await supervisor.request("s1", "hangup", call=call)
            crashed = await seen.states.wait_for(state="crashed", worker=stuck.id)
        finally:
            if stuck.alive:
                os.kill(stuck.pid, signal.SIGCONT)
        assert crashed["reason"].startswith("media engine stopped answering"), crashed
        assert crashed["sessions"] == ["s1"] and not stuck.alive
        assert supervisor.worker_of("s1") is None
        with pytest.raises(ProcessLookupError):
            os.kill(stuck.pid, 0)


async def test_a_worker_that_answers_again_is_reported_recovered(start_worker) -> None:
    callee = await start_worker("callee")
    seen = Recorder()
    config = dataclasses.replace(supervisor_config(), heartbeat_interval=HEARTBEAT,
                                 unresponsive_grace=600)
    async with open_media_supervisor(config, on_event=seen.on_event,
                                     on_worker_state=seen.on_worker_state) as supervisor:
        worker, call = await call_on_supervisor(supervisor, seen, callee, "s1")
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            await seen.states.wait_for(state="unresponsive", worker=worker.id)
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        recovered = await seen.states.wait_for(state="recovered", worker=worker.id)
        assert recovered["pid"] == worker.pid and worker.alive
        status = await supervisor.request("s1", "status")
        assert "stale" not in status and status["calls"][0]["state"] == "confirmed"
        await supervisor.request("s1", "hangup", call=call)
        await seen.events.wait_for(event="call.state", worker=worker.id, call=call,
                                   state="disconnected")
    assert not seen.states.matching(state="crashed")
