"""What the call benchmark measured, and its `call-bench` section of docs/performance.md."""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field

from .report import machine, markdown_table, usable_cores

CALLS_PER_WORKER = 4
TARGET_SETUP_RATIO = 1.2  # of baresip's, established and media flowing
TARGET_CALL_SHARE = 0.01  # of one core, per call
TARGET_CPU_RATIO = 0.5  # of baresip's CPU per call, in the same run
TARGET_PSS_RATIO = 1.5  # of baresip's PSS per call
SOUND_PACKETS = 10  # of the 50 a call's port gets in the 1 s flow check: it carries sound


@dataclass(frozen=True)
class Options:
    setups: int = 10  # sequential calls timed, per side
    loads: tuple[int, ...] = (4, 12, 24, 250)  # concurrent calls (250: ~70 s more)
    window: float = 5.0  # seconds of CPU measurement per load
    settle: float = 1.0  # seconds after the last call is playing before measuring


QUICK = Options(setups=3, loads=(4,), window=2.0, settle=0.5)


@dataclass
class Setup:
    """One timed call: seconds from the caller's start to established and to media flowing."""
    established: float
    media: float | None  # None: no RTP seen both ways within the bound
    caller_rtp: float | None = None  # first RTP of the call reaching the caller
    callee_rtp: float | None = None  # ... reaching the callee


def timed_setup(established: float, since: float, firsts: dict[str, float | None]) -> Setup:
    """A Setup from the caller's start time and RtpWatch.firsts (absolute times)."""
    def rel(value: float | None) -> float | None:
        return None if value is None else value - since
    caller, callee = rel(firsts.get("caller")), rel(firsts.get("callee"))
    media = None if caller is None or callee is None else max(caller, callee, established)
    return Setup(established, media, caller, callee)


@dataclass
class Load:
    calls: int
    established: int
    playing: int  # legs whose play (sipd) or audio source (baresip) was started
    cpu: float  # CPU seconds over the window, every measured process
    cpu_workers: float  # of that, sipd's media workers (0 for baresip)
    wall: float
    rss_bytes: int  # every measured process, after the window
    idle_rss_bytes: int  # the same before any call (sipd: daemons only, workers start on demand)
    processes: int
    other: float  # CPU seconds the rest of the machine used over the window
    loadavg: float  # 1-minute load average at the end of the window
    note: str = ""
    worker_threads: dict[str, float] = field(default_factory=dict)  # CPU s by thread name
    # per side ("caller", "callee"): RTP packets/s per call received there, at how many ports
    rtp_flow: dict[str, tuple[float, int]] = field(default_factory=dict)
    pss_bytes: int = 0  # as rss_bytes, proportional set size (shared pages counted once)
    idle_pss_bytes: int = 0
    # per side: how many ports received RTP carrying sound (not silence) in the flow check
    sounding: dict[str, int] = field(default_factory=dict)
    rtp_drops: int = 0  # packets the watching socket missed in the flow check (it read slowly)

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

    @property
    def per_call_pss_mb(self) -> float:
        if not self.established or not self.pss_bytes:
            return math.nan
        return (self.pss_bytes - self.idle_pss_bytes) / self.established / 2**20


@dataclass
class Results:
    sipd_setup: list[Setup] = field(default_factory=list)
    baresip_setup: list[Setup] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    baresip_loads: list[Load] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    silent: list[tuple[int, list[str]]] = field(default_factory=list)  # sipd setup calls
    # (number, sides) where no RTP of the call reached that side within the bound
    seconds: float = 0.0
    loadavg_start: tuple[float, float, float] = (math.nan,) * 3
    loadavg_end: tuple[float, float, float] = (math.nan,) * 3


def loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (math.nan,) * 3


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:.1f}"


def _ratio(a: float, b: float) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) or not b else f"{a / b:.2f}×"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("**pass**" if ok else "**FAIL**")


def _judged_ratio(value: float, baseline: float, target: float) -> str:
    """`value` as a multiple of `baseline`, with pass/FAIL against `target`."""
    if math.isnan(value) or math.isnan(baseline) or not baseline:
        return _ratio(value, baseline)
    return f"{_ratio(value, baseline)} {_verdict(value <= target * baseline)}"


