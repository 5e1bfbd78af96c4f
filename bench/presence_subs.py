"""Many presence subscriptions held by one daemon at Kamailio's presence server: what each
costs sipd in memory and CPU, and how long until all are active.

One Kamailio (tests/peers/kamailio.py with presence, UDP only, warnings-only log; presentities
that published nothing are shown open, "Available", so every NOTIFY carries a PIDF document)
and one fresh sipd with one account registered there. One RPC connection, subscribed to the
`presence` events, asks `presence.subscribe` for `count` different contacts at once
(sip:buddyNNNN@domain); each SUBSCRIBE is challenged (407) and sent again with credentials, and
Kamailio answers 200 and NOTIFYs. Time runs from the first call sent to the last
`presence.subscription` event with state `active` (its `time`, the daemon's clock); per
subscription, from its call to its `active` event. `presence.state` events are counted too.

Memory: the daemon's resident set (VmRSS) before the first call, once all are active (and
their states read) and after holding them `hold` seconds; the differences per subscription.
Right after, the NOTIFYs' server transactions still wait out Timer J (32 s over UDP) with
their request and response. CPU: the daemon's CPU time while subscribing, and over the `hold`
seconds (nothing to refresh in that window: the subscriptions last an hour).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from sipctl.client import Client, connect
from tests.harness.process import SipdProcess
from tests.peers.kamailio import Kamailio

from .procs import BenchSipd, cpu_seconds, rss_bytes
from .sip_register import Meter, _wait_for_file, kamailio_stats
from .stats import Latency

# 1,000 subscriptions make 3,000 events in about a second (subscribing, active, state): more
# than the default rpc.client_queue lets one client fall behind by, and the benchmark's client
# is busy sending the calls while they come.
SIPD_SETTINGS = {"log.level": "warning", "sip.listen_address": "127.0.0.1",
                 "rpc.client_queue": 20000, "rpc.client_queue_bytes": 64 * 2**20}
WATCHER = ("watcher", "watcher-secret")
RPC_TIMEOUT = 120.0
SETTLE = 1.0  # seconds after the last event before memory is read (late NOTIFYs, replies)


def start_kamailio(base: Path) -> Kamailio:
    return Kamailio(base, users=dict([WATCHER]), tls=False, debug=1,
                    features={"presence", "dummypresence"}).start()


def buddy(kamailio: Kamailio, number: int) -> str:
    return f"sip:buddy{number:04d}@{kamailio.domain}"


@dataclass(frozen=True)
class SubscriptionRun:
    count: int
    active: int
    states: int  # presence.state events (one per contact at least)
    seconds: float  # first call -> last active
    answered: float  # first call -> last presence.subscribe reply
    per_subscription: tuple[float, ...] = field(repr=False)  # call -> active, seconds
    rss_before: int = 0  # bytes, the account registered, no subscription
    rss_after: int = 0  # all active and read
    rss_held: int = 0  # after holding them `hold_seconds`
    sipd_cpu: float = math.nan  # CPU seconds while subscribing
    kamailio_cpu: float = math.nan
    other_cpu: float = math.nan
    wall: float = math.nan
    udp_drops: int = 0
    subscribes_received: int = 0  # SUBSCRIBEs Kamailio counted (challenged ones too)
    hold_seconds: float = 0.0
    hold_cpu: float = math.nan  # sipd's CPU seconds over hold_seconds

    @property
    def complete(self) -> bool:
        return self.active == self.count

    @property
    def latency(self) -> Latency:
        return Latency.of(self.per_subscription)

    @property
    def memory_per_subscription(self) -> float:
        return (self.rss_after - self.rss_before) / self.count

    @property
    def held_memory_per_subscription(self) -> float:
        return (self.rss_held - self.rss_before) / self.count

    @property
    def cpu_per_subscription_ms(self) -> float:
        return self.sipd_cpu / self.active * 1e3 if self.active else math.nan

    @property
    def kamailio_cpu_per_subscription_ms(self) -> float:
        return self.kamailio_cpu / self.active * 1e3 if self.active else math.nan

    @property
    def hold_cpu_share(self) -> float:
        """sipd's CPU while holding, as a share of one core."""
        return self.hold_cpu / self.hold_seconds if self.hold_seconds else math.nan

    @property
    def rate(self) -> float:
        return self.active / self.seconds if self.seconds > 0 else math.nan


async def _register(sipd: SipdProcess, kamailio: Kamailio) -> str:
    async with connect(sipd.endpoint) as client:
        await client.call("events.subscribe", {"topics": ["accounts"]})
        account = await client.call("accounts.add", {
            "aor": kamailio.aor(WATCHER[0]), "password": WATCHER[1],
            "registrar": kamailio.proxy_uri("udp")})
        with trio.fail_after(20):
            while True:
                message = await client.next_event(timeout=20)
                data = message["data"]
                if message["name"] == "account.registration" \
                        and data["account"] == account["id"]:
                    if data["state"] == "registered":
                        return str(account["id"])
                    if data["state"] == "failed":
                        raise RuntimeError(f"the benchmark's account did not register: {data}")


