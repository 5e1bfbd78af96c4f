"""The presence benchmark: how fast sipd takes in NOTIFYs with PIDF bodies (against lxml
parsing the same documents bare), and what holding many presence subscriptions at Kamailio
costs one daemon (memory and CPU per subscription, time until all are active), in one run.
Writes the `presence-bench` section of docs/performance.md.

    python -m bench --only presence                     # about a minute; writes the doc
    python -m bench --only presence --quick             # a short try; leaves the doc alone
    python -m bench --only presence --subscriptions 200
    python -m bench --profile presence                  # the subscribing daemon under cProfile
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import presence_notify, presence_subs, sip_register
from .presence_notify import NotifyResults
from .presence_subs import SubscriptionRun
from .profile import hot_spots
from .report import machine, markdown_table

SECTION = "presence-bench"
OTHER_LOAD_WARNING = 0.25  # of a core, on average over the subscribing run (as sip-bench)


@dataclass(frozen=True)
class Options:
    budget: float = 0.1  # CPU seconds per timed NOTIFY loop
    repeats: int = 5  # the best of this many timed loops counts
    subscriptions: int = 1000
    hold: float = 10.0  # seconds the subscriptions are held, idle, after all are active
    limit: float = 180.0  # seconds the subscribing run may take before it is cut off


QUICK = Options(budget=0.02, repeats=2, subscriptions=100, hold=2.0, limit=60.0)


def _say(text: str) -> None:
    print(text, flush=True)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}" if seconds < 1e-4 else f"{seconds * 1e6:,.0f}"


def _times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}×"


def notify_table(results: NotifyResults) -> str:
    header = ["document", "PIDF bytes", "NOTIFY in → presence.state out: /s (µs each)",
              "of it, the PIDF read (µs)", "lxml bare: docs/s (µs each)", "NOTIFY vs lxml",
              "PIDF read vs lxml"]
    rows = []
    for d in results.documents:
        rows.append([d.name, str(d.size), f"{d.rate('full'):,.0f} ({_us(d.seconds['full'])})",
                     _us(d.seconds["payload"]),
                     f"{d.rate('lxml'):,.0f} ({_us(d.seconds['lxml'])})",
                     _times(d.times("full")), _times(d.times("payload"))])
    count = len(results.documents)
    total = {k: sum(d.seconds[k] for d in results.documents) for k in ("full", "payload", "lxml")}
    rows.append(["**the corpus, each once**", str(sum(d.size for d in results.documents)),
                 f"{count / total['full']:,.0f} ({_us(total['full'] / count)})",
                 _us(total["payload"] / count),
                 f"{count / total['lxml']:,.0f} ({_us(total['lxml'] / count)})",
                 _times(total["full"] / total["lxml"]), _times(total["payload"] / total["lxml"])])
    return markdown_table(header, rows)


def subscriptions_table(run: SubscriptionRun, core_bytes: float) -> str:
    lat = run.latency
    missing = "" if run.complete else f" (only {run.active} of {run.count} active)"
    rows = [
        ["subscriptions active / asked", f"{run.active} / {run.count}{missing}"],
        ["time until all active (s)", f"{run.seconds:.2f}"],
        ["subscriptions active per second", f"{run.rate:,.0f}"],
        ["per subscription, call to active: p50 / p99 / max (ms)",
         f"{lat.p50:,.0f} / {lat.p99:,.0f} / {lat.max:,.0f}"],
        ["the last `presence.subscribe` answered after (s)", f"{run.answered:.2f}"],
        ["`presence.state` events", f"{run.states:,}"],
        ["sipd memory (RSS): before → all active → held (MiB)",
         f"{run.rss_before / 2**20:.1f} → {run.rss_after / 2**20:.1f} → "
         f"{run.rss_held / 2**20:.1f}"],
        ["memory per subscription: all active / held (KiB)",
         f"{run.memory_per_subscription / 1024:.1f} / "
         f"{run.held_memory_per_subscription / 1024:.1f}"],
        ["of it, the subscription's own objects (in process, tracemalloc; KiB)",
         f"{core_bytes / 1024:.1f}"],
        ["CPU per subscription while subscribing: sipd / Kamailio (ms)",
         f"{run.cpu_per_subscription_ms:.2f} / {run.kamailio_cpu_per_subscription_ms:.2f}"],
        ["sipd busy while subscribing (share of one core)",
         f"{run.sipd_cpu / run.wall:.0%}" if run.wall else "n/a"],
        [f"sipd CPU while holding them {run.hold_seconds:.0f} s (share of one core)",
         f"{run.hold_cpu_share:.1%}"],
        ["SUBSCRIBEs at Kamailio (challenged ones too) / UDP drops",
         f"{run.subscribes_received:,} / {run.udp_drops:,}"],
    ]
    return markdown_table(["measurement", "sipd"], rows)


def load_note(run: SubscriptionRun) -> str:
    share = run.other_cpu / run.wall if run.wall else math.nan
    note = (f"Other processes on the machine (not sipd, Kamailio or the benchmark) used "
            f"{share:.0%} of a core on average during the subscribing run.")
    if share > OTHER_LOAD_WARNING:
        note = ("**Warning: the machine was busy with other work during this run; the times "
                "(not the CPU and memory per subscription) are not representative. Run "
                "`python -m bench --only presence` again on a quiet machine.** " + note)
    return note


def section(notify: NotifyResults, run: SubscriptionRun, core_bytes: float, options: Options,
            seconds: float, versions: str) -> str:
    return "\n".join([
        "## Presence (`make bench`)",
        "",
        f"Measured {machine()}; {versions}. The presence benchmark took {seconds:.0f} s. Run "
        "it alone with `python -m bench --only presence` (`--quick` to try it, "
        "`--subscriptions`); `--profile presence` prints where the subscribing daemon's time "
        "goes.",
        "",
        "### NOTIFYs with PIDF bodies",
        "",
        notify_table(notify),
        "",
        "An active subscription (`sipd.presence.subscriber.Subscriber`, in process, no "
        "sockets) is fed NOTIFYs carrying each document (`bench/presence_notify.py`: what "
        "baresip, linphone and a rich RFC 4479/4480/4482 client publish, Kamailio's document "
        "for a presentity with no publication, and a person on 8 devices), each as datagram "
        "bytes, one after the other in its dialog. **NOTIFY in → presence.state out** is all "
        "the daemon does with one: `parse_datagram`, the subscriber's checks (Event, "
        "Subscription-State, dialog, CSeq) and its 200 built as bytes; the PIDF parsed safely "
        "(no entities, DTDs or network) into the data model, RPID and CIPID and reduced to "
        "the view `presence.state` carries (the daemon's own `Subscription.notified`); the "
        "event published on an `EventBus` with one subscribed client (its JSON made once). "
        "**The PIDF read** is `PresenceReader.read` alone. The baseline, **lxml bare**, is "
        "`etree.fromstring` of the same body with the same safe parser options, the least "
        "any reader does. Times are CPU time of the benchmark process, the best of "
        f"{notify.repeats} timed loops of {notify.budget * 1e3:g} ms each, alternating.",
        "",
        f"### {run.count:,} subscriptions held by one daemon at Kamailio",
        "",
        subscriptions_table(run, core_bytes),
        "",
        load_note(run),
        "",
        "One Kamailio (presence, UDP, warnings-only log; a presentity that published nothing "
        "is shown open, \"Available\", so every NOTIFY carries PIDF) and a fresh sipd with one "
        "account registered there. One RPC connection asks `presence.subscribe` for "
        f"{run.count:,} different contacts at once (the daemon answers 32 calls of one "
        "connection at a time); each SUBSCRIBE is challenged (407) and sent again with "
        "credentials, then Kamailio answers 200 and NOTIFYs. Time runs from the first call to "
        "the last `presence.subscription` event with state `active` (its `time`, the daemon's "
        "clock); per subscription, from its call to its `active` event. Memory is the "
        "daemon's resident set before the first call, once all are active and their states "
        f"read, and after holding them {run.hold_seconds:.0f} s (right after, the NOTIFYs' "
        "server transactions still wait out Timer J, 32 s over UDP); CPU is the daemon's "
        "and Kamailio's CPU time over the run, from /proc in 10 ms clock ticks. The "
        "\"the subscription's own objects\" is what Python allocates for one in process "
        "(`core_memory_per_subscription` in `bench/presence_notify.py`: the subscriber and "
        "its dialog, the SUBSCRIBE it refreshes with, the daemon's record of it with the "
        "contact's latest state); the rest of the resident memory per subscription is its task "
        "and transactions in the daemon, the events kept for replay, and the allocator's "
        "slack. The "
        "benchmark's daemon takes up to 20,000 queued events per client (`rpc.client_queue`): "
        "with the default 1,000, a client that subscribes to a thousand contacts at once and "
        "does not read its events as fast as they come (3 per subscription within seconds) is "
        "dropped as too slow.",
    ])


def run(options: Options, write: bool) -> str:
    started = time.monotonic()
    _say("presence NOTIFYs (CPU time, best of repeats) ...")
    notify = presence_notify.measure(options.budget, options.repeats, _say)
    core_bytes = presence_notify.core_memory_per_subscription()
    _say(f"  one active subscription's own objects: {core_bytes / 1024:.1f} KiB")
    with tempfile.TemporaryDirectory(prefix="sipd-presence-bench-") as tmp:
        _say(f"{options.subscriptions} presence subscriptions at Kamailio ...")
        kamailio = presence_subs.start_kamailio(Path(tmp))
        try:
            subscriptions = presence_subs.run_sipd(Path(tmp), kamailio, options.subscriptions,
                                                   options.hold, options.limit)
        finally:
            kamailio.stop()
        _say(f"  {presence_subs.describe(subscriptions)}")
    found = sip_register.versions()
    versions = f"Kamailio {found.get('Kamailio', '?')}"
    text = section(notify, subscriptions, core_bytes, options, time.monotonic() - started,
                   versions)
    print()
    print(text)
    if write:
        from .report import write_section
        print(f"\nwrote the {SECTION} section of {write_section(SECTION, text)}")
    return text


def profile_subscriptions(options: Options, out: Path | None = None) -> str:
    """sipd under cProfile while it subscribes to `options.subscriptions` contacts."""
    with tempfile.TemporaryDirectory(prefix="sipd-presence-profile-") as tmp:
        base = Path(tmp)
        profile_out = (out or base / "sipd.prof").resolve()
        profile_out.unlink(missing_ok=True)
        kamailio = presence_subs.start_kamailio(base)
        try:
            _say(f"sipd under cProfile subscribing to {options.subscriptions} contacts ...")
            run = presence_subs.run_sipd(base, kamailio, options.subscriptions, 1.0,
                                         options.limit, profile_out=profile_out)
            _say(f"  {presence_subs.describe(run)} (slowed by the profiler)")
        finally:
            kamailio.stop()
        if not profile_out.exists():
            raise RuntimeError("sipd wrote no profile")
        report = hot_spots(profile_out)
        print()
        print(report)
        return report
