"""The call benchmark: call setup time sipd -> sipd against baresip -> baresip on the same
machine, and the CPU and memory each active call costs (both daemons and all their media
workers) at several numbers of concurrent calls. Writes the `call-bench` section of
docs/performance.md.

    python -m bench --only call            # about a minute and a half; writes the doc
    python -m bench --only call --quick    # a short try; leaves the doc alone
"""

from __future__ import annotations

import math
import random
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from sipctl.client import connect
from tests.daemon import SipdProcess
from tests.peers.baresip import Baresip

from .procs import cpu_seconds, machine_busy_seconds
from .report import machine, markdown_table, usable_cores

SECTION = "call-bench"
EVENT_TIMEOUT = 20.0  # seconds any one awaited event may take: a bound, not a measurement
CALLS_PER_WORKER = 4


@dataclass(frozen=True)
class Options:
    setups: int = 10  # sequential calls timed, per side
    loads: tuple[int, ...] = (4, 12, 24)  # concurrent calls
    window: float = 5.0  # seconds of CPU measurement per load
    settle: float = 1.0  # seconds after the last call is established before measuring


QUICK = Options(setups=3, loads=(4,), window=2.0, settle=0.5)


@dataclass
class Load:
    calls: int
    established: int
    cpu: float  # CPU seconds over the window: both daemons and all their workers
    wall: float
    rss_bytes: int  # both daemons and all their workers, after the window
    idle_rss_bytes: int  # the same before any call (daemons only: workers start on demand)
    workers: int
    other: float  # CPU seconds others on the machine used over the window
    note: str = ""

    @property
    def core_share(self) -> float:
        return self.cpu / self.wall if self.wall else math.nan

    @property
    def per_call_share(self) -> float:
        return self.core_share / self.established if self.established else math.nan

    @property
    def per_call_mb(self) -> float:
        if not self.established:
            return math.nan
        return (self.rss_bytes - self.idle_rss_bytes) / self.established / 2**20


@dataclass
class Results:
    sipd_setup: list[float] = field(default_factory=list)  # seconds
    baresip_setup: list[float] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _say(text: str) -> None:
    print(text, flush=True)


# --- process measurements ------------------------------------------------------------------------

def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rtp_range(size: int) -> str:
    """`size` consecutive ports below the ephemeral range that look free right now."""
    for _ in range(50):
        low = random.randrange(20000, 32000 - size, 2)
        if all(_free(port) for port in range(low, low + size, 7)):
            return f"{low}-{low + size - 1}"
    raise RuntimeError("no free RTP port range found")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def daemon_settings(workers: int) -> dict[str, Any]:
    return {"log.level": "warning", "rtp.media_address": "127.0.0.1",
            "rtp.port_range": rtp_range(64 * workers), "media.max_workers": workers,
            "rtp.audio_codecs": ["PCMU", "PCMA"]}


# --- sipd: two daemons, driven over RPC ----------------------------------------------------------

class Side:
    """One daemon's RPC connection and every event it sends."""

    def __init__(self, daemon: SipdProcess, rpc: Any) -> None:
        self.daemon = daemon
        self.rpc = rpc
        self.seen: list[dict[str, Any]] = []
        self._changed = trio.Event()

    async def collect(self) -> None:
        async for message in self.rpc.events:
            if message.get("method") == "event":
                self.seen.append(message["params"])
                self._changed.set()
                self._changed = trio.Event()

    async def wait(self, name: str, timeout: float = EVENT_TIMEOUT,
                   **match: Any) -> dict[str, Any] | None:
        """The first event `name` whose data matches (the whole event: time included)."""
        with trio.move_on_after(timeout):
            while True:
                for event in self.seen:
                    if event["name"] == name and all(event["data"].get(k) == v
                                                     for k, v in match.items()):
                        return event
                await self._changed.wait()
        return None

    async def pids(self) -> list[int]:
        state = await self.rpc.call("system.state", {})
        assert self.daemon.proc is not None
        return [self.daemon.proc.pid, *(w["pid"] for w in state["media"]["workers"])]


async def _start_call(a: Side, to: str) -> tuple[str, float]:
    sent = time.time()
    started = await a.rpc.call("sessions.start", {"account": "local", "to": to,
                                                  "streams": ["audio"]})
    return started["id"], sent


async def _end_calls(a: Side, ids: list[str]) -> None:
    for session in ids:
        try:
            await a.rpc.call("sessions.end", {"id": session})
        except Exception:  # already over
            pass
    for session in ids:
        await a.wait("session.state", id=session, state="ended", timeout=5)


