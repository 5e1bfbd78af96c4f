"""The call benchmark's baseline: baresip calling baresip on 127.0.0.1, with audio.

Each baresip sends a tone WAV through `aufile` (the same file for every call, written once per
run) and decodes what it receives (no audio player is loaded: decoding happens as RTP arrives).
tests/peers/baresip.py drives it; `BenchBaresip` only lifts its limits for many calls at once.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from tests.peers.baresip import Baresip
from tests.peers.ports import free_port_block

from .call_report import (
    SOUND_PACKETS,
    Load,
    Options,
    Results,
    loadavg,
    ms,
    p50,
    timed_setup,
)
from .procs import cpu_seconds, machine_busy_seconds, process_tree, pss_bytes, rss_bytes
from .rtp_watch import RtpWatch

EVENT_TIMEOUT = 20.0  # a bound, not a measurement
FLOW_CHECK = 1.0  # seconds of watching RTP after the CPU window


def _say(text: str) -> None:
    print(text, flush=True)


class BenchBaresip(Baresip):
    """A baresip allowed `max_calls` calls at once, with RTP ports for all of them."""

    def __init__(self, base: Path, account: str, max_calls: int, **kwargs: object) -> None:
        super().__init__(base, account, **kwargs)  # type: ignore[arg-type]
        self.max_calls = max_calls
        # RTP and RTCP (no rtcp-mux) per call; baresip picks ports at random in its range
        ports = max(10, 4 * max_calls + 10)
        self.rtp_port_min = free_port_block(ports, tcp=False)
        self.rtp_port_max = self.rtp_port_min + ports - 1

    def _write_config(self) -> None:
        super()._write_config()
        config = self.config_dir / "config"
        text = config.read_text()
        assert "call_max_calls 4\n" in text, "tests/peers/baresip.py's config changed"
        config.write_text(text.replace("call_max_calls 4\n", f"call_max_calls {self.max_calls}\n"))

    def rtp_ports(self) -> range:
        return range(self.rtp_port_min, self.rtp_port_max + 1)


def _pair(base: Path, tone: Path, max_calls: int) -> tuple[BenchBaresip, BenchBaresip]:
    bob = BenchBaresip(base, "sip:bob@127.0.0.1", max_calls, register=False, answermode="auto",
                       record=False, audio_source=tone)
    alice = BenchBaresip(base, "sip:alice@127.0.0.1", max_calls, register=False, record=False,
                         audio_source=tone)
    return alice, bob


def _wait_closed(*peers: Baresip) -> None:
    for peer in peers:
        try:
            peer.wait_event("CALL_CLOSED", timeout=5)
        except TimeoutError:
            pass


def setup_runs(options: Options, base: Path, tone: Path, results: Results) -> None:
    alice, bob = _pair(base, tone, 4)
    with bob, alice, RtpWatch({"caller": alice.rtp_ports(), "callee": bob.rtp_ports()}) as rtp:
        to = f"sip:bob@127.0.0.1:{bob.sip_port}"
        for number in range(0, options.setups + 1):  # call 0: warm-up, unmeasured
            time.sleep(0.2)  # the last call's stray packets are older than this call's start
            began = time.time()
            alice.dial(to)
            try:
                alice.wait_event("CALL_ESTABLISHED", timeout=EVENT_TIMEOUT)
            except TimeoutError:
                results.notes.append(f"baresip setup call {number} not established")
                continue
            established = time.time() - began
            firsts = rtp.wait_firsts(began, timeout=5)
            if number:
                results.baresip_setup.append(timed_setup(established, began, firsts))
            alice.hangup()
            _wait_closed(alice, bob)
    setups = results.baresip_setup
    _say(f"  baresip setup p50: established {ms(p50([s.established for s in setups]))} ms, "
         f"media flowing {ms(p50([s.media for s in setups if s.media is not None]))} ms "
         f"over {len(setups)} calls")


def load_runs(options: Options, base: Path, tone: Path, results: Results) -> None:
    for calls in options.loads:
        load = _measure(options, base, tone, calls)
        results.baresip_loads.append(load)
        _say(f"  baresip {calls} calls: {load.established} established, "
             f"{load.core_share:.1%} of a core in all, {load.per_call_share:.2%} / call, "
             f"{load.per_call_mb:.1f} MB / call" + (f" ({load.note})" if load.note else ""))


def _measure(options: Options, base: Path, tone: Path, calls: int) -> Load:
    alice, bob = _pair(base, tone, calls + 2)
    note = ""
    with bob, alice:
        # baresip runs under `timeout` (tests/peers/proc.py): measure the whole tree
        pids = [pid for peer in (alice, bob)
                for pid in process_tree(peer.process.pid)]  # type: ignore[union-attr]
        idle_rss = sum(rss_bytes(pid) for pid in pids)
        idle_pss = sum(pss_bytes(pid) for pid in pids)
        to = f"sip:bob@127.0.0.1:{bob.sip_port}"
        for _ in range(calls):
            alice.dial(to)
        established = 0
        for _ in range(calls):
            try:
                alice.wait_event("CALL_ESTABLISHED", timeout=EVENT_TIMEOUT)
                established += 1
            except TimeoutError:
                note = f"baresip: {calls - established} calls not established"
                break
        time.sleep(options.settle)
        start = [cpu_seconds(pid) for pid in pids]
        busy_start = machine_busy_seconds()
        began = time.monotonic()
        time.sleep(options.window)
        wall = time.monotonic() - began
        cpu = sum(b - a for a, b in zip(start, (cpu_seconds(p) for p in pids), strict=True)
                  if not math.isnan(b - a))
        busy = machine_busy_seconds() - busy_start
        rss = sum(rss_bytes(pid) for pid in pids)
        pss = sum(pss_bytes(pid) for pid in pids)
        with RtpWatch({"caller": alice.rtp_ports(), "callee": bob.rtp_ports()}) as rtp:
            watched = time.monotonic()
            time.sleep(0 if rtp.error else FLOW_CHECK)
            watched = time.monotonic() - watched
            drops = rtp.dropped()
        flow = {} if rtp.error else {
            side: (rtp.by_side[side] / watched / max(established, 1), len(rtp.ports[side]))
            for side in rtp.ranges}
        sounding = {} if rtp.error else {side: rtp.sounding_ports(side, SOUND_PACKETS)
                                         for side in rtp.ranges}
        closed = sum(1 for e in alice.events() if e.get("type") == "CALL_CLOSED")
        if closed:
            note = (note + "; " if note else "") + f"baresip: {closed} calls closed early"
    return Load(calls, established, 2 * established, cpu, 0.0, wall, rss, idle_rss, len(pids),
                max(0.0, busy - cpu), loadavg()[0], note, {}, flow, pss_bytes=pss,
                idle_pss_bytes=idle_pss, sounding=sounding, rtp_drops=drops)
