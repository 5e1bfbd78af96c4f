"""The RPC benchmark: round trips over 1 and N connections, and event fan-out, each against the
bare echo server in the same run. Writes the `rpc-bench` section of docs/performance.md."""

from __future__ import annotations

import math
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trio

from . import fanout, rpc
from .procs import BenchSipd, EchoProcess, Target
from .report import machine, markdown_table
from .stats import ratio
from .wsclient import opener

SECTION = "rpc-bench"
RATE_TARGET = 0.5  # sipd's round-trip rate >= 50 % of the echo server's
FANOUT_P99_TARGET_MS = 20.0


@dataclass(frozen=True)
class Options:
    rounds: int = 3  # sipd and echo alternate, this many times, to spread a noisy neighbour
    duration: float = 2.0  # seconds measured per round trip run
    warmup: float = 0.5
    connections: int = 20
    clients: int = 100
    events: int = 200  # measured events per fan-out run (over all rounds)
    warmup_events: int = 10
    pause: float = 0.02  # between two events
    client: str = "lean"  # the benchmark's WebSocket client: lean or trio-websocket


@dataclass
class Results:
    single: dict[str, list[rpc.RoundTrips]]
    multi: dict[str, list[rpc.RoundTrips]]
    fan: dict[str, list[fanout.FanOut]]
    request_bytes: dict[str, int]
    reply_bytes: dict[str, int]


def _say(text: str) -> None:
    print(text, flush=True)


LOADS = ("rpc", "fanout")


async def run_loads(sipd: Target, echo: Target | None, options: Options,
                    loads: tuple[str, ...] = LOADS) -> Results:
    """Every measurement, sipd then echo (when given), `options.rounds` times."""
    connect = opener(options.client)
    reply = await rpc.probe(sipd, rpc.REQUEST, connect)
    if '"result"' not in reply:
        raise RuntimeError(f"system.version failed: {reply}")
    frames = {"sipd": rpc.REQUEST, "echo": rpc.padded_frame(len(reply.encode()))}
    results = Results({}, {}, {}, {"sipd": len(rpc.REQUEST)}, {"sipd": len(reply.encode())})
    if echo is not None:
        echoed = await rpc.probe(echo, frames["echo"], connect)
        if echoed != frames["echo"]:
            raise RuntimeError("the echo server did not echo the frame")
        results.request_bytes["echo"] = results.reply_bytes["echo"] = len(echoed.encode())
    targets = [sipd] + ([echo] if echo is not None else [])
    per_round = max(1, options.events // options.rounds)
    template = ""
    for number in range(1, options.rounds + 1):
        for target in targets if "rpc" in loads else []:
            for connections, store in ((1, results.single), (options.connections, results.multi)):
                result = await rpc.measure(target, frames[target.name], connections,
                                           options.duration, options.warmup, connect)
                store.setdefault(target.name, []).append(result)
                _say(f"  round {number} {target.name:4} {connections:3} connection(s): "
                     f"{result.rate:8.0f} round trips/s, p50 {result.latency.p50:.3f} ms, "
                     f"p99 {result.latency.p99:.3f} ms, CPU server {result.cpu_share:.0%} "
                     f"client {result.client_share:.0%} other {result.other_share:.0%}")
        for target in targets if "fanout" in loads else []:
            if target.name == "sipd":
                fan, sample = await fanout.measure(
                    target, listen_path="/", trigger_path="/", prepare=fanout.sipd_subscribe,
                    trigger=fanout.sipd_trigger, clients=options.clients, events=per_round,
                    warmup_events=options.warmup_events, pause=options.pause, connect=connect)
                template = template or sample
                if not template:
                    raise RuntimeError("sipd delivered no settings.changed event")
            else:
                fan, _ = await fanout.measure(
                    target, listen_path="/listen", trigger_path="/trigger", prepare=None,
                    trigger=fanout.echo_trigger(template), clients=options.clients,
                    events=per_round, warmup_events=options.warmup_events, pause=options.pause,
                    connect=connect)
            results.fan.setdefault(target.name, []).append(fan)
            lat = fan.latency
            _say(f"  round {number} {target.name:4} fan-out to {fan.clients}: "
                 f"p50 {lat.p50:.2f} ms, p99 {lat.p99:.2f} ms, max {lat.max:.2f} ms, "
                 f"{fan.deliveries}/{fan.clients * fan.events} delivered; trigger "
                 f"round trip p50 {fan.trigger_latency.p50:.2f} ms, CPU other "
                 f"{fan.other_share:.0%}")
    return results


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}×"