def setup_table(results: Results) -> str:
    rows = [["calls timed", str(len(results.sipd_setup)), str(len(results.baresip_setup)), "",
             ""]]
    for label, pick, judged in (
            ("established", lambda s: s.established, True),
            ("media flowing (established + first RTP both ways)", lambda s: s.media, True),
            ("first RTP reaching the caller", lambda s: s.caller_rtp, False),
            ("first RTP reaching the callee", lambda s: s.callee_rtp, False)):
        sipd = [v for v in map(pick, results.sipd_setup) if v is not None]
        bare = [v for v in map(pick, results.baresip_setup) if v is not None]
        a, b = p50(sipd), p50(bare)
        ok = None if math.isnan(a) or math.isnan(b) or not judged \
            else a <= TARGET_SETUP_RATIO * b
        rows.append([f"{label}: p50 (ms)", ms(a), ms(b), _ratio(a, b), _verdict(ok)])
        if not judged:
            continue
        rows.append([f"{label}: min / max (ms), measured",
                     f"{ms(min(sipd, default=math.nan))} / {ms(max(sipd, default=math.nan))}, "
                     f"{len(sipd)}",
                     f"{ms(min(bare, default=math.nan))} / {ms(max(bare, default=math.nan))}, "
                     f"{len(bare)}", "", ""])
    return markdown_table(["call setup, from the caller's start", "sipd → sipd",
                           "baresip → baresip", "sipd vs baresip",
                           f"target ≤ {TARGET_SETUP_RATIO}×"], rows)


def flow_text(load: Load) -> str:
    flow = load.rtp_flow
    if "caller" not in flow or "callee" not in flow:
        return "n/a"
    (caller, caller_ports), (callee, callee_ports) = flow["caller"], flow["callee"]
    text = f"{caller:.0f} / {callee:.0f} ({caller_ports} / {callee_ports})"
    if load.sounding:
        text += (f", with sound {load.sounding.get('caller', 0)} / "
                 f"{load.sounding.get('callee', 0)}")
    if load.rtp_drops:
        text += f", {load.rtp_drops} packets not seen"
    return text


def load_table(results: Results) -> str:
    bare = {load.calls: load for load in results.baresip_loads}
    rows = []
    for load in results.loads:
        base = bare.get(load.calls)
        share = load.per_call_share
        worker_share = load.cpu_workers / load.cpu if load.cpu else math.nan
        rows.append([
            str(load.calls), f"{load.established} / {load.playing}", str(load.processes),
            f"{load.core_share:.1%}", f"{share:.2%} {_verdict(share <= TARGET_CALL_SHARE)}",
            f"{share / 2:.2%}", f"{worker_share:.0%}",
            f"{base.per_call_share:.2%}" if base else "n/a",
            _judged_ratio(share, base.per_call_share, TARGET_CPU_RATIO) if base else "n/a",
            f"{load.rss_bytes / 2**20:.0f}", f"{load.per_call_mb:.1f}",
            f"{base.per_call_mb:.1f}" if base else "n/a",
            f"{load.per_call_pss_mb:.1f}"
            + (f" ({_judged_ratio(load.per_call_pss_mb, base.per_call_pss_mb, TARGET_PSS_RATIO)})"
               if base else ""),
            f"{base.per_call_pss_mb:.1f}" if base else "n/a",
            flow_text(load), flow_text(base) if base else "n/a",
            f"{load.other / load.wall:.0%}" if load.wall else "n/a",
            f"{base.other / base.wall:.0%}" if base and base.wall else "n/a",
            f"{load.loadavg:.2f}",
            "; ".join(n for n in (load.note, base.note if base else "") if n),
        ])
    return markdown_table([
        "calls", "established / legs playing", "sipd processes", "sipd CPU, all (of a core)",
        "sipd CPU per call (target ≤ 1 %)", "sipd CPU per leg", "of it in media workers",
        "baresip CPU per call", f"sipd vs baresip per call (target ≤ {TARGET_CPU_RATIO}×)",
        "sipd RSS, all (MB)", "sipd RSS per call (MB)", "baresip RSS per call (MB)",
        f"sipd PSS per call (MB; vs baresip, target ≤ {TARGET_PSS_RATIO}×)",
        "baresip PSS per call (MB)",
        "sipd RTP/s per call at caller / callee (ports)", "baresip RTP/s ditto",
        "others during sipd",
        "others during baresip", "load avg (1 min)", "note"], rows)


