"""The SIP benchmark: how fast sipd reads SIP messages (against splitting the same bytes into
lines) and how fast it registers accounts with Kamailio (against sipp registering the same
users with the same Kamailio), all in the same run. Writes the `sip-bench` section of
docs/performance.md.

    python -m bench --only sip                  # about a minute; writes the doc
    python -m bench --only sip --quick          # a short try; leaves the doc alone
    python -m bench --profile sip-parse         # the parser under cProfile: hot spots
    python -m bench --profile sip-register      # sipd under cProfile while it registers
    python -m bench --profile sip-add           # ... while accounts are added and register
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import sip_parse, sip_register
from .profile import hot_spots
from .report import machine, markdown_table
from .sip_register import RegisterRun
from .stats import Latency, ratio

SECTION = "sip-bench"
OTHER_LOAD_WARNING = 0.25  # of a core, on average over the registration runs (as rpc-bench)


@dataclass(frozen=True)
class Options:
    parse_budget: float = 0.04  # CPU seconds per timed parse loop
    parse_repeats: int = 5  # the best of this many timed loops counts
    accounts: int = 200  # registered at once, through accounts.register and accounts.add
    burst: int = 50  # accounts added at once to a fresh daemon
    rounds: int = 3  # sipp and sipd alternate this many times (not the slow 200-add run)
    limit: float = 45.0  # seconds one sipd run may take before it is cut off
    sipp_limit: float = 20.0


QUICK = Options(parse_budget=0.01, parse_repeats=2, accounts=50, burst=20, rounds=1, limit=20)


@dataclass
class Results:
    parse: sip_parse.ParseResults
    register_sipd: list[RegisterRun] = field(default_factory=list)  # mode "register", rounds
    register_sipp: list[RegisterRun] = field(default_factory=list)  # the same users, rounds
    add_all: RegisterRun | None = None  # sipd, mode "add", `accounts` accounts, one run
    burst_sipd: list[RegisterRun] = field(default_factory=list)  # mode "add", `burst` accounts
    burst_sipp: list[RegisterRun] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def all_runs(self) -> list[RegisterRun]:
        return [*self.register_sipd, *self.register_sipp,
                *([self.add_all] if self.add_all else []), *self.burst_sipd, *self.burst_sipp]


def _say(text: str) -> None:
    print(text, flush=True)


def run_registrations(options: Options, base: Path, results: Results) -> Results:
    kamailio = sip_register.start_kamailio(base, max(options.accounts, options.burst))
    try:
        # Unmeasured warm-up: Kamailio's workers open their database on first use.
        sip_register.run_sipp(base, kamailio, min(10, options.burst), options.sipp_limit)
        for number in range(1, options.rounds + 1):
            sipp = sip_register.run_sipp(base, kamailio, options.accounts, options.sipp_limit)
            results.register_sipp.append(sipp)
            _say(f"  round {number} {sip_register.describe(sipp)}")
            sipd = sip_register.run_sipd(base, kamailio, options.accounts, "register",
                                         options.limit, f"sipd-register-{number}")
            results.register_sipd.append(sipd)
            _say(f"  round {number} {sip_register.describe(sipd)}")
        results.add_all = sip_register.run_sipd(base, kamailio, options.accounts, "add",
                                                options.limit, "sipd-add-all")
        _say(f"  {sip_register.describe(results.add_all)}")
        for number in range(1, options.rounds + 1):
            sipp = sip_register.run_sipp(base, kamailio, options.burst, options.sipp_limit)
            results.burst_sipp.append(sipp)
            _say(f"  round {number} {sip_register.describe(sipp)}")
            sipd = sip_register.run_sipd(base, kamailio, options.burst, "add", options.limit,
                                         f"sipd-burst-{number}")
            results.burst_sipd.append(sipd)
            _say(f"  round {number} {sip_register.describe(sipd)}")
    finally:
        kamailio.stop()
    return results


# --- the report ----------------------------------------------------------------------------------

def _n(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _ms(seconds: float) -> str:
    value = seconds * 1e3
    return "n/a" if math.isnan(value) else f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def _times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}×" if value < 10 else f"{value:,.0f}×"


def _share(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}" if seconds < 1e-4 else f"{seconds * 1e6:,.0f}"


def parse_table(parse: sip_parse.ParseResults) -> str:
    header = ["message", "bytes", "parse_datagram: msgs/s (µs each)",
              "+ core accessors (µs)", "split lines: msgs/s", "header dict: msgs/s",
              "parse vs split", "parse vs dict"]
    rows = []
    for m in parse.messages:
        rows.append([m.name, str(m.size), f"{m.rate('parse'):,.0f} ({_us(m.seconds['parse'])})",
                     _us(m.seconds["accessors"]), f"{m.rate('split'):,.0f}",
                     f"{m.rate('dict'):,.0f}", _times(m.times("parse", "split")),
                     _times(m.times("parse", "dict"))])
    total = {reader: parse.corpus_seconds(reader) for reader in sip_parse.READERS}
    count = len(parse.messages)
    rows.append(["**the corpus, each once**", str(sum(m.size for m in parse.messages)),
                 f"{count / total['parse']:,.0f} ({_us(total['parse'] / count)})",
                 _us(total["accessors"] / count), f"{count / total['split']:,.0f}",
                 f"{count / total['dict']:,.0f}", _times(total["parse"] / total["split"]),
                 _times(total["parse"] / total["dict"])])
    s = parse.stream
    rows.append([f"stream of {s.messages} (StreamFramer, {sip_parse.CHUNK} B reads)",
                 f"{s.size:,}", f"{s.rate:,.0f} ({_us(s.framer_seconds / s.messages)})", "",
                 f"{s.split_rate:,.0f}", "", _times(s.framer_seconds / s.split_seconds), ""])
    return markdown_table(header, rows)


def _median(runs: list[RegisterRun], attribute: str) -> float:
    values = [getattr(run, attribute) for run in runs]
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else math.nan


def _pooled(runs: list[RegisterRun]) -> Latency:
    return Latency.of([value for run in runs for value in run.per_account])


def _registered(runs: list[RegisterRun]) -> str:
    return f"{sum(r.registered for r in runs)}/{sum(r.accounts for r in runs)}"


def _rows(label: str, sipd: list[RegisterRun], sipp: list[RegisterRun]) -> list[list[str]]:
    """The table rows of one measurement: the median round of each side and the median of the
    rounds' ratios (one sipd run against several sipp runs: against their median)."""
    if len(sipd) == len(sipp):
        rate_shares = [ratio(d.rate, p.rate) for d, p in zip(sipd, sipp, strict=False)]
        time_ratios = [ratio(d.seconds, p.seconds) for d, p in zip(sipd, sipp, strict=False)]
    else:
        rate_shares = [ratio(_median(sipd, "rate"), _median(sipp, "rate"))]
        time_ratios = [ratio(_median(sipd, "seconds"), _median(sipp, "seconds"))]
    d_lat, p_lat = _pooled(sipd), _pooled(sipp)
    missing = "" if all(run.complete for run in sipd) else f" ({_registered(sipd)} registered)"
    d_cpu = _median(sipd, "client_cpu_per_registration_ms")
    p_cpu = _median(sipp, "client_cpu_per_registration_ms")
    return [
        [f"**{label}**", "", "", ""],
        ["REGISTER transactions/s", _n(_median(sipd, "rate")) + missing,
         _n(_median(sipp, "rate")), _share(statistics.median(rate_shares))],
        ["time until all registered (s)", _n(_median(sipd, "seconds"), 2),
         _n(_median(sipp, "seconds"), 3), _times(statistics.median(time_ratios))],
        ["per account, start to registered: p50 / max (ms)",
         f"{_ms(d_lat.p50 / 1e3)} / {_ms(d_lat.max / 1e3)}",
         f"{_ms(p_lat.p50 / 1e3)} / {_ms(p_lat.max / 1e3)}",
         f"{_times(ratio(d_lat.p50, p_lat.p50))} / {_times(ratio(d_lat.max, p_lat.max))}"],
        ["CPU per registration: client / Kamailio (ms); client busy",
         f"{d_cpu:.2f} / {_median(sipd, 'kamailio_cpu_per_registration_ms'):.2f}; "
         f"{_median(sipd, 'client_busy'):.0%}",
         f"{p_cpu:.2f} / {_median(sipp, 'kamailio_cpu_per_registration_ms'):.2f}; "
         f"{_median(sipp, 'client_busy'):.0%}",
         _times(ratio(d_cpu, p_cpu))],
        ["per run: REGISTERs at Kamailio / retransmitted / UDP drops",
         _per_run(sipd), _per_run(sipp), ""],
    ]


