"""RTP inactivity with real workers: a remote party that goes silent is reported, one on hold
is not. The far worker is silenced with SIGSTOP (a process that no longer runs sends nothing,
as a dead host would)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from sipd.media.process import MediaWorkerError
from tests.media.conftest import configure_fields, connect

RTP_TIMEOUT = 1  # seconds; the worker checks its counters once a second


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_a_remote_party_that_goes_silent_is_reported(start_worker) -> None:
    near = await start_worker("near", rtp_timeout=RTP_TIMEOUT)
    far = await start_worker("far")
    call, _ = await connect(near, far, session="quiet")
    mark = near.events.mark()
    with stopped(far.process.pid):
        timeout = await near.events.wait_for(since=mark, event="call.rtp_timeout")
    assert timeout["call"] == call and timeout["session"] == "quiet", timeout
    assert timeout["seconds"] >= RTP_TIMEOUT
    assert timeout["reason"].startswith("no media from the remote party"), timeout
    # The worker only reports: the call is still up until the session hangs it up.
    status = await near.request("status")
    assert [c["state"] for c in status["calls"] if c["call"] == call] == ["confirmed"]
    await near.request("hangup", call=call)
    await near.events.wait_for(event="call.state", call=call, state="disconnected")


async def test_a_call_on_hold_may_hear_nothing(start_worker) -> None:
    near = await start_worker("near", rtp_timeout=RTP_TIMEOUT)
    far = await start_worker("far", rtp_timeout=RTP_TIMEOUT)
    call, far_call = await connect(near, far, session="held")
    await near.request("hold", call=call)
    await near.events.wait_for(event="call.media", call=call, status="local_hold")
    await far.events.wait_for(event="call.media", call=far_call, status="remote_hold")
    mark, far_mark = near.events.mark(), far.events.mark()
    with stopped(far.process.pid):
        await trio.sleep(4 * RTP_TIMEOUT + 1)  # several checks past the timeout
    await trio.sleep(2 * RTP_TIMEOUT + 1)  # the far worker looks at its counters again
    assert not near.events.matching(mark, event="call.rtp_timeout"), near.events.events[mark:]
    assert not far.events.matching(far_mark, event="call.rtp_timeout"), far.events.events
    # Off hold the watch is armed again: the same silence is now reported.
    await near.request("unhold", call=call)
    await near.events.wait_for(since=mark, event="call.media", call=call, status="active")
    mark = near.events.mark()
    with stopped(far.process.pid):
        await near.events.wait_for(since=mark, event="call.rtp_timeout", call=call)


async def test_configure_refuses_a_bad_rtp_timeout(start_worker) -> None:
    worker = await start_worker("w", configure=False)
    for bad in (-1, "30", True):
        with pytest.raises(MediaWorkerError, match="rtp_timeout"):
            await worker.request("configure", **configure_fields(rtp_timeout=bad))
    assert (await worker.request("status"))["configured"] is False  # nothing half done