THREADS = {
    "clock": "the conference bridge clock: reads the WAV, mixes, resamples, encodes, sends RTP",
    "media": "pjmedia's I/O thread: receives RTP into the jitter buffers",
    "python": "the worker's own loop: libHandleEvents, the internal SIP leg, control socket",
}


def threads_text(results: Results) -> str:
    """Where the media workers' CPU went, per thread, as a share of a core per leg."""
    parts = []
    for load in results.loads:
        legs = 2 * load.established
        if not legs or not load.wall or not load.worker_threads:
            continue
        named = sorted(load.worker_threads.items(), key=lambda item: -item[1])
        shares = ", ".join(f"{name} {seconds / load.wall / legs:.2%}" for name, seconds in named
                           if seconds > 0)
        parts.append(f"{load.calls} calls: {shares}")
    if not parts:
        return ""
    known = "; ".join(f"`{name}`: {what}" for name, what in THREADS.items())
    return ("Media workers' CPU by pjsua thread, in share of a core per leg (from "
            f"/proc/<pid>/task, over the same window) — {'; '.join(parts)}. ({known}.)")


PROFILE_NOTE = (
    "Where it goes, profiled once with `perf record -g` on the four workers of 8 calls "
    "playing at both ends (2026-11-24, SDES-SRTP still on then): 53 % of the workers' samples "
    "in the `clock` thread, 27 % `python`, 20 % `media`. The largest single item, 32 % of all "
    "samples, is libresample's `FilterUD`, pjmedia's resampler with its large filter (pjsua's "
    "default `quality`): the calls' PCMU ports run at 8 kHz, the conference bridge at "
    "pjsua's default 16 kHz `clockRate` (the WAV is 16 kHz too); "
    "then context switches from the 10 ms wake-ups (`finish_task_switch` 13 %), the "
    "Python loop (`_PyEval_EvalFrameDefault` 4 %) and SRTP (roughly 15 % of the workers' CPU "
    "in a quick comparison when the two sipd agreed on SDES, the reason this benchmark turns "
    "it off). The `python` thread's share did not change when the calls started playing (in the "
    "profile runs: its 10 ms poll, not the audio), so it weighs most per leg on a worker "
    "with few calls. The daemons "
    "themselves use almost nothing once calls are up (RTP goes worker to worker), so "
    "cProfile of the daemon has nothing to show here. Since then (docs/decisions.md, "
    "\"Media worker: silence on the wire, and CPU per call\"): `medConfig.quality` 4 (the "
    "small resampler filter) and a 50 ms `libHandleEvents` wait (the doorbell wakes the "
    "worker for commands), which took a call from about 2 % of a core to about 1 %; an 8 kHz "
    "bridge clock measured no better (the 16 kHz WAV is resampled instead)."
)


def silent_text(results: Results) -> list[str]:
    """The sipd setup calls in which one side never received RTP (nothing plays then)."""
    if not results.silent:
        return []
    by_side: dict[str, list[int]] = {}
    for number, sides in results.silent:
        for side in sides:
            by_side.setdefault(side, []).append(number)
    listed = "; ".join(f"no RTP reached the **{side}** in call(s) "
                       f"{', '.join(map(str, numbers))}" for side, numbers in by_side.items())
    return ["", f"**Media missing in sipd setup calls** (within 2 s of the start; nothing "
            f"plays during setup, so this is pjsua's silence, and the media-flowing row counts "
            f"only the other calls): {listed}. The warm-up call is the worker's first."]