async def sipd_runs(options: Options, base: Path, results: Results) -> None:
    workers = max(1, math.ceil(max(options.loads, default=4) / CALLS_PER_WORKER))
    daemons = [SipdProcess(base, daemon_settings(workers), name=name) for name in ("a", "b")]
    try:
        for daemon in daemons:
            daemon.start(wait=False)
        for daemon in daemons:
            daemon.wait_ready()
        async with connect(daemons[0].endpoint) as rpc_a, \
                connect(daemons[1].endpoint) as rpc_b, trio.open_nursery() as nursery:
            a, b = Side(daemons[0], rpc_a), Side(daemons[1], rpc_b)
            for side in (a, b):
                nursery.start_soon(side.collect)
                await side.rpc.call("events.subscribe", {"topics": ["sessions", "media"]})
            await b.rpc.call("accounts.add", {"aor": "sip:bob@127.0.0.1", "register": False,
                                              "auto_answer": True})
            port = (await b.rpc.call("system.state", {}))["sip"]["ports"]["udp"]
            to = f"sip:bob@127.0.0.1:{port}"
            idle_rss = sum(rss_bytes(pid) for pid in [*await a.pids(), *await b.pids()])

            # Warm-up call (unmeasured): the first starts a media worker on each side.
            _say("  sipd: warm-up call")
            session, _ = await _start_call(a, to)
            await a.wait("session.state", id=session, state="established")
            await _end_calls(a, [session])

            for number in range(1, options.setups + 1):
                session, sent = await _start_call(a, to)
                event = await a.wait("session.state", id=session, state="established")
                if event is None:
                    results.notes.append(f"sipd setup call {number} not established within "
                                         f"{EVENT_TIMEOUT:.0f} s")
                else:
                    results.sipd_setup.append(event["time"] - sent)
                await _end_calls(a, [session])
            _say(f"  sipd setup p50 {_ms(_p50(results.sipd_setup))} ms over "
                 f"{len(results.sipd_setup)} calls")

            for calls in options.loads:
                load = await _measure_load(a, b, to, calls, idle_rss, options)
                results.loads.append(load)
                _say(f"  {calls} calls: {load.established} established, {load.workers} "
                     f"processes, {load.core_share:.1%} of a core in all, "
                     f"{load.per_call_share:.2%} / call, {load.per_call_mb:.1f} MB / call"
                     + (f" ({load.note})" if load.note else ""))
            nursery.cancel_scope.cancel()
    finally:
        for daemon in daemons:
            daemon.stop()


async def _measure_load(a: Side, b: Side, to: str, calls: int, idle_rss: int,
                        options: Options) -> Load:
    ids: list[str] = []
    note = ""
    for _ in range(calls):  # started one after another, all kept up
        try:
            session, _ = await _start_call(a, to)
        except Exception as error:  # e.g. no worker can take another call
            note = f"sessions.start failed after {len(ids)} calls: {error}"
            break
        ids.append(session)
    established = 0
    for session in ids:
        if await a.wait("session.state", id=session, state="established") is not None:
            established += 1
    failed = [s for s in ids if any(e["name"] == "session.state" and e["data"].get("id") == s
                                    and e["data"].get("state") in ("failed", "ended")
                                    for e in a.seen)]
    if failed:
        note = (note + "; " if note else "") + f"{len(failed)} calls failed or ended early"
    await trio.sleep(options.settle)
    pids = [*await a.pids(), *await b.pids()]
    start = [cpu_seconds(pid) for pid in pids]
    busy_start = machine_busy_seconds()
    began = time.monotonic()
    await trio.sleep(options.window)
    wall = time.monotonic() - began
    cpu = sum(after - before for before, after in zip(start, (cpu_seconds(p) for p in pids))
              if not math.isnan(after - before))
    busy = machine_busy_seconds() - busy_start
    rss = sum(rss_bytes(pid) for pid in pids)
    load = Load(calls, established, cpu, wall, rss, idle_rss, len(pids),
                max(0.0, busy - cpu), note)
    await _end_calls(a, ids)
    await trio.sleep(0.5)
    return load


# --- baresip -> baresip ------------------------------------------------------------------------

def baresip_runs(options: Options, base: Path, results: Results) -> None:
    bob = Baresip(base, "sip:bob@127.0.0.1", register=False, answermode="auto", record=False)
    alice = Baresip(base, "sip:alice@127.0.0.1", register=False, record=False)
    with bob, alice:
        to = f"sip:bob@127.0.0.1:{bob.sip_port}"
        for number in range(0, options.setups + 1):  # call 0: warm-up, unmeasured
            began = time.monotonic()
            alice.dial(to)
            try:
                alice.wait_event("CALL_ESTABLISHED", timeout=EVENT_TIMEOUT)
            except TimeoutError:
                results.notes.append(f"baresip setup call {number} not established")
                continue
            elapsed = time.monotonic() - began
            if number:
                results.baresip_setup.append(elapsed)
            alice.hangup()
            for peer in (alice, bob):
                try:
                    peer.wait_event("CALL_CLOSED", timeout=5)
                except TimeoutError:
                    pass
    _say(f"  baresip setup p50 {_ms(_p50(results.baresip_setup))} ms over "
         f"{len(results.baresip_setup)} calls")