async def _subscribe_all(sipd: SipdProcess, account: str, targets: list[str], limit: float
                         ) -> tuple[dict[str, float], dict[str, float], dict[str, float], int,
                                    float, float]:
    """presence.subscribe to every target at once; waits (at most `limit` s) until all are
    active. Returns per target the time of its call, its reply and its `active` event, how
    many presence.state events came, and when the first call and the last event were."""
    started: dict[str, float] = {}
    answered: dict[str, float] = {}
    active: dict[str, float] = {}
    states = 0
    all_active = trio.Event()
    last_event = math.nan

    async def watch(client: Client) -> None:
        nonlocal states, last_event
        async for message in client.events:
            if message.get("method") != "event":
                continue
            params = message["params"]
            data = params["data"]
            if params["name"] == "presence.subscription" and data.get("state") == "active":
                active.setdefault(data["to"], params["time"])
            elif params["name"] == "presence.state":
                states += 1
            last_event = time.time()
            if len(active) == len(targets):
                all_active.set()

    async def start(client: Client, target: str) -> None:
        started[target] = time.time()
        await client.call("presence.subscribe", {"account": account, "to": target},
                          timeout=RPC_TIMEOUT)
        answered[target] = time.time()

    first = time.time()
    async with connect(sipd.endpoint) as client:
        await client.call("events.subscribe", {"topics": ["presence"]})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, client)
            with trio.move_on_after(limit):
                async with trio.open_nursery() as starters:
                    for target in targets:
                        starters.start_soon(start, client, target)
                await all_active.wait()
            # the states of the last ones, and late replies: until the events stop
            while time.time() - last_event < SETTLE:
                await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
    return started, answered, active, states, first, last_event


def run_sipd(base: Path, kamailio: Kamailio, count: int, hold: float, limit: float,
             name: str = "sipd-presence", profile_out: Path | None = None) -> SubscriptionRun:
    """A fresh sipd subscribes to `count` contacts and holds them `hold` seconds; it is stopped
    (unsubscribing) after. With `profile_out`, the daemon runs under cProfile
    (bench/profiled_sipd.py) while it subscribes and writes its profile there."""
    sipd: SipdProcess
    if profile_out is None:
        sipd = SipdProcess(base, dict(SIPD_SETTINGS), name=name)
    else:
        sipd = BenchSipd(base / name, profile_out=profile_out)
        sipd.settings.update(SIPD_SETTINGS)
    try:
        sipd.start()
        assert sipd.proc is not None
        pid = sipd.proc.pid
        account = trio.run(_register, sipd, kamailio)
        targets = [buddy(kamailio, n) for n in range(count)]
        meter = Meter(kamailio, lambda: cpu_seconds(pid))
        subscribes_before = kamailio_stats(kamailio).get("core:rcv_requests_subscribe", 0)
        rss_before = rss_bytes(pid)
        if isinstance(sipd, BenchSipd):
            sipd.profiling(True)
        start = meter.sample()
        started, answered, active, states, first, _last = trio.run(
            _subscribe_all, sipd, account, targets, limit)
        end = meter.sample()
        if isinstance(sipd, BenchSipd) and profile_out is not None:
            sipd.profiling(False)
            _wait_for_file(profile_out, 10)
        rss_after = rss_bytes(pid)
        subscribes = kamailio_stats(kamailio).get("core:rcv_requests_subscribe", 0) \
            - subscribes_before
        hold_start = cpu_seconds(pid)
        time.sleep(hold)
        hold_cpu = cpu_seconds(pid) - hold_start
        rss_held = rss_bytes(pid)
    except BaseException:
        print(f"sipd log:\n{sipd.log()[-3000:]}")
        raise
    finally:
        sipd.stop()
    measured: dict[str, Any] = Meter.between(start, end)
    measured.pop("client_cpu")
    return SubscriptionRun(
        count, len(active), states,
        max(active.values(), default=math.nan) - first,
        max(answered.values(), default=math.nan) - first,
        tuple(active[t] - started[t] for t in active if t in started),
        rss_before, rss_after, rss_held, end[1] - start[1], subscribes_received=subscribes,
        hold_seconds=hold, hold_cpu=hold_cpu, **measured)


def describe(run: SubscriptionRun) -> str:
    lat = run.latency
    return (f"sipd {run.active}/{run.count} subscriptions active in {run.seconds:.2f} s "
            f"({run.rate:,.0f}/s; the last presence.subscribe answered after "
            f"{run.answered:.2f} s), {run.states} presence.state events; per subscription "
            f"p50 {lat.p50:.0f} ms, max {lat.max:.0f} ms; memory "
            f"{run.memory_per_subscription / 1024:.1f} KiB per subscription "
            f"({run.rss_before / 2**20:.1f} -> {run.rss_after / 2**20:.1f} MiB; "
            f"{run.held_memory_per_subscription / 1024:.1f} KiB after holding); CPU sipd "
            f"{run.cpu_per_subscription_ms:.2f} ms, Kamailio "
            f"{run.kamailio_cpu_per_subscription_ms:.2f} ms per subscription; holding: "
            f"{run.hold_cpu_share:.1%} of a core over {run.hold_seconds:.0f} s; Kamailio got "
            f"{run.subscribes_received} SUBSCRIBEs, {run.udp_drops} UDP drops, other "
            f"{run.other_cpu / run.wall:.0%}")