def _per_run(runs: list[RegisterRun]) -> str:
    def mean(values: list[int]) -> str:
        return f"{statistics.mean(values):,.0f}" if values else "n/a"
    return " / ".join(mean([getattr(r, name) for r in runs])
                      for name in ("registers_received", "retransmissions", "udp_drops"))


def register_table(results: Results, options: Options) -> str:
    rows: list[list[str]] = []
    rounds = f"{options.rounds} rounds" if options.rounds > 1 else "1 round"
    rows += _rows(f"{options.accounts} accounts at once, `accounts.register` ({rounds})",
                  results.register_sipd, results.register_sipp)
    if results.add_all is not None:
        rows += _rows(f"{options.accounts} accounts at once, `accounts.add` (1 run)",
                      [results.add_all], results.register_sipp)
    rows += _rows(f"{options.burst} accounts at once, `accounts.add` ({rounds})",
                  results.burst_sipd, results.burst_sipp)
    return markdown_table(["measurement", "sipd", "sipp baseline", "sipd vs sipp"], rows)


def other_load(results: Results) -> tuple[float, float]:
    runs = results.all_runs()
    wall = sum(r.wall for r in runs)
    average = sum(r.other_cpu for r in runs) / wall if wall else math.nan
    return average, max((r.other_share for r in runs), default=math.nan)


