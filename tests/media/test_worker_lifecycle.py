"""A media worker process on its own: start, ready, status, configure, clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import trio

from sipd.media.process import MediaWorkerError, MediaWorkerGone, WorkerProcess
from tests.media.conftest import EVENT_TIMEOUT, configure_fields


async def test_worker_starts_answers_status_and_shuts_down_cleanly(nursery) -> None:
    exits: list[WorkerProcess] = []
    worker = await WorkerProcess.start(nursery, "solo", on_exit=exits.append,
                                       start_timeout=EVENT_TIMEOUT)
    try:
        host, _, port = worker.sip["tcp"].rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        assert worker.uri.startswith("sip:") and worker.ready["pid"] == worker.pid

        status = await worker.request("status")
        assert status["configured"] is False
        assert status["free_slots"] == 4 and status["max_calls"] == 4
        assert status["calls"] == []

        with pytest.raises(MediaWorkerError, match="not configured"):
            await worker.request("call", uri="sip:nobody@127.0.0.1:9;transport=tcp")
        reply = await worker.request("configure",
                                     **configure_fields(codecs=["PCMA", "no-such-codec"]))
        assert reply["codecs"] == ["PCMA/8000/1"] and reply["unknown_codecs"] == ["no-such-codec"]
        assert (await worker.request("status"))["configured"] is True
        with pytest.raises(MediaWorkerError, match="not a SIP URI"):
            await worker.request("call", uri="mailto:someone@example.org")
        with pytest.raises(MediaWorkerError, match="cannot go into a SIP message"):
            await worker.request("call", uri="sip:x@127.0.0.1:9", session="a\r\nVia: evil")
        assert (await worker.request("status"))["free_slots"] == 4
    finally:
        with trio.CancelScope(shield=True):
            await worker.stop(timeout=EVENT_TIMEOUT)

    assert worker.process.returncode == 0
    assert worker.exit_reason == "stopped" and not worker.crashed
    assert exits == [worker]
    with pytest.raises(ProcessLookupError):  # reaped: nothing left behind
        os.kill(worker.pid, 0)
    with pytest.raises(MediaWorkerError, match="gone"):
        await worker.request("status")


async def test_configure_rejects_what_cannot_work(nursery) -> None:
    worker = await WorkerProcess.start(nursery, "picky", start_timeout=EVENT_TIMEOUT)
    try:
        with pytest.raises(MediaWorkerError, match="none of the audio codecs"):
            await worker.request("configure", **configure_fields(codecs=["nope"]))
        with pytest.raises(MediaWorkerError, match="srtp must be one of"):
            await worker.request("configure", **configure_fields(srtp="sometimes"))
    finally:
        with trio.CancelScope(shield=True):
            await worker.stop(timeout=EVENT_TIMEOUT)
    assert worker.process.returncode == 0


async def test_worker_exits_cleanly_when_its_supervisor_goes_away(nursery) -> None:
    worker = await WorkerProcess.start(nursery, "orphan", start_timeout=EVENT_TIMEOUT)
    await worker._control.aclose()  # what the daemon dying looks like from the worker
    with trio.fail_after(EVENT_TIMEOUT):
        await worker.wait_gone()
    assert worker.process.returncode == 0


async def test_a_request_in_flight_when_the_worker_dies_fails_with_the_reason(nursery) -> None:
    worker = await WorkerProcess.start(nursery, "frozen", start_timeout=EVENT_TIMEOUT)
    os.kill(worker.pid, signal.SIGSTOP)  # it will never answer the status below
    outcome: list[BaseException] = []

    async def ask() -> None:
        try:
            await worker.request("status", timeout=EVENT_TIMEOUT)
        except MediaWorkerError as exc:
            outcome.append(exc)

    async with trio.open_nursery() as asking:
        asking.start_soon(ask)
        await trio.sleep(0.2)
        os.kill(worker.pid, signal.SIGKILL)
    assert len(outcome) == 1 and isinstance(outcome[0], MediaWorkerGone)
    assert "media engine crashed (signal 9, SIGKILL)" in str(outcome[0])
    assert worker.crashed


async def test_sigterm_from_outside_is_a_clean_but_unexpected_stop(nursery) -> None:
    worker = await WorkerProcess.start(nursery, "termed", start_timeout=EVENT_TIMEOUT)
    worker.process.send_signal(signal.SIGTERM)
    with trio.fail_after(EVENT_TIMEOUT):
        await worker.wait_gone()
    assert worker.process.returncode == 0
    assert worker.exit_reason == "media engine stopped unexpectedly" and not worker.crashed


async def test_a_worker_that_cannot_start_says_why(nursery, tmp_path) -> None:
    broken = tmp_path / "python"
    broken.write_text(f"#!/bin/sh\nexec {sys.executable} -c "
                      "\"import sys; sys.stderr.write('ImportError: no pjsua2 here\\\\n'); "
                      "sys.exit(3)\"\n")
    broken.chmod(0o755)
    with pytest.raises(MediaWorkerGone, match=r"did not start: media engine failed "
                                              r"\(exit status 3\) \(ImportError: no pjsua2"):
        await WorkerProcess.start(nursery, "broken", python=str(broken),
                                  start_timeout=EVENT_TIMEOUT)


def test_the_main_process_side_never_imports_pjsua2() -> None:
    code = ("import sys, sipd.media.supervisor, sipd.media.process, sipd.media.protocol; "
            "assert 'pjsua2' not in sys.modules, 'pjsua2 imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
