"""Media workers forked from the zygote (sipd/media/zygote.py, sipd/media/forked.py): they are
its children and work as fresh ones do; the zygote's death costs no call, only the sharing."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import trio

from sipd.media.supervisor import open_media_supervisor
from tests.media.conftest import EVENT_TIMEOUT
from tests.media.test_supervisor import Recorder, supervisor_config


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def test_workers_are_forked_from_one_zygote_and_work(start_worker) -> None:
    callee = await start_worker("callee")
    seen = Recorder()
    async with open_media_supervisor(supervisor_config(max_workers=2), on_event=seen.on_event,
                                     on_worker_state=seen.on_worker_state) as supervisor:
        first = await supervisor.allocate("s1")
        zygote = supervisor.zygote_pid
        assert zygote is not None and parent_of(first.pid) == zygote
        for n in range(2, 5):
            await supervisor.allocate(f"s{n}")
        second = await supervisor.allocate("s5")  # the first carries 4: a second worker
        assert second.id != first.id and parent_of(second.pid) == zygote
        call = (await supervisor.request("s5", "call", uri=callee.uri, session="s5"))["call"]
        await seen.events.wait_for(event="call.media", worker=second.id, call=call,
                                   active=True)
        await supervisor.request("s5", "hangup", call=call)
        os.kill(first.pid, signal.SIGKILL)  # the zygote reaps it and says how it ended
        crashed = await seen.states.wait_for(state="crashed", worker=first.id)
        assert crashed["reason"] == "media engine crashed (signal 9, SIGKILL)"
    stopped = await seen.states.wait_for(state="stopped", worker=second.id)
    assert stopped["reason"] == "stopped"
    for pid in (zygote, second.pid):  # the block left nothing behind
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"process {pid} is still there")


async def test_a_dead_zygote_leaves_its_workers_serving_and_new_ones_start_fresh() -> None:
    seen = Recorder()
    async with open_media_supervisor(supervisor_config(max_workers=2),
                                     on_worker_state=seen.on_worker_state) as supervisor:
        orphan = await supervisor.allocate("s1")
        zygote = supervisor.zygote_pid
        assert zygote is not None
        os.kill(zygote, signal.SIGKILL)
        with trio.fail_after(EVENT_TIMEOUT):
            while supervisor.zygote_pid is not None:
                await trio.sleep(0.05)
        assert (await supervisor.request("s1", "status"))["configured"] is True
        for n in range(2, 5):
            await supervisor.allocate(f"s{n}")
        fresh = await supervisor.allocate("s5")
        assert parent_of(fresh.pid) == os.getpid()  # started the plain way
        assert (await supervisor.request("s5", "status"))["configured"] is True
        os.kill(orphan.pid, signal.SIGKILL)  # its end is seen; how it ended went with the zygote
        crashed = await seen.states.wait_for(state="crashed", worker=orphan.id)
        assert "lost with the workers' zygote" in crashed["reason"]


async def test_without_the_zygote_workers_are_our_own_children() -> None:
    config = dataclasses.replace(supervisor_config(max_workers=1), zygote=False)
    async with open_media_supervisor(config) as supervisor:
        worker = await supervisor.allocate("s1")
        assert supervisor.zygote_pid is None and parent_of(worker.pid) == os.getpid()
        assert (await supervisor.request("s1", "status"))["configured"] is True