def load_note(results: Results) -> str:
    average, worst = other_load(results)
    note = ("Other processes on the machine (not sipd, sipp, Kamailio or the benchmark) used "
            f"{average:.0%} of a core on average during the registration runs ({worst:.0%} in "
            "the busiest run).")
    if worst > 2 * OTHER_LOAD_WARNING or average > OTHER_LOAD_WARNING:
        note = ("**Warning: the machine was busy with other work during this run; the "
                "registration numbers and their ratios are not representative. Run "
                "`python -m bench --only sip` again on a quiet machine.** " + note)
    return note


def _round_list(values: list[float], form: str) -> str:
    return ", ".join(format(v, form) for v in values)


# Issue 15 ("SIP parse ≤ 25 µs per message of the corpus"; "REGISTER transactions/s ≥ 25 % of
# sipp's"): the branch that sped up the parser against main (db3438e), measured 2026-12-06
# 20:30-20:45 UTC on this machine in the same window, alternating, with other processes busy
# on its 2 cores (load average 1.2-4.6). The parser's figures are the corpus row above, each
# reader's best loop; instructions are counted by valgrind (cachegrind): they do not depend on
# the load. Its second step against main (baad8b7): 2026-12-06 23:12-23:13 UTC, the same way.
BEFORE_AFTER = [
    "### Before and after (issue 15)",
    "",
    "| measurement (same window, alternating)                  | main (db3438e)   "
    "| now              |",
    "|---------------------------------------------------------|------------------"
    "|------------------|",
    "| parse_datagram, corpus, µs per message (3 runs each)    | 62.7, 68.5, 60.0 "
    "| 25.9, 28.3, 27.2 |",
    "| parse vs split lines                                    | 76×, 79×, 74×    "
    "| 32×, 33×, 32×    |",
    "| + core accessors, µs per message                        | 77.0, 84.7, 73.9 "
    "| 47.7, 52.6, 49.7 |",
    "| CPU instructions per message: parse / + core accessors  | 563k / 654k      "
    "| 233k / 377k      |",
    "| `accounts.register`, 200 accounts: REGISTER tx/s        | 502, 731, 378    "
    "| 626, 635, 348    |",
    "| ... sipp in the same rounds: REGISTER tx/s              | 8,474, 13,384, 6,907 "
    "| (same)       |",
    "| ... sipd CPU per registration (ms)                      | 2.15, 1.85, 2.35 "
    "| 1.90, 2.05, 2.25 |",
    "| 10,000 accounts at start (accounts bench): REGISTER tx/s | 924              "
    "| 1,160, 1,272     |",
    "| ... sipp in the same runs: REGISTER tx/s                | 11,200           "
    "| 19,977, 20,028   |",
    "| ... sipd CPU per account, start included (ms)           | 2.68             "
    "| 2.34, 2.29       |",
    "",
    "Second step, against the first (\"now\" above, main at baad8b7), the same window, "
    "alternating, 23:13 UTC, load average 0.9-1.9; instructions by cachegrind:",
    "",
    "| measurement                                             | main (baad8b7)   "
    "| now              |",
    "|---------------------------------------------------------|------------------"
    "|------------------|",
    "| parse_datagram, corpus, µs per message (3 runs each)    | 37.8, 36.6, 33.3 "
    "| 19.7, 14.1, 18.9 |",
    "| + core accessors, µs per message                        | 68.2, 65.4, 59.9 "
    "| 56.3, 44.8, 53.3 |",
    "| CPU instructions per message: parse / + core accessors  | 234k / 379k      "
    "| 134k / 321k      |",
    "",
    "**Parsing**: met. The parse rows of the table above (23:12 UTC, the whole `--only sip` "
    "run) read the corpus at 12.5 µs per message, against 25.7 then: 1.7× fewer "
    "instructions than the first step and about 2× less CPU time in the same window "
    "(4.2× fewer instructions than db3438e). "
    "What changed, first step: regexes read the usual shape of a SIP URI, a name-addr, a Via, "
    "a Digest challenge and a whole header section at once, and `find` the end of the head; "
    "anything else goes to the general reader, which has the last word "
    "(tests/sip/test_fast_paths.py reads the corpus, the fuzz seeds and thousands of "
    "mutations both ways and requires the same result or the same error, at the same "
    "moment); a plain Via, From, To, Contact, Route or Record-Route is checked by its regex "
    "when the message is read and built only when an accessor asks (once). Second step: "
    "every core header is checked in one pass over the fields, each value of the usual shape "
    "by one regex call and no Python step (a Via, an address, a Contact with its expires, a "
    "list line of several of them, a Call-ID, a CSeq, a Max-Forwards, an Expires), and parsed "
    "only when an accessor asks; the usual Request-Line is one regex; the line ends are "
    "checked by two `in` tests on the head without its CRLFs rather than five scans of it; "
    "a datagram whose head has only CRLFs ends at its first CRLFCRLF with no further search. "
    "What is left per message: the split of ~13 header lines (a third of the time), the "
    "regex engine on each core value, the Content-Length lookup, building the Request-URI.",
    "",
    "The 10,000-account rows are bench/accounts_register.py (`--only accounts`) without its "
    "refresh watch, 20:40-20:43 UTC: sipd 26-38 % faster than main there, but sipp ran faster "
    "in those rounds.",
    "",
    "**Registration**: not met; sipd reached 5-9 % of sipp's transaction rate. The parser "
    "is a small share of a registration: sipd spends about 2 ms of CPU per registration (two "
    "REGISTER transactions, three RPC events), sipp 0.06-0.1 ms. Where the registering "
    "daemon's time went (py-spy, 400 Hz, two recordings of two runs of 300 accounts "
    "registering and unregistering at shutdown; shares of samples): socket system calls "
    "(UDP sendto to "
    "Kamailio, recvfrom, epoll; the loopback delivery runs in the sender's time) 9-44 %, "
    "trio's scheduler, task spawns and memory channels 14-24 %, SIP parsing with its accessors "
    "11-20 %, events and RPC (JSON, WebSocket frames) 7-10 %, the SIP stack's trio glue "
    "(transport, client transactions, routing) 6-7 %, the account's registration logic 4-7 %, "
    "building and serialising requests 3-6 %, the transaction layer 1-3 %, the digest 2-3 %. "
    "Even with every SIP core cost (parsing, building, transactions, digest: 20-30 %) "
    "removed, a registration would still cost ~1.5 ms, 10-15 % of sipp's rate at best; and "
    "the daemon was busy only 30-70 % of the run (the other processes on the 2 cores took "
    "the rest). Reaching 25 % needs fewer scheduler hops per transaction (today each "
    "REGISTER gets a task of its own, a memory channel for its responses and two channel "
    "hops back to the account's task), batched event delivery, and a quiet machine to "
    "measure on.",
]