# --- the report ----------------------------------------------------------------------------------

def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:.1f}"


def setup_table(results: Results) -> str:
    s, r = results.sipd_setup, results.baresip_setup
    ratio = _p50(s) / _p50(r) if s and r else math.nan
    rows = [
        ["calls timed", str(len(s)), str(len(r)), ""],
        ["p50 (ms)", _ms(_p50(s)), _ms(_p50(r)), "n/a" if math.isnan(ratio) else f"{ratio:.2f}×"],
        ["min / max (ms)", f"{_ms(min(s, default=math.nan))} / {_ms(max(s, default=math.nan))}",
         f"{_ms(min(r, default=math.nan))} / {_ms(max(r, default=math.nan))}", ""],
    ]
    return markdown_table(["call setup, caller's INVITE to established", "sipd → sipd",
                           "baresip → baresip", "sipd vs baresip (target ≤ 1.5×)"], rows)


def load_table(results: Results) -> str:
    rows = []
    for load in results.loads:
        rows.append([str(load.calls), str(load.established), str(load.workers),
                     f"{load.core_share:.1%}", f"{load.per_call_share:.2%}",
                     f"{load.rss_bytes / 2**20:.0f}", f"{load.per_call_mb:.1f}",
                     f"{load.other / load.wall:.0%}" if load.wall else "n/a",
                     load.note or ""])
    return markdown_table(["concurrent calls", "established", "processes (2 daemons + workers)",
                           "CPU, all (of a core)", "CPU per call (target ≤ 1 %)",
                           "RSS, all (MB)", "RSS per call (MB)", "others on the machine",
                           "note"], rows)


def section(results: Results, options: Options) -> str:
    lines = [
        "## Audio calls: setup time, CPU and memory per call (`make bench`)",
        "",
        f"Measured {machine()}. The call benchmark took {results.seconds:.0f} s.",
        "",
        "Run it alone with `python -m bench --only call` (`--quick` to try it).",
        "",
        "### Call setup",
        "",
        setup_table(results),
        "",
        f"{options.setups} sequential calls each, after one unmeasured warm-up call, all on "
        "127.0.0.1 (UDP, PCMU). **sipd**: daemon A calls `sip:bob@127.0.0.1:<B's port>`, an "
        "account of daemon B with `auto_answer` and no registration; time runs from just "
        "before A's `sessions.start` RPC to the `time` of A's `session.state` `established` "
        "event (the daemon's clock, same machine), so it includes the RPC call, the media "
        "worker setting up the leg on each side (B2BUA to pjsua2) and B's answer. "
        "**baresip**: two baresip instances (ctrl_tcp, the callee with `answermode=auto`); "
        "time runs from sending `dial` over ctrl_tcp to receiving the caller's "
        "`CALL_ESTABLISHED` event. Each call is hung up before the next.",
        "",
        "### CPU and memory per active call",
        "",
        load_table(results),
        "",
        f"Daemon A starts N calls to B (auto-answered) and keeps them up; {options.settle:g} s "
        f"after the last is established, CPU time (user + system, /proc/<pid>/stat) of both "
        f"daemons and all their media workers is summed over {options.window:g} s and divided "
        "by the wall time (100 % = one core) and by the established calls: each call counts "
        "both its legs (caller and callee side, one in each daemon). The calls carry no "
        "played audio: what the media engines send on their own (RTP of silence or nothing, "
        "as configured). RSS is summed over the same processes after the window; per call is "
        "that minus the two idle daemons' RSS before any call, over the calls (it includes "
        "the media workers' own start-up memory, one per "
        f"{CALLS_PER_WORKER} calls per daemon). Usable cores: {usable_cores()}.",
    ]
    if results.notes:
        lines += ["", "Notes: " + "; ".join(results.notes) + "."]
    return "\n".join(lines)


def run(options: Options, write: bool) -> str:
    started = time.monotonic()
    results = Results()
    with tempfile.TemporaryDirectory(prefix="sipd-call-bench-") as tmp:
        base = Path(tmp)
        _say("call setup: baresip -> baresip ...")
        try:
            baresip_runs(options, base, results)
        except Exception as error:
            results.notes.append(f"baresip baseline failed: {error!s:.200}")
            _say(f"  baresip failed: {error}")
        _say("sipd -> sipd: setup, then concurrent calls ...")
        trio.run(sipd_runs, options, base, results)
    results.seconds = time.monotonic() - started
    text = section(results, options)
    print()
    print(text)
    if write:
        from .report import write_section
        print(f"\nwrote the {SECTION} section of {write_section(SECTION, text)}")
    return text


if __name__ == "__main__":
    run(QUICK, write=False)