def _check(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


def round_shares(store: dict[str, list[rpc.RoundTrips]]) -> list[float]:
    """sipd's rate as a share of the echo server's, round by round."""
    return [ratio(s.rate, e.rate) for s, e in zip(store["sipd"], store["echo"], strict=False)]


def rate_share(store: dict[str, list[rpc.RoundTrips]]) -> float:
    """The median of the per-round shares: a burst of load during one side's turn moves one
    round's share, not the result."""
    return statistics.median(round_shares(store))


def table(results: Results, options: Options) -> str:
    rows: list[list[str]] = []
    for label, store in (("1 connection", results.single),
                         (f"{options.connections} connections", results.multi)):
        s, e = rpc.combine(store["sipd"]), rpc.combine(store["echo"])
        share = rate_share(store)
        rows.append([f"{label}: round trips/s", f"{s.rate:,.0f}", f"{e.rate:,.0f}",
                     f"{share:.0%}",
                     f"≥ {RATE_TARGET:.0%} of echo: {_check(share >= RATE_TARGET)}"])
        rows.append([f"{label}: latency p50 / p99 (ms)",
                     f"{_ms(s.latency.p50)} / {_ms(s.latency.p99)}",
                     f"{_ms(e.latency.p50)} / {_ms(e.latency.p99)}",
                     f"{_times(ratio(s.latency.p50, e.latency.p50))} / "
                     f"{_times(ratio(s.latency.p99, e.latency.p99))}", ""])
        rows.append([f"{label}: server CPU per round trip (µs); server / client busy",
                     f"{s.cpu_per_request_us:.0f}; {s.cpu_share:.0%} / {s.client_share:.0%}",
                     f"{e.cpu_per_request_us:.0f}; {e.cpu_share:.0%} / {e.client_share:.0%}",
                     _times(ratio(s.cpu_per_request_us, e.cpu_per_request_us)), ""])
    fs, fe = fanout.combine(results.fan["sipd"]), fanout.combine(results.fan["echo"])
    label = f"fan-out to {options.clients} clients"
    rows.append([f"{label}: latency p50 / p99 / max (ms)",
                 f"{_ms(fs.latency.p50)} / {_ms(fs.latency.p99)} / {_ms(fs.latency.max)}",
                 f"{_ms(fe.latency.p50)} / {_ms(fe.latency.p99)} / {_ms(fe.latency.max)}",
                 f"{_times(ratio(fs.latency.p50, fe.latency.p50))} / "
                 f"{_times(ratio(fs.latency.p99, fe.latency.p99))} / "
                 f"{_times(ratio(fs.latency.max, fe.latency.max))}",
                 f"p99 < {FANOUT_P99_TARGET_MS:g} ms: "
                 f"{_check(fs.latency.p99 < FANOUT_P99_TARGET_MS and fs.lost == 0)}"])
    rows.append([f"{label}: server CPU per event (ms)", f"{fs.cpu_per_event_ms:.2f}",
                 f"{fe.cpu_per_event_ms:.2f}", _times(ratio(fs.cpu_per_event_ms,
                                                           fe.cpu_per_event_ms)), ""])
    rows.append([f"{label}: deliveries measured (lost)", f"{fs.deliveries:,} ({fs.lost})",
                 f"{fe.deliveries:,} ({fe.lost})", "", ""])
    return markdown_table(["measurement", "sipd", "echo baseline", "sipd vs echo", "target"], rows)


OTHER_LOAD_WARNING = 0.25  # of a core, on average over a measured run


def other_load(results: Results) -> tuple[float, float]:
    """What other processes used during the measured runs, in cores: average and worst run."""
    runs = [r for store in (results.single, results.multi, results.fan)
            for rounds in store.values() for r in rounds]
    seconds = sum(r.seconds for r in runs)
    average = sum(r.other_cpu for r in runs) / seconds if seconds else float("nan")
    return average, max((r.other_share for r in runs), default=float("nan"))


def load_note(results: Results) -> str:
    average, worst = other_load(results)
    note = (f"Other processes on the machine used {average:.0%} of a core on average during "
            f"the measured runs ({worst:.0%} in the busiest run).")
    if worst > 2 * OTHER_LOAD_WARNING or average > OTHER_LOAD_WARNING:
        note = ("**Warning: the machine was busy with other work during this run; these numbers "
                "and their ratios are not representative. Run `make bench` again on a quiet "
                "machine.** " + note)
    return note


def section(results: Results, options: Options) -> str:
    s_fan = fanout.combine(results.fan["sipd"])
    return "\n".join([
        "## RPC and events (`make bench`)",
        "",
        f"Measured {machine()}; benchmark client: {options.client}.",
        "",
        table(results, options),
        "",
        load_note(results),
        "",
        f"Round trips: `system.version` ({results.request_bytes['sipd']} B request, "
        f"{results.reply_bytes['sipd']} B reply) against the echo server echoing a "
        f"{results.reply_bytes['echo']} B frame; each connection sends its next request when "
        f"the reply is in; {options.rounds} round(s) of {options.duration:g} s per server and "
        f"connection count, after {options.warmup:g} s of warm-up, sipd and echo alternating. "
        "The rate share is the median of the rounds' shares ("
        + "; ".join(f"{label}: " + ", ".join(f"{v:.0%}" for v in round_shares(store))
                    for label, store in (("1 connection", results.single),
                                         (f"{options.connections} connections", results.multi)))
        + "). \"busy\" is a process's CPU time over wall time (100 % = one core): a server well "
        "under 100 % while the client is near it means the client set the pace.",
        "",
        f"Fan-out: {options.clients} clients subscribed to `settings`, {s_fan.events} measured "
        f"`settings.changed` events ({s_fan.frame_bytes} B frames; `settings.set` of "
        f"`{fanout.SETTING}`, {options.pause * 1e3:g} ms apart, after {options.warmup_events} "
        "warm-up events per round); latency is each client's receive time minus the event's "
        "`time`. The echo server stamps and broadcasts a frame of the same size. The "
        f"`settings.set` round trip itself took p50 {_ms(s_fan.trigger_latency.p50)} ms / "
        f"p99 {_ms(s_fan.trigger_latency.p99)} ms (it saves the settings file first).",
    ])


def run(options: Options, write: bool) -> str:
    with tempfile.TemporaryDirectory(prefix="sipd-bench-") as tmp:
        base = Path(tmp)
        sipd = BenchSipd(base)
        echo = EchoProcess(base / "echo.log")
        try:
            _say("starting sipd and the echo server ...")
            sipd.start()
            echo.start()
            results = trio.run(run_loads, sipd.target(), echo.target(), options)
        except BaseException:
            _say(f"sipd log:\n{sipd.log()[-3000:]}")
            raise
        finally:
            echo.stop()
            sipd.stop()
    text = section(results, options)
    print()
    print(text)
    if write:
        from .report import write_section
        print(f"\nwrote the {SECTION} section of {write_section(SECTION, text)}")
    return text
