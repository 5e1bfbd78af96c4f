"""The soak benchmark: N minutes of mixed load against Kamailio and two sipd daemons, with each
daemon's memory and open descriptors (and its media workers') sampled each minute.

    python -m bench --only soak --minutes 60     # an hour; writes the soak-bench section
    python -m bench --only soak --quick          # a 1-minute smoke; leaves the doc alone

The load, all of it at once for the whole run:

- registrations: each daemon holds `accounts` accounts at Kamailio (UDP, digest users in
  SQLite) with the shortest expiry an account takes (60 s), so every account refreshes about
  once a minute all along;
- calls: `calls` callers on daemon a each call one of daemon b's accounts through Kamailio
  (auto-answered), keep the call up a few seconds, hang up, wait, and call again;
- pager messages: a and b send each other MESSAGEs through Kamailio, one every `message_gap`
  seconds each way;
- RPC clients: a new client connects to one of the daemons every `client_gap` seconds,
  subscribes to every event, reads them a few seconds, asks for system.state, and leaves.

Each minute (and at the start) the bench samples, per daemon: the RSS and open descriptors of
the daemon process, and the summed RSS and descriptors of its children (the media workers and
their zygote). The report prints the table, a least-squares slope per series (per hour: what
an hour adds), the operations done and failed, and the ERROR / Traceback lines in each
daemon's log.
"""

from __future__ import annotations

import math
import os
import random
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess
from tests.peers.kamailio import Kamailio
from tests.peers.ports import rtp_port_range

from .procs import process_tree, rss_bytes
from .report import machine, markdown_table

SECTION = "soak-bench"
EXPIRES = 60  # the least an account takes: a refresh about every minute
CALL_TIMEOUT = 20.0  # seconds a call may take to be established: a bound, not a measurement


@dataclass(frozen=True)
class Options:
    minutes: float = 60.0
    accounts: int = 20  # per daemon, registered at Kamailio
    calls: int = 2  # callers on daemon a, each one call at a time
    hold: tuple[float, float] = (3.0, 10.0)  # seconds a call stays up
    call_gap: tuple[float, float] = (1.0, 5.0)  # seconds between a caller's calls
    message_gap: float = 2.0  # seconds between MESSAGEs, each way
    client_gap: float = 5.0  # seconds between RPC clients joining
    client_stay: tuple[float, float] = (2.0, 15.0)  # seconds a client stays
    sample_every: float = 60.0


QUICK = Options(minutes=1.0, sample_every=15.0)


@dataclass
class Sample:
    minute: float
    # per daemon name: (daemon RSS, daemon fds, children, children RSS, children fds)
    by_daemon: dict[str, tuple[int, int, int, int, int]]
    registered: dict[str, int]


@dataclass
class Counters:
    calls_started: int = 0
    calls_established: int = 0
    calls_failed: int = 0
    messages_sent: int = 0
    messages_failed: int = 0
    clients: int = 0
    client_events: int = 0
    clients_failed: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str, error: BaseException) -> None:
        if len(self.failures) < 20:
            self.failures.append(f"{what}: {error!s:.160}")


def _say(text: str) -> None:
    print(text, flush=True)


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def sample_daemon(pid: int) -> tuple[int, int, int, int, int]:
    children = [p for p in process_tree(pid) if p != pid]
    return (rss_bytes(pid), open_fds(pid), len(children),
            sum(rss_bytes(p) for p in children), sum(open_fds(p) for p in children))


