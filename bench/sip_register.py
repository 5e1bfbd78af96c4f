"""Registering many accounts with Kamailio: sipd, driven over RPC, against sipp in the same run.

One Kamailio (tests/peers/kamailio.py, digest users in SQLite, registrations in memory, UDP
only, warnings-only log) serves both. Each registration is two REGISTER transactions: the
first is challenged (401), the second carries the digest credentials and gets the 200.

- sipd: a fresh daemon (tests/daemon.py's SipdProcess, its own directories), one RPC
  connection subscribed to `accounts` events, every registration started at once, registrar
  Kamailio over UDP, expires 60 (the least an account takes). Two ways (`MODES`):
  "add" - concurrent `accounts.add` calls, each validated and saved to the settings file
  before the daemon answers (end to end, as a user adds accounts); "register" - the accounts
  are already in the settings file with `register = false` and concurrent `accounts.register`
  calls start them (the SIP stack and the registration logic, nothing written). Time runs
  from the first call sent to the last `registered` event's `time` (the daemon's clock, the
  same machine); per account, from its own call to its `registered` event.
- sipp: bench/sip_register_uac.xml (REGISTER, 401, REGISTER with credentials, 200) with a CSV
  of the same users, all calls started at once; time runs from its first REGISTER sent to the
  last 200 received (its message trace); per user, its response time 1 (-trace_rtt), first
  REGISTER to 200.

Transactions per second = 2 × registered accounts / that time. Kamailio's own counters
(kamcmd stats) say how many REGISTERs really arrived: the difference is retransmissions.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from sipctl.client import Client, connect
from tests.harness.process import SipdProcess
from tests.peers.kamailio import Kamailio
from tests.peers.sipp import Sipp

from .procs import BenchSipd, cpu_seconds, machine_busy_seconds
from .stats import Latency

SCENARIO = Path(__file__).resolve().with_name("sip_register_uac.xml")
EXPIRES = 60  # the least an account accepts (sipd/accounts/model.py)
TRANSACTIONS_PER_REGISTRATION = 2  # challenged REGISTER + REGISTER with credentials
SIPD_SETTINGS = {"log.level": "warning", "sip.listen_address": "127.0.0.1"}
RPC_TIMEOUT = 60.0
# All calls at once (10,000 per second), and a 1 MiB socket buffer: with sipp's default of
# 64 KiB, 200 answers arriving together overflow it and a quarter of the users wait 500 ms
# for a retransmission.
SIPP_ARGS = ["-r", "10000", "-buff_size", "1048576", "-trace_rtt", "-rtt_freq", "1"]


def users(count: int) -> dict[str, str]:
    """The benchmark's Kamailio users: name -> password."""
    return {f"bench{n:03d}": f"bench-secret-{n:03d}" for n in range(count)}


def start_kamailio(base: Path, count: int) -> Kamailio:
    # debug=1: warnings only, so Kamailio's per-request log line is not part of what either
    # client waits for.
    return Kamailio(base, users=users(count), tls=False, debug=1).start()


@dataclass(frozen=True)
class RegisterRun:
    """One client registering `accounts` users."""
    client: str  # "sipd" or "sipp"
    accounts: int
    registered: int
    seconds: float  # first account started -> last registered
    per_account: tuple[float, ...] = field(repr=False)  # seconds, start -> registered
    registers_received: int  # REGISTERs Kamailio counted (retransmissions included)
    client_cpu: float  # CPU seconds of sipd, or of sipp
    kamailio_cpu: float
    other_cpu: float  # every other process on the machine (not this one, the RPC client)
    wall: float  # the window the CPU times were taken over
    udp_drops: int  # datagrams dropped for a full receive buffer, machine-wide
    mode: str = ""  # sipd: "add" or "register" (MODES)
    detail: dict[str, float] = field(default_factory=dict)  # client-specific, times in s

    @property
    def complete(self) -> bool:
        return self.registered == self.accounts

    @property
    def transactions(self) -> int:
        return TRANSACTIONS_PER_REGISTRATION * self.registered

    @property
    def rate(self) -> float:
        return self.transactions / self.seconds if self.seconds > 0 else float("nan")

    @property
    def latency(self) -> Latency:
        return Latency.of(self.per_account)

    @property
    def retransmissions(self) -> int:
        return max(0, self.registers_received - self.transactions)

    @property
    def client_cpu_per_registration_ms(self) -> float:
        return self.client_cpu / self.registered * 1e3 if self.registered else float("nan")

    @property
    def kamailio_cpu_per_registration_ms(self) -> float:
        return self.kamailio_cpu / self.registered * 1e3 if self.registered else float("nan")

    @property
    def client_busy(self) -> float:
        """The client's CPU time over the window: 1.0 is one core all the time."""
        return self.client_cpu / self.wall if self.wall > 0 else float("nan")

    @property
    def other_share(self) -> float:
        return self.other_cpu / self.wall if self.wall > 0 else float("nan")