def section(results: Results, options: Options) -> str:
    parse = results.parse
    versions = ", ".join(f"{name} {version}" for name, version in results.versions.items())
    register = results.register_sipd
    lines = [
        "## SIP parsing and registration (`make bench`)",
        "",
        f"Measured {machine()}; {versions}. The SIP benchmark took {results.seconds:.0f} s.",
        "",
        "Run it alone with `python -m bench --only sip` (`--quick` to try it, `--accounts`, "
        "`--burst`, `--rounds`); `--profile sip-parse`, `--profile sip-register` and "
        "`--profile sip-add` print where the parser's and the registering daemon's time goes.",
        "",
        "### Parsing",
        "",
        parse_table(parse),
        "",
        "Each message of the benchmark's corpus (`bench/sip_corpus.py`: what a registration, a "
        "call and a chat put on the wire) read by `parse_datagram`, as the UDP transport does; "
        "\"+ core accessors\" then also reads top Via, CSeq, Call-ID, From and To, as the "
        "transaction layer does for every message (each returns a copy of the value parsing "
        "checked and kept, `sipd/sip/parsed_headers.py`: a value of the usual shape is checked "
        "by a regex when the message is read and parsed by the first accessor that asks for "
        "it, once; any other is parsed when read). "
        "Baselines on the same bytes: **split lines** is `data.split(b\"\\r\\n\")`, the floor "
        "of any line-based reader; **header dict** splits the head into lines, decodes it and "
        "partitions each line on `:` into a dict, a reader that checks nothing. \"parse vs "
        "split\" is how many times the baseline's time the parser takes. The stream row feeds "
        f"the corpus {sip_parse.STREAM_COPIES} times over to one `StreamFramer` in "
        f"{sip_parse.CHUNK} B pieces (it frames and parses each message). Times are CPU time "
        f"of the benchmark process, the best of {parse.repeats} timed loops of "
        f"{parse.budget * 1e3:g} ms each, the readers alternating.",
        "",
        *BEFORE_AFTER,
        "",
        "### Registration with Kamailio",
        "",
        register_table(results, options),
        "",
        load_note(results),
        "",
        "One Kamailio (UDP, digest users in SQLite, registrations in memory, warnings-only log) "
        "serves both clients; each registration is two REGISTER transactions (401 challenge, "
        "then credentials and 200), and transactions/s is 2 × registered accounts over the time "
        "until all are registered. Retransmissions are REGISTERs Kamailio received beyond 2 per "
        "account; UDP drops count machine-wide receive-buffer overflows during the runs.",
        "",
        f"- **`accounts.register`**: the {options.accounts} accounts are in a fresh daemon's "
        "settings file (`register = false`) and one RPC connection asks `accounts.register` for "
        "all of them at once: sipd's SIP stack and registration logic, nothing written to disk.",
        "- **`accounts.add`**: the accounts are added at once (concurrent `accounts.add` calls, "
        f"registrar Kamailio over UDP, expires {sip_register.EXPIRES} s) to a fresh daemon, "
        "each validated and saved to the settings file before the daemon answers: end to end, "
        "what a user adding accounts waits for.",
        "- For sipd, time runs from the first call sent to the last `account.registration` "
        "event with state `registered` (its `time`, the daemon's clock); per account, from its "
        "own call to its `registered` event.",
        "- **sipp** (`bench/sip_register_uac.xml`: REGISTER, 401, REGISTER with credentials, "
        "200; a CSV of the same users) starts every user at once (`-r 10000`, a 1 MiB socket "
        "buffer: with its default 64 KiB, 200 answers arriving together overflow it); its time "
        "runs from its first REGISTER to its last 200 (`-trace_msg`), per user from the first "
        "REGISTER to the 200 (`-trace_rtt`, 1 ms steps).",
        "- CPU per registration is the client's CPU time over the run (sipd's includes its RPC "
        "work; sipp's its whole process) divided by the accounts, from /proc in clock ticks "
        "(10 ms, so Kamailio's small share is coarse); \"busy\" is that CPU time over the "
        "run's wall time (100 % = one core): a sipd near 100 % set the pace itself.",
        f"- Rounds: {options.rounds}, sipp then sipd, a fresh daemon each time; the table shows "
        "the median round of each and the median of the rounds' ratios, latencies over all "
        "rounds. The slow `accounts.add` run of all accounts runs once, against the median sipp "
        "run.",
        "",
        "Per round — "
        "`accounts.register` sipd transactions/s: "
        f"{_round_list([r.rate for r in register], ',.0f')}; sipp: "
        f"{_round_list([r.rate for r in results.register_sipp], ',.0f')}; "
        f"{options.burst} accounts added, sipd seconds until all registered: "
        f"{_round_list([r.seconds for r in results.burst_sipd], '.2f')}; sipp: "
        f"{_round_list([r.seconds for r in results.burst_sipp], '.3f')}.",
    ]
    add_all = results.add_all
    if add_all is not None:
        lines += ["", f"In the `accounts.add` run of {options.accounts} accounts the daemon "
                  f"answered the last `accounts.add` {add_all.detail['answered']:.1f} s after the "
                  f"first was sent ({add_all.detail['answered'] / options.accounts * 1e3:.0f} ms "
                  "per account on average: the daemon handles one add at a time), and the "
                  f"first account was `registering` {add_all.detail['first_registering'] * 1e3:.0f}"
                  " ms after the first call."]
    return "\n".join(lines)