def section(results: Results, options: Options) -> str:
    start, end = results.loadavg_start, results.loadavg_end
    lines = [
        "## Audio calls: setup time, CPU and memory per call (`make bench`)",
        "",
        f"Measured {machine()}. The call benchmark took {results.seconds:.0f} s; load average "
        f"(1/5/15 min) {start[0]:.2f} / {start[1]:.2f} / {start[2]:.2f} at its start, "
        f"{end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f} at its end.",
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
        "before A's `sessions.start` RPC; **established** is the `time` of A's "
        "`session.state` `established` event (the daemon's clock, same machine), so it "
        "includes the RPC call, the media worker setting up the leg on each side (B2BUA to "
        "pjsua2) and B's answer. **baresip**: two baresip instances (ctrl_tcp, the callee "
        "with `answermode=auto`, each playing a tone WAV through `aufile`); time runs from "
        "sending `dial` over ctrl_tcp, established is when the caller's `CALL_ESTABLISHED` "
        "event is read. **Media flowing** is the later of established and the first RTP "
        "packet of the call reaching *each* end (caller and callee), both sides measured the "
        "same way: a packet socket on `lo` with kernel receive times (`bench/rtp_watch.py`; "
        "RTP only, RTCP left out; sipd's workers send RTP from the "
        "start, silence until something plays, since sipd turns silence suppression off). "
        "The rows of first RTP at each end show which direction waits. "
        "Each call is hung up before the next, and the next starts 0.2 s after it ended: no "
        "packet of the call before counts, and neither side is still tearing the last call "
        "down (back to back, baresip's next call took ~45 ms to establish instead of ~5 ms; "
        "sipd's hardly changed).",
        *silent_text(results),
        "",
        "### CPU and memory per active call, with audio playing",
        "",
        load_table(results),
        "",
        f"**sipd**: daemon A starts N calls to B (auto-answered) and keeps them up; once all "
        "are established, each call plays a 2 s 440 Hz tone WAV (16-bit mono, 16 kHz, written "
        "once per run) looping at **both** ends (`sessions.play` with `loop: true` on A's and "
        "on B's session: \"legs playing\" counts the plays that succeeded, 2 per call). "
        f"{options.settle:g} s later, CPU time (user + system, /proc/<pid>/stat) of both "
        f"daemons and all their media workers (one per {CALLS_PER_WORKER} calls per daemon) is "
        f"summed over {options.window:g} s and divided by the wall time (100 % = one core) and "
        "by the established calls. **Per call** counts both legs of a call: the caller's in "
        "daemon A (and its worker) and the callee's in daemon B (and its worker), as a call "
        "between two sipd users costs; **per leg** is half that, what one sipd end of a call "
        "with any peer costs. **baresip**: the same N calls between two fresh baresip "
        "processes (`call_max_calls` raised, each call sending the tone from `aufile` both "
        "ways and decoding what it receives; no audio player), the CPU of both processes over "
        "the same window, per call. RSS is summed over the same processes after the window; "
        "per call is that minus the RSS before any call (sipd: the two idle daemons, so it "
        "includes the media workers' own start-up memory), over the calls; PSS the same with "
        "each shared page divided among the processes that map it (shared libraries and "
        "copy-on-write pages count once in the sum). \"others\" is the "
        "CPU the rest of the machine used in the window (from /proc/stat, steal included): "
        f"with {usable_cores()} usable cores, a busy machine slows and skews both sides. "
        "\"RTP/s per call\" checks that audio flows both ways: for 1 s after the window the "
        "benchmark counts the RTP packets reaching the caller's and the callee's port ranges "
        "(bench/rtp_watch.py), per call and second, and the ports they reach: 50 / 50 and N "
        "ports each side when every leg sends (20 ms PCMU). "
        "Both sides send plain RTP with PCMU: the benchmark sets sipd's `rtp.srtp` to "
        "`disabled`, as baresip here has no SRTP (two sipd with the default `optional` would "
        "agree on SDES-SRTP).",
    ]
    threads = threads_text(results)
    if threads:
        lines += ["", threads]
    lines += ["", PROFILE_NOTE]
    if results.notes:
        lines += ["", "Notes: " + "; ".join(results.notes) + "."]
    return "\n".join(lines)
