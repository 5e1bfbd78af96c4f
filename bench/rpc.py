"""Round trips: one request, wait for its reply, the next request; over 1 or N connections.

The same client code measures sipd (`system.version`) and the echo server (a frame of the
size of sipd's reply, echoed back), so the ratio is what sipd's JSON-RPC layer costs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import trio

from .procs import CpuMeter, Target
from .stats import Latency
from .wsclient import open_lean_websocket

REQUEST = json.dumps({"jsonrpc": "2.0", "method": "system.version", "id": 1},
                     separators=(",", ":"))
MAX_REQUESTS_PER_CONNECTION = 2_000_000  # a bound; the duration ends the loop long before
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class RoundTrips:
    target: str
    connections: int
    requests: int
    seconds: float
    server_cpu: float  # CPU seconds the server process used while measured
    client_cpu: float  # the same for this (the client) process
    other_cpu: float  # the same for every other process on the machine
    latencies: tuple[float, ...] = field(repr=False, default=())  # seconds, one per request

    @cached_property
    def latency(self) -> Latency:
        return Latency.of(self.latencies)

    @property
    def cpu_share(self) -> float:
        """How busy the server was: 1.0 is one core all the time."""
        return self.server_cpu / self.seconds

    @property
    def client_share(self) -> float:
        return self.client_cpu / self.seconds

    @property
    def other_share(self) -> float:
        return self.other_cpu / self.seconds

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request_us(self) -> float:
        return self.server_cpu / self.requests * 1e6 if self.requests else float("nan")


def padded_frame(size: int) -> str:
    """A JSON-RPC request of exactly `size` bytes (at least the size of REQUEST plus padding)."""
    empty = json.dumps({"jsonrpc": "2.0", "method": "system.version", "params": {"pad": ""},
                        "id": 1}, separators=(",", ":"))
    if size < len(empty):
        return REQUEST
    return empty.replace('"pad":""', '"pad":"' + "x" * (size - len(empty)) + '"')


async def probe(target: Target, frame: str, connect: Any = open_lean_websocket) -> str:
    """Send one frame and return the reply (to check it and to size the baseline's frame)."""
    with trio.fail_after(CONNECT_TIMEOUT):
        async with connect(target.url, target.headers) as ws:
            await ws.send_message(frame)
            return await ws.get_message()


async def measure(target: Target, frame: str, connections: int, duration: float,
                  warmup: float, connect: Any = open_lean_websocket) -> RoundTrips:
    """`connections` clients, each sending `frame` and awaiting the reply, sequentially, for
    `warmup` then `duration` seconds; only the requests that complete in the measured window
    count."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    connected = 0
    all_connected = trio.Event()
    go = trio.Event()
    window: list[float] = []  # [start, end] in perf_counter time, set when all are connected

    async def client(index: int) -> None:
        nonlocal connected
        async with connect(target.url, target.headers) as ws:
            connected += 1
            if connected == connections:
                all_connected.set()
            await go.wait()
            await _loop(ws, frame, window[0], window[1], latencies[index])

    with trio.fail_after(CONNECT_TIMEOUT + warmup + duration + 30):
        async with trio.open_nursery() as nursery:
            for index in range(connections):
                nursery.start_soon(client, index)
            with trio.fail_after(CONNECT_TIMEOUT):
                await all_connected.wait()
            now = time.perf_counter()
            window[:] = [now + warmup, now + warmup + duration]
            go.set()
            await trio.sleep_until(trio.current_time() + warmup)
            meter = CpuMeter(target.pid)
            meter.start()
            await trio.sleep_until(trio.current_time() + duration)
            cpu = meter.stop()
    flat = [value for values in latencies for value in values]
    return RoundTrips(target.name, connections, len(flat), duration, cpu.server, cpu.client,
                      cpu.other, tuple(flat))


def combine(results: list[RoundTrips]) -> RoundTrips:
    """Several rounds of the same measurement as one."""
    first = results[0]
    return RoundTrips(first.target, first.connections, sum(r.requests for r in results),
                      sum(r.seconds for r in results), sum(r.server_cpu for r in results),
                      sum(r.client_cpu for r in results), sum(r.other_cpu for r in results),
                      tuple(v for r in results for v in r.latencies))


async def _loop(ws: Any, frame: str, start: float, end: float,
                latencies: list[float]) -> None:
    clock = time.perf_counter
    for _ in range(MAX_REQUESTS_PER_CONNECTION):
        sent = clock()
        if sent >= end:
            return
        await ws.send_message(frame)
        reply = await ws.get_message()
        done = clock()
        json.loads(reply)  # what every client does with a reply; the same for both servers
        if sent >= start and done <= end:
            latencies.append(done - sent)