def run(options: Options, write: bool) -> str:
    started = time.monotonic()
    _say("SIP parsing (CPU time, best of repeats) ...")
    parse = sip_parse.measure(options.parse_budget, options.parse_repeats, _say)
    with tempfile.TemporaryDirectory(prefix="sipd-sip-bench-") as tmp:
        _say(f"registration: Kamailio with {max(options.accounts, options.burst)} users, sipp "
             "and fresh sipd daemons ...")
        results = run_registrations(options, Path(tmp), Results(parse))
    results.versions = sip_register.versions()
    results.seconds = time.monotonic() - started
    text = section(results, options)
    print()
    print(text)
    if write:
        from .report import write_section
        print(f"\nwrote the {SECTION} section of {write_section(SECTION, text)}")
    return text


# --- profiles ------------------------------------------------------------------------------------

def profile_parse() -> str:
    report = sip_parse.profile()
    print(report)
    return report


def profile_register(options: Options, mode: str = "register", out: Path | None = None) -> str:
    """sipd under cProfile while it registers `options.accounts` accounts (`mode` "register"
    or "add", see sip_register.run_sipd)."""
    with tempfile.TemporaryDirectory(prefix="sipd-sip-profile-") as tmp:
        base = Path(tmp)
        profile_out = (out or base / "sipd.prof").resolve()
        profile_out.unlink(missing_ok=True)
        kamailio = sip_register.start_kamailio(base, options.accounts)
        try:
            _say(f"sipd under cProfile registering {options.accounts} accounts "
                 f"(accounts.{mode}) ...")
            run = sip_register.run_sipd(base, kamailio, options.accounts, mode, options.limit,
                                        "sipd-profiled", profile_out=profile_out)
            _say(f"  {sip_register.describe(run)} (slowed by the profiler)")
        finally:
            kamailio.stop()
        if not profile_out.exists():
            raise RuntimeError("sipd wrote no profile")
        report = hot_spots(profile_out)
        print()
        print(report)
        return report
