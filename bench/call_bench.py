"""The call benchmark: call setup time sipd -> sipd against baresip -> baresip on the same
machine (to established, and to media flowing: bench/rtp_watch.py), and the CPU and memory each
active call costs with audio playing at both ends (both daemons and all their media workers;
baresip's two processes as the baseline) at several numbers of concurrent calls. This module
drives sipd; bench/call_baresip.py the baseline; bench/call_report.py writes the
`call-bench` section of docs/performance.md.

    python -m bench --only call            # about two minutes; writes the doc
    python -m bench --only call --quick    # a short try; leaves the doc alone
    python -m bench.call_bench --calls 4,48 --setups 3   # other numbers of calls; no doc
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess
from tests.media.audio import write_tone
from tests.peers.baresip import write_tone_wav
from tests.peers.ports import rtp_port_range

from . import call_baresip
from .call_report import (
    CALLS_PER_WORKER,
    QUICK,
    SOUND_PACKETS,
    Load,
    Options,
    Results,
    flow_text,
    loadavg,
    ms,
    p50,
    section,
    timed_setup,
)
from .procs import (
    cpu_seconds,
    machine_busy_seconds,
    process_tree,
    pss_bytes,
    rss_bytes,
    thread_cpu_seconds,
)
from .rtp_watch import RtpWatch, port_range

SECTION = "call-bench"
EVENT_TIMEOUT = 20.0  # seconds any one awaited event may take: a bound, not a measurement
RTP_WAIT = 2.0  # seconds a setup call's first RTP may take: a bound, not a measurement
__all__ = ["Options", "QUICK", "run"]


def _say(text: str) -> None:
    print(text, flush=True)


def daemon_settings(workers: int, srtp: str = "disabled", calls: int = 0) -> dict[str, Any]:
    """Plain RTP by default, as the baresip baseline sends: two sipd would otherwise agree on
    SDES-SRTP (`rtp.srtp` is "optional" out of the box) and pay for encryption baresip skips.

    What a user who wants `calls` calls at once sets (docs/performance.md): a media worker per
    4 calls (`media.max_workers`), 8 RTP ports each at least (`rtp.port_range`: RTP and RTCP
    per call; 32 here, room for pjsua moving on to the next port), and the caps on incoming
    calls (`sessions.max_incoming`, `sessions.max_incoming_per_account`) at `calls`."""
    settings: dict[str, Any] = {
        "log.level": "warning", "rtp.media_address": "127.0.0.1",
        "rtp.port_range": rtp_port_range(max(64, 32 * workers)), "media.max_workers": workers,
        "rtp.audio_codecs": ["PCMU", "PCMA"], "rtp.srtp": srtp}
    if calls > 30:  # the defaults: 100 in all, 30 per account
        settings["sessions.max_incoming"] = max(100, calls)
        settings["sessions.max_incoming_per_account"] = calls
    return settings


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
        """The daemon, then its media workers, then any other process under it (the
        workers' zygote)."""
        state = await self.rpc.call("system.state", {})
        assert self.daemon.proc is not None
        workers = [w["pid"] for w in state["media"]["workers"]]
        others = [pid for pid in process_tree(self.daemon.proc.pid)
                  if pid != self.daemon.proc.pid and pid not in workers]
        return [self.daemon.proc.pid, *workers, *others]

    async def worker_pids(self) -> set[int]:
        state = await self.rpc.call("system.state", {})
        return {w["pid"] for w in state["media"]["workers"]}


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


async def sipd_runs(options: Options, base: Path, tone: Path, results: Results) -> None:
    most = max(options.loads, default=4)
    workers = max(1, math.ceil(most / CALLS_PER_WORKER))
    settings = [daemon_settings(workers, calls=most) for _ in ("a", "b")]
    daemons = [SipdProcess(base, s, name=name)
               for s, name in zip(settings, ("a", "b"), strict=True)]
    ranges = {"caller": port_range(settings[0]["rtp.port_range"]),
              "callee": port_range(settings[1]["rtp.port_range"])}
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
            daemon_pids = [*await a.pids(), *await b.pids()]
            idle = (sum(rss_bytes(pid) for pid in daemon_pids),
                    sum(pss_bytes(pid) for pid in daemon_pids))

            # Warm-up call (unmeasured): the first starts a media worker on each side.
            _say("  sipd: warm-up call")
            session, _ = await _start_call(a, to)
            await a.wait("session.state", id=session, state="established")
            await _end_calls(a, [session])

            with RtpWatch(ranges) as rtp:
                for number in range(1, options.setups + 1):
                    await _timed_call(a, to, rtp, number, results)
            if rtp.error:
                results.notes.append(f"media flowing not measured: {rtp.error}")
                results.silent.clear()
            setups = results.sipd_setup
            _say(f"  sipd setup p50: established {ms(p50([s.established for s in setups]))} "
                 f"ms, media flowing {ms(p50([s.media for s in setups if s.media is not None]))}"
                 f" ms over {len(setups)} calls")

            for calls in options.loads:
                load = await _measure_load(a, b, to, calls, idle, tone, ranges, options)
                results.loads.append(load)
                _say(f"  sipd {calls} calls: {load.established} established, {load.playing} "
                     f"legs playing, {load.processes} processes, {load.core_share:.1%} of a "
                     f"core in all, {load.per_call_share:.2%} / call "
                     f"({load.cpu_workers / load.cpu if load.cpu else math.nan:.0%} in "
                     f"workers), {load.per_call_mb:.1f} MB / call, load avg "
                     f"{load.loadavg:.2f}; RTP/s per call at caller / callee (ports): "
                     f"{flow_text(load)}" + (f" ({load.note})" if load.note else ""))
            nursery.cancel_scope.cancel()
    finally:
        for daemon in daemons:
            daemon.stop()


async def _timed_call(a: Side, to: str, rtp: RtpWatch, number: int, results: Results) -> None:
    await trio.sleep(0.2)  # the last call's stray packets are older than this call's start
    session, sent = await _start_call(a, to)
    event = await a.wait("session.state", id=session, state="established")
    if event is None:
        results.notes.append(f"sipd setup call {number} not established within "
                             f"{EVENT_TIMEOUT:.0f} s")
    else:
        with trio.move_on_after(0 if rtp.error else RTP_WAIT):
            while not rtp.started(sent):
                await trio.sleep(0.005)  # the times are the kernel's: polling adds nothing
        setup = timed_setup(event["time"] - sent, sent, rtp.firsts(sent))
        results.sipd_setup.append(setup)
        silent = [side for side, first in (("caller", setup.caller_rtp),
                                           ("callee", setup.callee_rtp)) if first is None]
        if silent:
            results.silent.append((number, silent))
    await _end_calls(a, [session])


async def _play_all(side: Side, ids: list[str], tone: Path) -> tuple[int, str]:
    played, error = 0, ""
    for session in ids:
        try:
            await side.rpc.call("sessions.play", {"id": session, "path": str(tone),
                                                  "loop": True})
            played += 1
        except Exception as failure:
            error = f"sessions.play failed: {failure!s:.120}"
    return played, error


async def _measure_load(a: Side, b: Side, to: str, calls: int, idle: tuple[int, int],
                        tone: Path, ranges: dict[str, range], options: Options) -> Load:
    """`idle`: the RSS and PSS of the two daemons before any call."""
    ids: list[str] = []
    notes = []
    for _ in range(calls):  # started one after another, all kept up
        try:
            session, _ = await _start_call(a, to)
        except Exception as error:  # e.g. no worker can take another call
            notes.append(f"sessions.start failed after {len(ids)} calls: {error}")
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
        notes.append(f"{len(failed)} calls failed or ended early")
    listed = (await b.rpc.call("sessions.list", {}))["sessions"]
    b_ids = [s["id"] for s in listed if s.get("state") == "established"]
    playing = 0
    for side, legs in ((a, ids), (b, b_ids)):
        played, play_error = await _play_all(side, legs, tone)
        playing += played
        if play_error:
            notes.append(play_error)
    await trio.sleep(options.settle)
    pids = [*await a.pids(), *await b.pids()]
    workers = await a.worker_pids() | await b.worker_pids()
    start = {pid: cpu_seconds(pid) for pid in pids}
    thread_start = {pid: thread_cpu_seconds(pid) for pid in workers}
    busy_start = machine_busy_seconds()
    began = time.monotonic()
    await trio.sleep(options.window)
    wall = time.monotonic() - began
    used = {pid: cpu_seconds(pid) - start[pid] for pid in pids}
    used = {pid: value for pid, value in used.items() if not math.isnan(value)}
    cpu = sum(used.values())
    busy = machine_busy_seconds() - busy_start
    threads: dict[str, float] = {}
    for pid in workers:  # pjsua's threads by name: where a worker's CPU goes
        for (tid, name), seconds in thread_cpu_seconds(pid).items():
            threads[name] = threads.get(name, 0.0) + seconds - thread_start[pid].get((tid, name),
                                                                                    0.0)
    rss = sum(rss_bytes(pid) for pid in pids)
    pss = sum(pss_bytes(pid) for pid in pids)
    flow, sounding, drops = await _audio_flow(ranges, established)
    load = Load(calls, established, playing, cpu,
                sum(v for pid, v in used.items() if pid in workers), wall, rss, idle[0],
                len(pids), max(0.0, busy - cpu), loadavg()[0], "; ".join(notes), threads, flow,
                pss_bytes=pss, idle_pss_bytes=idle[1], sounding=sounding, rtp_drops=drops)
    await _end_calls(a, ids)
    await trio.sleep(0.5)
    return load


FLOW_CHECK = 1.0  # seconds of watching RTP after the CPU window
TONE_RATE = 8000  # Hz: as baresip's tone (PCMU carries 8 kHz; nothing to resample)


async def _audio_flow(ranges: dict[str, range], calls: int
                      ) -> tuple[dict[str, tuple[float, int]], dict[str, int], int]:
    """Watched after the CPU window: per side, RTP packets per second per call received and
    at how many ports (20 ms PCMU: 50 a second per call when every leg sends); per side, how
    many ports received sound; how many packets the watch missed."""
    with RtpWatch(ranges) as rtp:
        began = time.monotonic()
        await trio.sleep(0 if rtp.error else FLOW_CHECK)
        seconds = time.monotonic() - began
        drops = rtp.dropped()
    if rtp.error:
        return {}, {}, 0
    return ({side: (rtp.by_side[side] / seconds / max(calls, 1), len(rtp.ports[side]))
             for side in ranges},
            {side: rtp.sounding_ports(side, SOUND_PACKETS) for side in ranges}, drops)


def run(options: Options, write: bool) -> str:
    started = time.monotonic()
    results = Results(loadavg_start=loadavg())
    with tempfile.TemporaryDirectory(prefix="sipd-call-bench-") as tmp:
        base = Path(tmp)
        # The audio every call plays, written once: sipd loops a 2 s tone (pjsua's player
        # takes 16-bit mono PCM); baresip's aufile ends the call at the end of its file.
        sipd_tone = write_tone(base / "sipd-tone.wav", 440.0, seconds=2.0, rate=TONE_RATE)
        baresip_tone = write_tone_wav(base / "baresip-tone.wav", seconds=120.0)
        _say(f"load average {results.loadavg_start[0]:.2f}; call setup: baresip -> baresip ...")
        try:
            call_baresip.setup_runs(options, base, baresip_tone, results)
        except Exception as error:
            results.notes.append(f"baresip setup baseline failed: {error!s:.200}")
            _say(f"  baresip failed: {error}")
        _say("sipd -> sipd: setup, then concurrent calls playing audio ...")
        trio.run(sipd_runs, options, base, sipd_tone, results)
        _say("baresip -> baresip: concurrent calls with audio ...")
        try:
            call_baresip.load_runs(options, base, baresip_tone, results)
        except Exception as error:
            results.notes.append(f"baresip load baseline failed: {error!s:.200}")
            _say(f"  baresip failed: {error}")
    results.loadavg_end = loadavg()
    results.seconds = time.monotonic() - started
    text = section(results, options)
    print()
    print(text)
    if write:
        from .report import write_section
        print(f"\nwrote the {SECTION} section of {write_section(SECTION, text)}")
    return text


def main(argv: list[str] | None = None) -> None:
    import argparse
    import dataclasses
    parser = argparse.ArgumentParser(prog="python -m bench.call_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default=",".join(map(str, Options().loads)),
                        help="numbers of concurrent calls measured, comma-separated "
                             "(default %(default)s)")
    parser.add_argument("--setups", type=int, default=Options().setups,
                        help="sequential calls timed per side (default %(default)s)")
    parser.add_argument("--write", action="store_true",
                        help="write the call-bench section of docs/performance.md")
    args = parser.parse_args(argv)
    loads = tuple(int(n) for n in args.calls.split(",") if n.strip())
    if not loads or min(loads) < 1:
        parser.error("--calls: positive numbers, e.g. 4,12,24,250")
    run(dataclasses.replace(Options(), loads=loads, setups=args.setups), write=args.write)


if __name__ == "__main__":
    main()