# --- measuring the machine ---------------------------------------------------------------------

def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds of every live process in process group `pgid` (Kamailio and its children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def kamailio_stats(kamailio: Kamailio) -> dict[str, int]:
    """Kamailio's counters, e.g. 'core:rcv_requests_register' -> 435."""
    out = kamailio.rpc("stats.get_statistics", "all")
    stats = {}
    for line in out.splitlines():
        name, sep, value = line.strip().partition(" = ")
        if sep and value.strip().lstrip("-").isdigit():
            stats[name] = int(value)
    return stats


def _registers(kamailio: Kamailio) -> int:
    return kamailio_stats(kamailio).get("core:rcv_requests_register", 0)


class Meter:
    """CPU seconds of a client, of Kamailio and of everything else over one window."""

    def __init__(self, kamailio: Kamailio, client_cpu: Callable[[], float]) -> None:
        assert kamailio.process is not None
        self.kamailio_group = kamailio.process.pid  # its own session: pgid = the leader's pid
        self.client_cpu = client_cpu

    def sample(self) -> tuple[float, ...]:
        return (time.perf_counter(), self.client_cpu(), group_cpu_seconds(self.kamailio_group),
                cpu_seconds(os.getpid()), machine_busy_seconds(), udp_receive_drops())

    @staticmethod
    def between(start: tuple[float, ...], end: tuple[float, ...]) -> dict[str, Any]:
        wall, client, kamailio, mine, machine, drops = (b - a for a, b
                                                        in zip(start, end, strict=True))
        return {"wall": wall, "client_cpu": client, "kamailio_cpu": kamailio,
                "other_cpu": max(0.0, machine - client - kamailio - mine),
                "udp_drops": int(drops)}


def udp_receive_drops() -> int:
    """Datagrams the kernel dropped for a full receive buffer, machine-wide (/proc/net/snmp
    Udp RcvbufErrors): on loopback, a sender faster than its receiver shows here."""
    try:
        lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
                 if line.startswith("Udp:")]
        return int(lines[1][lines[0].index("RcvbufErrors")])
    except (OSError, IndexError, ValueError):
        return 0


# --- sipd ----------------------------------------------------------------------------------------

@dataclass
class _Account:
    user: str
    account_id: str | None = None  # known beforehand for accounts preloaded from the file
    started: float = math.nan  # time.time() when accounts.add / accounts.register was sent
    answered: float = math.nan  # when its reply came


MODES = ("add", "register")


def preloaded_settings(kamailio: Kamailio, wanted: dict[str, str]) -> dict[str, object]:
    """The accounts in the daemon's settings file, registering only when asked (mode
    "register"): no settings write in the measured window."""
    settings: dict[str, object] = dict(SIPD_SETTINGS)
    for user, password in wanted.items():
        settings.update({f"accounts.{user}.aor": kamailio.aor(user),
                         f"accounts.{user}.password": password,
                         f"accounts.{user}.registrar": kamailio.proxy_uri("udp"),
                         f"accounts.{user}.expires": EXPIRES,
                         f"accounts.{user}.register": False})
    return settings


