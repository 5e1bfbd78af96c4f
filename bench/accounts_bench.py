"""What one `accounts.add` costs as the number of accounts grows: a fresh daemon holding N
accounts (10, 200, 1,000, 10,000 by default), then `adds` accounts added one after the other over
one RPC connection (`register = false`: no SIP, only validating and saving), each timed from
the call sent to its reply. Also the daemon's start (to READY) with those N accounts, and its
RSS. Writes the `accounts-bench` section of docs/performance.md.

    python -m bench --only accounts                 # a few minutes; writes the doc
    python -m bench --only accounts --quick         # 10 and 1,000 accounts, 10 adds; no doc

The N accounts are written before the daemon starts, in the form the daemon itself stores them
(`preload`): the quadratic cost of adding 10,000 one by one through a daemon that rewrites its
whole settings file each time would take longer than the rest of `make bench` together.
Per-add latency is end to end (the client's clock: RPC, validation, the write with its fsync).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess, write_config

from . import accounts_register
from .report import machine, markdown_table
from .stats import Latency

SECTION = "accounts-bench"
SETTINGS = {"log.level": "warning"}
START_TIMEOUT = 600.0


# The same benchmark on the daemon before accounts had files of their own (main at 1ba1717,
# every add re-rendering the settings file), 2026-12-06 02:47 UTC on this machine: accounts
# held -> accounts.add p50 (ms), start to READY (s), system.state bytes, RSS (MiB).
BEFORE = {10: (3.1, 0.75, 25_694, 71), 200: (11.6, 0.84, 97_325, 75),
          1000: (44.1, 1.27, 398_926, 90), 10000: (408.7, 6.03, 3_791_927, 266)}


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...] = (10, 200, 1000, 10000)
    adds: int = 50  # timed accounts.add calls at each size
    register: int = 10000  # accounts registered at Kamailio by one daemon (0: not measured)
    register_limit: float = 300.0  # seconds the daemon (and sipp) may take to register them


QUICK = Options(sizes=(10, 1000), adds=10, register=1000, register_limit=120.0)


@dataclass
class SizeRun:
    accounts: int  # held before the timed adds
    start_seconds: float  # process start to READY (rpc.json written)
    per_add: list[float] = field(default_factory=list)  # seconds each
    list_seconds: float = float("nan")  # one accounts.list (first page) after the adds
    state_seconds: float = float("nan")  # one system.state after the adds
    state_bytes: int = 0
    rss_kib: int = 0  # after the adds

    @property
    def latency(self) -> Latency:
        return Latency.of(self.per_add)


def _say(text: str) -> None:
    print(text, flush=True)


def account_table(n: int) -> dict[str, object]:
    """The stored fields of preloaded account n, as AccountConfig.to_storage() writes them."""
    return {"aor": f"sip:pre{n:05d}@example.test", "display_name": "", "username": "",
            "password": f"secret-{n:05d}", "registrar": "sip:127.0.0.1:5999", "outbound_proxy": "",
            "transport": "", "register": False, "expires": 600, "auto_answer": False,
            "voicemail": "", "message_summary": True}


def _toml_lines(table: dict[str, object]) -> list[str]:
    return [f"{key} = {json.dumps(value)}" for key, value in table.items()]


def preload(sipd: SipdProcess, count: int) -> str:
    """Write `count` accounts where the daemon keeps them: one file each in the accounts
    directory next to the settings file when this sipd has one, else [accounts.<id>] tables in
    the settings file. Returns which ("directory" or "settings file")."""
    write_config(sipd.config, {**sipd.settings, **SETTINGS})
    directory = _accounts_directory(sipd.config)
    if directory is not None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for n in range(count):
            path = directory / f"pre{n:05d}.toml"
            path.write_text("\n".join(_toml_lines(account_table(n))) + "\n")
            path.chmod(0o600)
        return "directory"
    lines = []
    for n in range(count):
        lines += ["", f"[accounts.pre{n:05d}]", *_toml_lines(account_table(n))]
    with open(sipd.config, "a") as config:
        config.write("\n".join(lines) + "\n")
    sipd.config.chmod(0o600)
    return "settings file"


def _accounts_directory(config: Path) -> Path | None:
    try:
        from sipd.settings.paths import accounts_dir_for
    except ImportError:
        return None
    return Path(accounts_dir_for(config))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _timed_adds(sipd: SipdProcess, run: SizeRun, adds: int) -> None:
    async with connect(sipd.endpoint) as client:
        for n in range(adds):
            values = {"aor": f"sip:added{n:05d}@example.test", "password": "pw",
                      "registrar": "sip:127.0.0.1:5999", "register": False}
            started = time.perf_counter()
            await client.call("accounts.add", values, timeout=120)
            run.per_add.append(time.perf_counter() - started)
        started = time.perf_counter()
        try:
            await client.call("accounts.list", {"limit": 100}, timeout=120)
        except Exception:  # a daemon without paging: the whole list
            await client.call("accounts.list", timeout=120)
        run.list_seconds = time.perf_counter() - started
        started = time.perf_counter()
        state = await client.call("system.state", timeout=120)
        run.state_seconds = time.perf_counter() - started
        run.state_bytes = len(json.dumps(state))


def measure(base: Path, count: int, adds: int) -> tuple[SizeRun, str]:
    sipd = SipdProcess(base, SETTINGS, name=f"sipd-{count}")
    where = preload(sipd, count)
    started = time.perf_counter()
    sipd.start(wait=False, write_settings=False)
    try:
        sipd.wait_ready(timeout=START_TIMEOUT)
        run = SizeRun(count, time.perf_counter() - started)
        trio.run(_timed_adds, sipd, run, adds)
        assert sipd.proc is not None
        run.rss_kib = _rss_kib(sipd.proc.pid)
    except BaseException:
        print(f"sipd log:\n{sipd.log()[-3000:]}")
        raise
    finally:
        sipd.stop()
    return run, where


def describe(run: SizeRun) -> str:
    lat = run.latency
    return (f"{run.accounts:,} accounts: accounts.add p50 {lat.p50:.1f} ms, p99 {lat.p99:.1f} ms, "
            f"max {lat.max:.1f} ms; start {run.start_seconds:.2f} s; accounts.list "
            f"{run.list_seconds * 1e3:.1f} ms; system.state {run.state_seconds * 1e3:.1f} ms, "
            f"{run.state_bytes:,} bytes; RSS {run.rss_kib / 1024:.0f} MiB")


def section(runs: list[SizeRun], where: str, options: Options, seconds: float) -> str:
    header = ["accounts held", "accounts.add p50 / p99 / max (ms)", "before: p50 (ms)",
              "start to READY (s)", "system.state (ms, bytes)", "before: bytes",
              "accounts.list (ms)", "RSS (MiB)", "before: RSS"]
    rows = []
    for run in runs:
        lat = run.latency
        before = BEFORE.get(run.accounts)
        rows.append([f"{run.accounts:,}", f"{lat.p50:.1f} / {lat.p99:.1f} / {lat.max:.1f}",
                     f"{before[0]:.1f}" if before else "",
                     f"{run.start_seconds:.2f}" + (f" (before {before[1]:.2f})" if before
                                                   else ""),
                     f"{run.state_seconds * 1e3:.1f}, {run.state_bytes:,}",
                     f"{before[2]:,}" if before else "",
                     f"{run.list_seconds * 1e3:.1f}", f"{run.rss_kib / 1024:.0f}",
                     f"{before[3]}" if before else ""])
    smallest, largest = runs[0].latency.p50, runs[-1].latency.p50
    return "\n".join([
        "## Accounts at constant cost (`make bench`)",
        "",
        f"Measured {machine()}. The accounts benchmark took {seconds:.0f} s.",
        "",
        markdown_table(header, rows),
        "",
        f"Per-add p50 at {runs[-1].accounts:,} accounts is {largest / smallest:.2f}× the one at "
        f"{runs[0].accounts:,} (the baseline in this run: the same daemon with few accounts; "
        "target ≤ 5 ms at 10,000, flat). \"before\" columns: the same benchmark on the daemon "
        "that kept accounts in the settings file (main at 1ba1717, 2026-12-06 02:47 UTC, this "
        "machine), which re-rendered the whole file on every add.",
        "",
        f"Each row is a fresh daemon whose {where} held the accounts before it started "
        "(`bench/accounts_bench.py`), then "
        f"{options.adds} `accounts.add` calls one after the other over one connection "
        "(`register = false`: validation and the crash-safe write, no SIP), each timed on the "
        "client from the call to its reply. `accounts.list` and `system.state` are one call each "
        "after the adds (`accounts.list` with `limit` 100 where it pages). Run it alone with "
        "`python -m bench --only accounts` (`--quick` to try it).",
    ])


def run(options: Options, write: bool) -> str:
    began = time.monotonic()
    runs: list[SizeRun] = []
    where = "?"
    registered: accounts_register.Results | None = None
    with tempfile.TemporaryDirectory(prefix="sipd-accounts-bench-") as tmp:
        for count in options.sizes:
            _say(f"accounts: a daemon holding {count:,} accounts, {options.adds} adds ...")
            size_run, where = measure(Path(tmp), count, options.adds)
            runs.append(size_run)
            _say("  " + describe(size_run))
        if options.register:
            registered = accounts_register.measure(Path(tmp) / "register", options.register,
                                                   options.register_limit)
    text = section(runs, where, options, time.monotonic() - began)
    if registered is not None:
        text += "\n\n" + accounts_register.section(registered, runs[0].rss_kib)
    print()
    print(text)
    if write:
        from .report import write_section
        print(f"\nwrote the {SECTION} section of {write_section(SECTION, text)}")
    return text

