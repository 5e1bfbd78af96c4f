"""Event fan-out: how long an event takes from its publication to each of many subscribers.

sipd: `clients` connections subscribe to topic `settings`; one more connection calls
`settings.set` of media.max_workers (alternating values, so each call is a change and
publishes one settings.changed event), with a small pause between calls. Each event carries
`time`, the daemon's time.time() at publication; a subscriber's latency is its time.time() on
receipt minus that (one machine, one clock).

Baseline: the echo server's /trigger connection sends a frame of the same shape and size; the
server stamps params.time and sends it to every /listen connection.

The subscribers keep the raw frames and their receive times and parse them afterwards, so
what is measured is the server and the stack, plus the (identical) cost of many clients in one
client process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import trio

from .procs import CpuMeter, Target
from .stats import Latency
from .wsclient import open_lean_websocket

CONNECT_TIMEOUT = 15.0
SETTLE_TIMEOUT = 5.0  # after the last trigger: how long the last deliveries may take
TRIGGER_TIMEOUT = 5.0  # one settings.set (or echo trigger) round trip
SETTING = "media.max_workers"


@dataclass(frozen=True)
class FanOut:
    target: str
    clients: int
    events: int  # measured events (after the warm-up ones)
    server_cpu: float  # CPU seconds the server used while the measured events went out
    other_cpu: float  # the same for every process on the machine but the server and the client
    seconds: float  # how long the measured events took to go out, pauses included
    frame_bytes: int
    latencies: tuple[float, ...] = field(repr=False, default=())  # seconds, one per delivery
    triggers: tuple[float, ...] = field(repr=False, default=())  # seconds, trigger round trips

    @cached_property
    def trigger_latency(self) -> Latency:
        return Latency.of(self.triggers)

    @property
    def deliveries(self) -> int:
        """Measured deliveries received (clients x events when none was lost)."""
        return len(self.latencies)

    @cached_property
    def latency(self) -> Latency:
        return Latency.of(self.latencies)

    @property
    def other_share(self) -> float:
        return self.other_cpu / self.seconds if self.seconds else float("nan")

    @property
    def lost(self) -> int:
        return self.clients * self.events - self.deliveries

    @property
    def cpu_per_event_ms(self) -> float:
        return self.server_cpu / self.events * 1e3 if self.events else float("nan")


Trigger = Callable[[Any, int], Awaitable[None]]
Prepare = Callable[[Any], Awaitable[None]]


async def sipd_subscribe(ws: Any) -> None:
    await ws.send_message(json.dumps({"jsonrpc": "2.0", "method": "events.subscribe",
                                      "params": {"topics": ["settings"]}, "id": "sub"}))
    for _ in range(1000):  # skip anything before the reply (nothing is expected)
        reply = json.loads(await ws.get_message())
        if reply.get("id") == "sub":
            if "error" in reply:
                raise RuntimeError(f"events.subscribe failed: {reply['error']}")
            return
    raise RuntimeError("no reply to events.subscribe")


async def sipd_trigger(ws: Any, index: int) -> None:
    await ws.send_message(json.dumps({"jsonrpc": "2.0", "method": "settings.set", "id": index,
                                      "params": {"key": SETTING, "value": 3 + index % 2}}))
    reply = json.loads(await ws.get_message())
    if "error" in reply:
        raise RuntimeError(f"settings.set failed: {reply['error']}")


def echo_trigger(template: str) -> Trigger:
    """Send sipd's own event frame (renumbered) to the echo server's /trigger; await its ok."""
    message = json.loads(template)

    async def trigger(ws: Any, index: int) -> None:
        message["params"]["seq"] = index
        await ws.send_message(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
        await ws.get_message()

    return trigger


async def measure(target: Target, *, listen_path: str, trigger_path: str, prepare: Prepare | None,
                  trigger: Trigger, clients: int, events: int, warmup_events: int,
                  pause: float, connect: Any = open_lean_websocket) -> tuple[FanOut, str]:
    """Returns the result and one delivered frame (the baseline copies its shape and size)."""
    total = warmup_events + events
    received: list[list[tuple[float, str]]] = [[] for _ in range(clients)]
    triggers: list[float] = []
    ready = 0
    all_ready = trio.Event()
    finished = 0
    all_finished = trio.Event()

    async def subscriber(index: int) -> None:
        nonlocal ready, finished
        frames = received[index]
        async with connect(target.path(listen_path), target.headers) as ws:
            if prepare is not None:
                await prepare(ws)
            ready += 1
            if ready == clients:
                all_ready.set()
            clock = time.time
            for _ in range(total):
                frame = await ws.get_message()
                frames.append((clock(), frame))
            finished += 1
            if finished == clients:
                all_finished.set()
            await trio.sleep_forever()  # stay connected until every subscriber is done

    meter = CpuMeter(target.pid)
    started = ended = 0.0
    with trio.fail_after(CONNECT_TIMEOUT + total * (pause + TRIGGER_TIMEOUT) + SETTLE_TIMEOUT):
        async with trio.open_nursery() as nursery:
            for index in range(clients):
                nursery.start_soon(subscriber, index)
            with trio.fail_after(CONNECT_TIMEOUT):
                await all_ready.wait()
            async with connect(target.path(trigger_path), target.headers) as ws:
                for index in range(total):
                    if index == warmup_events:
                        await trio.sleep(0.2)  # let the warm-up deliveries drain
                        meter.start()
                        started = time.perf_counter()
                    sent = time.perf_counter()
                    with trio.fail_after(TRIGGER_TIMEOUT):
                        await trigger(ws, index)
                    if index >= warmup_events:
                        triggers.append(time.perf_counter() - sent)
                    await trio.sleep(pause)
                with trio.move_on_after(SETTLE_TIMEOUT):
                    await all_finished.wait()
                cpu = meter.stop()
                ended = time.perf_counter()
            nursery.cancel_scope.cancel()

    latencies: list[float] = []
    sample = ""
    for frames in received:
        delivered = [(received_at, frame, message) for received_at, frame in frames
                     if (message := json.loads(frame)).get("method") == "event"]
        for received_at, frame, message in delivered[warmup_events:]:
            latencies.append(received_at - message["params"]["time"])
            sample = frame
    result = FanOut(target.name, clients, events, cpu.server, cpu.other, ended - started,
                    len(sample.encode()),
                    tuple(latencies), tuple(triggers))
    return result, sample


def combine(results: list[FanOut]) -> FanOut:
    """Several rounds of the same measurement as one."""
    first = results[0]
    return FanOut(first.target, first.clients, sum(r.events for r in results),
                  sum(r.server_cpu for r in results), sum(r.other_cpu for r in results),
                  sum(r.seconds for r in results), first.frame_bytes,
                  tuple(v for r in results for v in r.latencies),
                  tuple(v for r in results for v in r.triggers))