def slope(xs: list[float], ys: list[float]) -> float:
    """The least-squares slope of ys over xs (nan with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return math.nan
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if not sxx:
        return math.nan
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


ERROR_LINE = re.compile(r"\bERROR\b|Traceback \(most recent call last\)")


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if ERROR_LINE.search(line)]


def users(side: str, count: int) -> dict[str, str]:
    return {f"soak{side}{n:03d}": f"soak-secret-{side}{n:03d}" for n in range(count)}


# --- the load ------------------------------------------------------------------------------------

class Soak:
    def __init__(self, options: Options, kamailio: Kamailio, daemons: dict[str, SipdProcess],
                 ) -> None:
        self.options = options
        self.kamailio = kamailio
        self.daemons = daemons
        self.ids: dict[str, list[str]] = {"a": [], "b": []}  # account ids per daemon
        self.aors: dict[str, list[str]] = {"a": [], "b": []}
        self.counters = Counters()
        self.samples: list[Sample] = []
        self.started = 0.0

    async def add_accounts(self, rpc: Any, side: str) -> None:
        for user, password in users(side, self.options.accounts).items():
            aor = self.kamailio.aor(user)
            account = await rpc.call("accounts.add", {
                "aor": aor, "password": password, "registrar": self.kamailio.proxy_uri("udp"),
                "expires": EXPIRES, "auto_answer": side == "b", "message_summary": False})
            self.ids[side].append(account["id"])
            self.aors[side].append(aor)

    async def wait_registered(self, rpc: Any, limit: float = 60.0) -> int:
        registered = 0
        with trio.move_on_after(limit):
            while True:
                state = await rpc.call("system.state", {})
                registered = state["accounts"]["registration"]["registered"]
                if registered >= self.options.accounts:
                    break
                await trio.sleep(0.2)
        return registered

    async def caller(self, rpc: Any, number: int, stop: float) -> None:
        o, c = self.options, self.counters
        rng = random.Random(number)
        while time.monotonic() < stop:
            account = self.ids["a"][number % len(self.ids["a"])]
            to = rng.choice(self.aors["b"])
            session = None
            try:
                c.calls_started += 1
                session = (await rpc.call("sessions.start", {"account": account, "to": to,
                                                             "streams": ["audio"]}))["id"]
                state = ""
                with trio.move_on_after(CALL_TIMEOUT):
                    while state not in ("established", "ended", "failed"):
                        await trio.sleep(0.2)
                        state = (await rpc.call("sessions.get", {"id": session}))["state"]
                if state == "established":
                    c.calls_established += 1
                    await trio.sleep(rng.uniform(*o.hold))
                else:
                    c.calls_failed += 1
                    c.fail("call", RuntimeError(f"state {state or 'unknown'}"))
            except Exception as error:
                c.calls_failed += 1
                c.fail("call", error)
            if session is not None:
                try:
                    await rpc.call("sessions.end", {"id": session})
                except Exception:  # already over
                    pass
            await trio.sleep(rng.uniform(*o.call_gap))

    async def pager(self, rpc: Any, side: str, stop: float) -> None:
        other = "b" if side == "a" else "a"
        c = self.counters
        n = 0
        while time.monotonic() < stop:
            n += 1
            try:
                c.messages_sent += 1
                reply = await rpc.call("messages.send", {
                    "account": self.ids[side][n % len(self.ids[side])],
                    "to": self.aors[other][n % len(self.aors[other])],
                    "content": f"soak message {n} from {side}"})
                if not reply.get("delivered"):
                    c.messages_failed += 1
                    c.fail("message", RuntimeError(f"{reply.get('code')} {reply.get('reason')}"))
            except Exception as error:
                c.messages_failed += 1
                c.fail("message", error)
            await trio.sleep(self.options.message_gap)

    async def one_client(self, side: str, stay: float) -> None:
        c = self.counters
        try:
            async with connect(self.daemons[side].endpoint) as rpc:
                await rpc.call("events.subscribe", {})
                with trio.move_on_after(stay):
                    async for message in rpc.events:
                        if message.get("method") == "event":
                            c.client_events += 1
                await rpc.call("system.state", {})
            c.clients += 1
        except Exception as error:
            c.clients_failed += 1
            c.fail("client", error)

    async def clients(self, stop: float) -> None:
        rng = random.Random(7)
        async with trio.open_nursery() as nursery:
            while time.monotonic() < stop:
                side = rng.choice(("a", "b"))
                nursery.start_soon(self.one_client, side, rng.uniform(*self.options.client_stay))
                await trio.sleep(self.options.client_gap)

    async def sampler(self, rpcs: dict[str, Any], stop: float) -> None:
        while True:
            registered = {}
            for side, rpc in rpcs.items():
                try:
                    state = await rpc.call("system.state", {})
                    registered[side] = state["accounts"]["registration"]["registered"]
                except Exception as error:
                    registered[side] = -1
                    self.counters.fail("system.state", error)
            pids = {side: d.proc.pid for side, d in self.daemons.items() if d.proc is not None}
            self.samples.append(Sample((time.monotonic() - self.started) / 60,
                                       {side: sample_daemon(pid) for side, pid in pids.items()},
                                       registered))
            _say("  " + describe_sample(self.samples[-1]) + " | " + self.progress())
            if time.monotonic() + 1 >= stop:
                return
            await trio.sleep(min(self.options.sample_every, max(0.0, stop - time.monotonic())))

    def progress(self) -> str:
        c = self.counters
        return (f"calls {c.calls_established}/{c.calls_started} ({c.calls_failed} failed), "
                f"messages {c.messages_sent} ({c.messages_failed} failed), clients {c.clients} "
                f"({c.clients_failed} failed)")

    async def run(self) -> None:
        o = self.options
        async with connect(self.daemons["a"].endpoint) as rpc_a, \
                connect(self.daemons["b"].endpoint) as rpc_b:
            rpcs = {"a": rpc_a, "b": rpc_b}
            for side, rpc in rpcs.items():
                await self.add_accounts(rpc, side)
            for side, rpc in rpcs.items():
                got = await self.wait_registered(rpc)
                _say(f"  daemon {side}: {got}/{o.accounts} accounts registered")
            self.started = time.monotonic()
            stop = self.started + o.minutes * 60
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.sampler, rpcs, stop)
                for number in range(o.calls):
                    nursery.start_soon(self.caller, rpc_a, number, stop)
                nursery.start_soon(self.pager, rpc_a, "a", stop)
                nursery.start_soon(self.pager, rpc_b, "b", stop)
                nursery.start_soon(self.clients, stop)


def describe_sample(s: Sample) -> str:
    parts = [f"{s.minute:5.1f} min"]
    for side, (rss, fds, children, child_rss, child_fds) in s.by_daemon.items():
        parts.append(f"{side}: {rss / 2**20:.1f} MiB {fds} fds, {children} workers "
                     f"{child_rss / 2**20:.1f} MiB {child_fds} fds, "
                     f"{s.registered.get(side, -1)} registered")
    return "; ".join(parts)


# --- the report ----------------------------------------------------------------------------------

def section(options: Options, soak: Soak, errors: dict[str, list[str]], seconds: float) -> str:
    samples = soak.samples
    sides = ("a", "b")
    header = ["minute"]
    for side in sides:
        header += [f"{side} RSS (MiB)", f"{side} fds", f"{side} workers", f"{side} workers RSS "
                   "(MiB)", f"{side} workers fds", f"{side} registered"]
    rows = []
    for s in samples:
        row = [f"{s.minute:.1f}"]
        for side in sides:
            rss, fds, children, child_rss, child_fds = s.by_daemon.get(side, (0, 0, 0, 0, 0))
            row += [f"{rss / 2**20:.1f}", str(fds), str(children), f"{child_rss / 2**20:.1f}",
                    str(child_fds), f"{s.registered.get(side, -1)}/{options.accounts}"]
        rows.append(row)
    # The first sample is taken before any call started a media worker: the fit starts at the
    # second, the steady state.
    fitted = samples[1:]
    xs = [s.minute / 60 for s in fitted]
    slope_row = ["slope per hour"]
    for side in sides:
        series = [[s.by_daemon.get(side, (0, 0, 0, 0, 0))[i] for s in fitted]
                  for i in range(5)]
        slope_row += [f"{slope(xs, [v / 2**20 for v in series[0]]):+.1f}",
                      f"{slope(xs, [float(v) for v in series[1]]):+.1f}",
                      f"{slope(xs, [float(v) for v in series[2]]):+.1f}",
                      f"{slope(xs, [v / 2**20 for v in series[3]]):+.1f}",
                      f"{slope(xs, [float(v) for v in series[4]]):+.1f}", ""]
    rows.append(slope_row)
    c = soak.counters
    error_text = "; ".join(f"daemon {side}: {len(lines)}" for side, lines in errors.items())
    first_errors = [f"    {side}: {line[:200]}" for side, lines in errors.items()
                    for line in lines[:3]]
    lines = [
        f"### Soak: {options.minutes:g} minutes of mixed load",
        "",
        machine(),
        "",
        markdown_table(header, rows),
        "",
        f"Load all along: {options.accounts} accounts per daemon registered at Kamailio with "
        f"expires {EXPIRES} s (a refresh each about once a minute); {options.calls} callers on "
        f"a calling b's accounts through Kamailio (auto-answered, up {options.hold[0]:g}-"
        f"{options.hold[1]:g} s, then {options.call_gap[0]:g}-{options.call_gap[1]:g} s apart); "
        f"a MESSAGE every {options.message_gap:g} s each way through Kamailio; an RPC client "
        f"joining one of the daemons every {options.client_gap:g} s, subscribing to every "
        f"event, staying {options.client_stay[0]:g}-{options.client_stay[1]:g} s and leaving. "
        "\"workers\": the daemon's child processes (media workers and their zygote), summed. "
        "Slopes: least squares over the samples but the first (taken before the first call), "
        "per hour. `bench/soak_bench.py`.",
        "",
        f"Done: {c.calls_established:,} of {c.calls_started:,} calls established "
        f"({c.calls_failed} failed), {c.messages_sent - c.messages_failed:,} of "
        f"{c.messages_sent:,} MESSAGEs delivered, {c.clients:,} RPC clients came and went "
        f"({c.clients_failed} failed; {c.client_events:,} events read). "
        f"ERROR / Traceback lines in the logs: {error_text}. Run time {seconds / 60:.1f} min.",
    ]
    if c.failures:
        lines += ["", "First failures: " + "; ".join(c.failures[:5])]
    if first_errors:
        lines += ["", "First log errors:", "", *first_errors]
    return "\n".join(lines)


def daemon_settings() -> dict[str, Any]:
    return {"log.level": "warning", "sip.listen_address": "127.0.0.1",
            "rtp.media_address": "127.0.0.1", "rtp.port_range": rtp_port_range(64),
            "rtp.audio_codecs": ["PCMU", "PCMA"], "rtp.srtp": "disabled"}


def run(options: Options, write: bool) -> str:
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sipd-soak-bench-") as tmp:
        base = Path(tmp)
        all_users = {**users("a", options.accounts), **users("b", options.accounts)}
        kamailio = Kamailio(base, users=all_users, tls=False, debug=1,
                            max_lifetime=options.minutes * 60 + 600).start()
        daemons = {side: SipdProcess(base, daemon_settings(), name=f"soak-{side}")
                   for side in ("a", "b")}
        soak = Soak(options, kamailio, daemons)
        try:
            for daemon in daemons.values():
                daemon.start(wait=False)
            for daemon in daemons.values():
                daemon.wait_ready(timeout=60)
            _say(f"soak: {options.minutes:g} min against Kamailio and two daemons ...")
            trio.run(soak.run)
        finally:
            for daemon in daemons.values():
                daemon.stop()
            kamailio.stop()
        errors = {side: error_lines(daemon.log()) for side, daemon in daemons.items()}
    text = section(options, soak, errors, time.monotonic() - began)
    print()
    print(text)
    if write:
        from .report import write_section
        print(f"\nwrote the {SECTION} section of {write_section(SECTION, text)}")
    return text


if __name__ == "__main__":
    run(QUICK, write=False)