async def _register_with_sipd(sipd: SipdProcess, kamailio: Kamailio, wanted: dict[str, str],
                              mode: str, limit: float,
                              ) -> tuple[list[_Account], dict[str, dict[str, float]]]:
    """Start every registration at once - `accounts.add` of each account (mode "add") or
    `accounts.register` of each preloaded one ("register") - and wait (at most `limit` s) until
    all are registered. Returns the accounts and, per account id, the daemon time of its first
    event of each state."""
    firsts: dict[str, dict[str, float]] = {}
    accounts = [_Account(user, user if mode == "register" else None) for user in wanted]
    all_registered = trio.Event()
    registrar = kamailio.proxy_uri("udp")

    def check() -> None:
        ids = [a.account_id for a in accounts if a.account_id is not None]
        if len(ids) == len(accounts) and all("registered" in firsts.get(i, {}) for i in ids):
            all_registered.set()

    async def watch(client: Client) -> None:
        async for message in client.events:
            if message.get("method") != "event":
                continue
            params = message["params"]
            if params["name"] != "account.registration":
                continue
            data = params["data"]
            firsts.setdefault(data["account"], {}).setdefault(data["state"], params["time"])
            check()

    async def start(client: Client, account: _Account) -> None:
        account.started = time.time()
        if mode == "add":
            result = await client.call("accounts.add", {
                "aor": kamailio.aor(account.user), "password": wanted[account.user],
                "registrar": registrar, "expires": EXPIRES}, timeout=RPC_TIMEOUT)
        else:
            result = await client.call("accounts.register", {"id": account.account_id},
                                       timeout=RPC_TIMEOUT)
        account.answered = time.time()
        account.account_id = result["id"]

    async with connect(sipd.endpoint) as client:
        await client.call("events.subscribe", {"topics": ["accounts"]})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, client)
            with trio.move_on_after(limit):
                async with trio.open_nursery() as starters:
                    for account in accounts:
                        starters.start_soon(start, client, account)
                check()  # the last event may have come before the last reply
                await all_registered.wait()
            nursery.cancel_scope.cancel()
    return accounts, firsts


def run_sipd(base: Path, kamailio: Kamailio, count: int, mode: str, limit: float,
             name: str, profile_out: Path | None = None) -> RegisterRun:
    """A fresh sipd registers `count` users (see `_register_with_sipd` for `mode`); the daemon
    is stopped (unregistering them) after. With `profile_out`, the daemon runs under cProfile
    (bench/profiled_sipd.py) for the measured window and writes its profile there."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    wanted = users(count)
    settings = preloaded_settings(kamailio, wanted) if mode == "register" else SIPD_SETTINGS
    if profile_out is None:
        sipd: SipdProcess = SipdProcess(base, settings, name=name)
    else:
        sipd = BenchSipd(base / name, profile_out=profile_out)
        sipd.settings.update(settings)
    try:
        sipd.start()
        assert sipd.proc is not None
        pid = sipd.proc.pid
        meter = Meter(kamailio, lambda: cpu_seconds(pid))
        before_registers = _registers(kamailio)
        if isinstance(sipd, BenchSipd) and profile_out is not None:
            sipd.profiling(True)
        start = meter.sample()
        accounts, firsts = trio.run(_register_with_sipd, sipd, kamailio, wanted, mode, limit)
        end = meter.sample()
        registers = _registers(kamailio) - before_registers
        if isinstance(sipd, BenchSipd) and profile_out is not None:
            sipd.profiling(False)
            _wait_for_file(profile_out, 10)
    except BaseException:
        print(f"sipd log:\n{sipd.log()[-3000:]}")
        raise
    finally:
        sipd.stop()
    first = min(a.started for a in accounts)
    done = [(a, firsts[a.account_id]["registered"]) for a in accounts
            if a.account_id and "registered" in firsts.get(a.account_id, {})]
    registering = min((f["registering"] for f in firsts.values() if "registering" in f),
                      default=math.nan)
    last = max((t for _a, t in done), default=math.nan)
    answered = [a.answered for a in accounts if not math.isnan(a.answered)]
    return RegisterRun(
        "sipd", count, len(done), last - first if done else math.nan,
        tuple(t - a.started for a, t in done), registers, **Meter.between(start, end),
        mode=mode,
        detail={"answered": max(answered, default=math.nan) - first,
                "answers": len(answered),
                "first_registering": registering - first,
                "failed": sum("failed" in f for f in firsts.values())})


def _wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # dump_stats writes it in one go, but let it finish


# --- sipp ----------------------------------------------------------------------------------------

_TRACE_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.MULTILINE)


def _trace_window(messages: str) -> float:
    """Seconds from the first to the last message in sipp's -trace_msg log."""
    stamps = [datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S.%f")
              for s in _TRACE_STAMP.findall(messages)]
    return (max(stamps) - min(stamps)).total_seconds() if len(stamps) > 1 else math.nan


