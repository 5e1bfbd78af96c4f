"""Fixtures that run real media worker processes (pjsua2) on 127.0.0.1; no mocks."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from sipd.media.process import WorkerProcess

# Generous bounds, never assertions on speed: the machines are shared and noisy.
EVENT_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def configure_fields(**overrides: Any) -> dict[str, Any]:
    """Worker settings for tests: everything on loopback, ports picked by the OS."""
    fields: dict[str, Any] = {"media_address": "127.0.0.1", "rtp_port_start": 0,
                              "rtp_port_count": 0, "codecs": ["PCMU", "PCMA"],
                              "srtp": "optional", "ice": False, "stun_servers": [],
                              "turn": None, "auto_answer": True}
    fields.update(overrides)
    return fields


class EventLog:
    """Collects a worker's events; tests wait for the first one that matches."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = trio.Event()

    def __call__(self, worker: Any, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    def mark(self) -> int:
        """A position: `wait_for(..., since=mark)` looks only at later events."""
        return len(self.events)

    def matching(self, since: int = 0, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in self.events[since:]
                if all(e.get(key) == value for key, value in fields.items())]

    async def wait_for(self, since: int = 0, timeout: float = EVENT_TIMEOUT,
                       **fields: Any) -> dict[str, Any]:
        with trio.move_on_after(timeout):
            while True:
                found = self.matching(since, **fields)
                if found:
                    return found[0]
                await self._changed.wait()
        raise AssertionError(f"no event {fields} within {timeout} s; got {self.events[since:]}")


class Worker:
    """A started, configured worker and its events."""

    def __init__(self, process: WorkerProcess, events: EventLog) -> None:
        self.process = process
        self.events = events

    async def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return await self.process.request(cmd, timeout=EVENT_TIMEOUT, **fields)

    @property
    def uri(self) -> str:
        return self.process.uri


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(nursery: trio.Nursery) -> Any:
    """start_worker(name, **configure overrides) -> Worker; all are stopped afterwards."""
    started: list[WorkerProcess] = []

    async def start(name: str, configure: bool = True, **overrides: Any) -> Worker:
        events = EventLog()
        process = await WorkerProcess.start(nursery, name, on_event=events,
                                            start_timeout=EVENT_TIMEOUT)
        started.append(process)
        if configure:
            await process.request("configure", timeout=EVENT_TIMEOUT,
                                  **configure_fields(**overrides))
        return Worker(process, events)

    try:
        yield start
    finally:
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as stopping:
                for process in started:
                    stopping.start_soon(process.stop, STOP_TIMEOUT)


async def connect(caller: Worker, callee: Worker, session: str = "s1") -> tuple[int, int]:
    """A confirmed call from caller to callee with live media; (caller call, callee call)."""
    reply = await caller.request("call", uri=callee.uri, session=session)
    call = reply["call"]
    await caller.events.wait_for(event="call.state", call=call, state="confirmed")
    incoming = await callee.events.wait_for(event="call.incoming", session=session)
    await callee.events.wait_for(event="call.state", call=incoming["call"], state="confirmed")
    await caller.events.wait_for(event="call.media", call=call, active=True)
    await callee.events.wait_for(event="call.media", call=incoming["call"], active=True)
    return call, incoming["call"]


def db(power: float) -> float:
    return 10 * math.log10(power) if power > 0 else -math.inf
