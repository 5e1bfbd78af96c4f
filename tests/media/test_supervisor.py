"""The media supervisor with real workers: allocation, crash reporting, clean shutdown."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from sipd.media.supervisor import (
    MediaSettings,
    MediaUnavailable,
    SupervisorConfig,
    open_media_supervisor,
)
from tests.media.conftest import EVENT_TIMEOUT, EventLog

# A private slice of the RTP port space, split between the test's workers.
PORT_RANGE = (47000, 47999)


def supervisor_config(max_workers: int = 2) -> SupervisorConfig:
    media = MediaSettings(media_address="127.0.0.1", rtp_port_range=PORT_RANGE,
                          audio_codecs=("PCMU",))
    return SupervisorConfig(media=media, max_workers=max_workers,
                            start_timeout=EVENT_TIMEOUT, request_timeout=EVENT_TIMEOUT,
                            stop_timeout=EVENT_TIMEOUT)


class Recorder:
    """The supervisor's two callbacks, recorded."""

    def __init__(self) -> None:
        self.events = EventLog()
        self.states = EventLog()

    def on_event(self, worker_id: str, event: dict[str, Any]) -> None:
        self.events(worker_id, {**event, "worker": worker_id})

    def on_worker_state(self, data: dict[str, Any]) -> None:
        self.states(None, data)


async def test_slots_are_allocated_per_worker_and_released() -> None:
    seen = Recorder()
    async with open_media_supervisor(supervisor_config(max_workers=1),
                                     on_worker_state=seen.on_worker_state) as supervisor:
        workers = {(await supervisor.allocate(f"s{n}")).id for n in range(4)}
        assert len(workers) == 1
        assert (await supervisor.allocate("s0")).id in workers  # same session, same slot
        with pytest.raises(MediaUnavailable, match="media workers carry 4 calls"):
            await supervisor.allocate("s4")
        supervisor.release("s2")
        assert (await supervisor.allocate("s4")).id in workers
        status = await supervisor.request("s4", "status")
        assert status["configured"] is True
        pid = supervisor.workers[0].pid
    started = await seen.states.wait_for(state="started")
    stopped = await seen.states.wait_for(state="stopped")
    assert started["pid"] == stopped["pid"] == pid
    assert stopped["reason"] == "stopped" and sorted(stopped["sessions"]) == ["s0", "s1", "s3",
                                                                              "s4"]
    with pytest.raises(ProcessLookupError):  # the block left nothing behind
        os.kill(pid, 0)


async def test_a_killed_worker_is_reported_and_replaced(start_worker) -> None:
    callee = await start_worker("callee")
    seen = Recorder()
    async with open_media_supervisor(supervisor_config(), on_event=seen.on_event,
                                     on_worker_state=seen.on_worker_state) as supervisor:
        first = await supervisor.allocate("doomed")
        call = (await supervisor.request("doomed", "call", uri=callee.uri,
                                         session="doomed"))["call"]
        await seen.events.wait_for(event="call.state", worker=first.id, call=call,
                                   state="confirmed")
        await seen.events.wait_for(event="call.media", worker=first.id, active=True)

        os.kill(first.pid, signal.SIGKILL)
        crashed = await seen.states.wait_for(state="crashed")
        assert crashed["worker"] == first.id and crashed["pid"] == first.pid
        assert crashed["reason"] == "media engine crashed (signal 9, SIGKILL)"
        assert crashed["sessions"] == ["doomed"]
        assert supervisor.worker_of("doomed") is None and not first.alive

        second = await supervisor.allocate("survivor")
        assert second.id != first.id and second.pid != first.pid
        call = (await supervisor.request("survivor", "call", uri=callee.uri,
                                         session="survivor"))["call"]
        await seen.events.wait_for(event="call.state", worker=second.id, call=call,
                                   state="confirmed")
        await supervisor.request("survivor", "hangup", call=call)
        await seen.events.wait_for(event="call.state", worker=second.id, call=call,
                                   state="disconnected")
        assert supervisor.worker_of("survivor") is None  # the slot went back with the call
    stopped = await seen.states.wait_for(state="stopped", worker=second.id)
    assert stopped["sessions"] == []


async def test_workers_bind_rtp_inside_their_own_port_slice(start_worker) -> None:
    callee = await start_worker("callee")
    seen = Recorder()
    config = supervisor_config(max_workers=2)
    async with open_media_supervisor(config, on_event=seen.on_event) as supervisor:
        worker = await supervisor.allocate("sliced")
        call = (await supervisor.request("sliced", "call", uri=callee.uri,
                                         session="sliced"))["call"]
        incoming = await callee.events.wait_for(event="call.media", session="sliced",
                                                active=True)
        port = int(incoming["remote_rtp"].rpartition(":")[2])
        assert 47000 <= port < 47500, port  # worker 1 of 2 owns the lower half
        await supervisor.request("sliced", "hangup", call=call)
        assert worker.alive


async def test_an_invalid_setting_is_refused_before_any_worker_starts() -> None:
    with pytest.raises(ValueError, match="too small for 4 media workers"):
        config = SupervisorConfig(media=MediaSettings(rtp_port_range=(50000, 50010)))
        async with open_media_supervisor(config):
            pass
    seen = Recorder()
    bad = SupervisorConfig(media=MediaSettings(audio_codecs=("nothing-real",),
                                               rtp_port_range=None),
                           start_timeout=EVENT_TIMEOUT, stop_timeout=EVENT_TIMEOUT)
    async with open_media_supervisor(bad, on_worker_state=seen.on_worker_state) as supervisor:
        with pytest.raises(MediaUnavailable, match="refused its settings.*audio codecs"):
            await supervisor.allocate("s1")
        assert supervisor.workers == []
    assert seen.states.events == []