def _response_times(run_dir: Path) -> list[float]:
    """Per call, seconds from the first REGISTER to the 200 (sipp's -trace_rtt file, ms)."""
    times = []
    for path in run_dir.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[2].strip() == "1":
                times.append(float(parts[1]) / 1e3)
    return times


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_sipp(base: Path, kamailio: Kamailio, count: int, limit: float) -> RegisterRun:
    """sipp registers the same `count` users, all started at once."""
    rows = [[user, kamailio.domain, f"[authentication username={user} password={password}]"]
            for user, password in users(count).items()]
    # sipp's CPU: it is reaped (through coreutils `timeout`) by this process, so it shows in
    # RUSAGE_CHILDREN; nothing else is started in between.
    meter = Meter(kamailio, _children_cpu)
    before_registers = _registers(kamailio)
    start = meter.sample()
    run = Sipp(base).start(SCENARIO, ("127.0.0.1", kamailio.udp_port), rows=rows, calls=count,
                           timeout=limit, extra_args=SIPP_ARGS + ["-l", str(count)])
    result = run.wait()
    end = meter.sample()
    registers = _registers(kamailio) - before_registers
    times = _response_times(run.files["stats"].parent)
    if not result.ok or len(times) != count:
        raise RuntimeError(f"sipp did not register all {count} users ({len(times)} did):\n"
                           f"{result.report()}")
    return RegisterRun("sipp", count, len(times), _trace_window(result.messages), tuple(times),
                       registers, **Meter.between(start, end))


def describe(run: RegisterRun) -> str:
    lat = run.latency
    text = (f"{run.client} {run.registered}/{run.accounts} registered in {run.seconds:.2f} s: "
            f"{run.rate:,.0f} REGISTER transactions/s; per account p50 {lat.p50:.0f} ms, "
            f"max {lat.max:.0f} ms; Kamailio got {run.registers_received} REGISTERs "
            f"({run.retransmissions} retransmitted), {run.udp_drops} UDP drops; CPU {run.client} "
            f"{run.client_cpu_per_registration_ms:.2f} ms (busy {run.client_busy:.0%}), Kamailio "
            f"{run.kamailio_cpu_per_registration_ms:.2f} ms per registration, other "
            f"{run.other_share:.0%}")
    if run.client == "sipd":
        text += (f"; {run.detail['answers']:.0f} accounts.{run.mode} answered, the last after "
                 f"{run.detail['answered']:.2f} s; first 'registering' after "
                 f"{run.detail['first_registering'] * 1e3:.0f} ms; "
                 f"{run.detail['failed']:.0f} accounts saw 'failed'")
    return text


def versions() -> dict[str, str]:
    """Kamailio's and sipp's versions, for the report."""
    import subprocess
    found = {}
    for name, argv, pattern in (("Kamailio", ["kamailio", "-v"], r"kamailio (\S+)"),
                                ("sipp", ["sipp", "-v"], r"SIPp v?(\S+)")):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=5,
                                 env={**os.environ,
                                      "PATH": os.environ.get("PATH", "") + ":/usr/sbin"})
            match = re.search(pattern, out.stdout + out.stderr)
            found[name] = match.group(1).rstrip(",.") if match else "?"
        except (OSError, subprocess.TimeoutExpired):
            found[name] = "?"
    return found
