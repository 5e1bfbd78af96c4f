"""The trio side of one account's registration: runs the sans-I/O `Registration`.

One task per registered account. It locates the registrar (or outbound proxy), feeds the
state machine the time, the final responses and the failures of its REGISTERs, carries out
what it asks (send, wait), and publishes every state change as `account.registration`.

The Contact it registers must be where the registrar can reach us:
- over TCP/TLS without a listener of our own (TLS without a certificate), that is the local
  end of our connection to the registrar, so the connection is opened before the REGISTER
  that starts a round is built (`_connect_ahead`);
- when the 2xx shows that the address we registered is not the one we would use now (the
  registrar saw another address in `received`/`rport`, or the connection changed), it
  registers once more at once with the right one, removing the old binding in the same
  REGISTER (`_heal_contact`).
The registrar is located again before each retry after a failure, so DNS changes and the
failover order of the locator count.
"""

from __future__ import annotations

import logging
import math
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from sipd.sip.header_values import Address
from sipd.sip.trio.handles import TransactionTimeout
from sipd.sip.trio.locator import LocationError, Locator, Target
from sipd.sip.trio.transport import TransportError
from sipd.sip.uri import SipUri

from .model import AccountConfig
from .outbound import first_hop
from .registration import Registration, RegistrationState, SendRegister, StateChanged
from .timing import Backoff

log = logging.getLogger(__name__)

STREAMS = ("tcp", "tls")
LOCATE_TIME_LIMIT = 30.0  # seconds a new lookup before a retry may take (3 DNS stages)

# How long to wait before locating the registrar again when DNS gave nothing usable: like a
# transient failure (30 s doubling, 10 min cap, +0..25 % jitter so accounts spread out).
LOCATE_BACKOFF = Backoff(30.0, 600.0)

# New REGISTER attempts out at once, over all accounts. A daemon starting with 10,000 accounts
# sent 10,000 REGISTERs in one go: the answers came faster than they were read, and most
# REGISTERs were sent again by their retransmission timers (5.3 per registration instead of
# 2). 50 in flight keep the registrar busy while every answer is read before its REGISTER is
# retransmitted (with 10,000 accounts: 200 in flight, 2.5 REGISTERs per registration and
# 698 transactions/s; 50, 2.0 and 1,250/s; 20, 2.0 and 1,032/s). The REGISTER that answers
# a challenge does not queue again (SendRegister.continues): behind 10,000 new attempts, no
# registration (and at shutdown no unregistration) would finish before all had started.
IN_FLIGHT = 50

# A new attempt gives its place back after this long even when unanswered: a registrar that
# is down (Timer F: 32 s) must not hold the places every other account waits for.
SLOT_HOLD = 2.0

_RNG = random.Random()  # shared: one generator's state is 2.5 KB, and accounts are many

Publish = Callable[[dict[str, Any]], None]
T = TypeVar("T")
Step = Callable[[float], list]


class _Holds:
    """The places paced() work holds on one limiter, with when each is given back at the
    latest, in the order taken. One keeper task (a system task, started when the first place
    is taken and ending when none is held) gives back the places held too long: no task per
    REGISTER (a nursery and a task each cost ~9 % of a registration's CPU). Every hold is
    `SLOT_HOLD` long, so the first taken is the first due. The limiter is passed in, not kept:
    `_HOLDS` is keyed weakly by it."""

    def __init__(self) -> None:
        self.until: dict[object, float] = {}  # token -> give back at; insertion order
        self.keeping = False

    def take(self, limiter: trio.CapacityLimiter, token: object, until: float) -> None:
        self.until[token] = until
        if not self.keeping:
            self.keeping = True
            trio.lowlevel.spawn_system_task(self._keep, limiter,
                                            name="sipd.accounts.paced-keeper")

    def give_back(self, limiter: trio.CapacityLimiter, token: object) -> None:
        if self.until.pop(token, None) is not None:
            limiter.release_on_behalf_of(token)

    async def _keep(self, limiter: trio.CapacityLimiter) -> None:
        try:
            while self.until:
                token, until = next(iter(self.until.items()))
                if trio.current_time() < until:
                    await trio.sleep_until(until)
                    continue
                self.give_back(limiter, token)
        finally:
            self.keeping = False


_HOLDS: weakref.WeakKeyDictionary[trio.CapacityLimiter, _Holds] = weakref.WeakKeyDictionary()


async def paced(limiter: trio.CapacityLimiter, hold: float, work: Callable[[], Awaitable[T]],
                still_wanted: Callable[[], bool] = lambda: True) -> T | None:
    """`await work()` once `limiter` has a place for it, holding the place until it returns
    or for `hold` seconds, whichever comes first. None, without calling `work`, when it is
    no longer wanted once its turn comes. Every call on one limiter passes the same `hold`
    (`_Holds` gives places back in the order taken: a shorter one would wait its elders)."""
    token = object()
    await limiter.acquire_on_behalf_of(token)
    if not still_wanted():
        limiter.release_on_behalf_of(token)
        return None
    holds = _HOLDS.get(limiter)
    if holds is None:
        holds = _HOLDS[limiter] = _Holds()
    holds.take(limiter, token, trio.current_time() + hold)
    try:
        return await work()
    finally:
        holds.give_back(limiter, token)


class RegistrarClient:
    """Keeps one account registered until stopped."""

    def __init__(self, account: AccountConfig, stack: Any, locator: Locator,
                 publish: Publish, contact_user: str,
                 in_flight: trio.CapacityLimiter | None = None,
                 closing: Callable[[], bool] = lambda: False) -> None:
        self.account = account
        # True once the daemon stops: a REGISTER that binds (a refresh) waiting for its turn
        # is then not sent; the places go to the unregistrations.
        self.closing = closing
        # Shared by every account: REGISTER transactions at once (see IN_FLIGHT).
        self.in_flight = in_flight or trio.CapacityLimiter(IN_FLIGHT)
        self.stack = stack
        self.locator = locator
        self.publish = publish
        self.contact_user = contact_user
        self.targets: list[Target] = []
        self._secure_aor = account.aor_uri.secure  # parsed once: each REGISTER asks
        self.registration = Registration(account, contact=self._contact,
                                         user_agent=stack.config.user_agent)
        self.last_data: dict[str, Any] = {"account": account.id, "state": "unregistered"}
        # (step, begins_round): begins_round steps may send a REGISTER with a fresh Contact
        self._inputs, self._input_queue = \
            trio.open_memory_channel[tuple[Step, bool]](64)
        self._stopped = trio.Event()
        self._stop_requested = False
        self._cancel_scope = trio.CancelScope()
        self._preparing: trio.CancelScope | None = None  # a lookup or connect stop() ends
        self._contact_target: Target | None = None  # the server our Contact is meant for
        self._connect_failure: tuple[tuple[str, str, int], str] | None = None
        self._healing = False
        self._locate_failures = 0
        self._nursery: trio.Nursery | None = None

    # -- what the manager calls -----------------------------------------------------------

    def stop(self, wait: float) -> None:
        """Unregister (bounded by `wait` seconds); run() returns when that is done."""
        self._stop_requested = True
        if self._preparing is not None:  # a lookup or a connection no REGISTER will need
            self._preparing.cancel()
        self._feed(lambda now: self.registration.stop(now, wait=wait))

    def cancel(self) -> None:
        """End run() now, whatever it is doing (after stop() took longer than promised)."""
        self._cancel_scope.cancel()

    def network_changed(self) -> None:
        """Re-register now (the Contact is worked out again); a wrong password waits."""
        self._feed(self.registration.network_changed, begins_round=True)

    def register_now(self) -> None:
        """What accounts.register asks: register again now, also after a failure of any
        kind (the backoff starts over)."""
        def step(now: float) -> list:
            if self.registration.phase in ("waiting", "idle"):
                return self.registration.start(now)
            return self.registration.network_changed(now)
        self._feed(step, begins_round=True)

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    async def run(self) -> None:
        try:
            with self._cancel_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    if await self._locate_until_found():
                        await self._prepare(lambda: self._connect_ahead(self.targets[0]))
                    if self._stop_requested:  # before a REGISTER went out: nothing to undo
                        if self.last_data.get("state") != "unregistered":
                            self._publish({"account": self.account.id,
                                           "state": "unregistered"})
                    else:
                        self._apply(self.registration.start(trio.current_time()))
                        await self._loop()
                    nursery.cancel_scope.cancel()
        finally:
            self._stopped.set()

    # -- inside ---------------------------------------------------------------------------

    def _feed(self, step: Step, begins_round: bool = False) -> None:
        try:
            self._inputs.send_nowait((step, begins_round))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            log.warning("%s: registration input dropped (queue full)", self.account.id)

    async def _locate(self) -> None:
        """Locate the first hop (RFC 3263); LocationError when nothing usable came of it."""
        targets = await self.locator.locate(first_hop(self.account, self.account.registrar_uri))
        self.targets = targets
        self.registration.set_targets(len(targets))
        self._contact_target = targets[0]

    async def _prepare(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run a lookup or a connect that stop() may cut short (nothing needs it then)."""
        if self._stop_requested:
            return
        try:
            with trio.CancelScope() as self._preparing:
                await work()
        finally:
            self._preparing = None

    async def _locate_until_found(self) -> bool:
        """Locate the registrar, retrying with backoff while DNS gives nothing usable (at
        once after a network change); False when stopped first."""
        while not self._stop_requested:
            self._publish({"account": self.account.id, "state": "registering"})
            try:
                await self._prepare(self._locate)
            except LocationError as exc:
                self._locate_failures += 1
                delay = LOCATE_BACKOFF.delay(self._locate_failures, _RNG)
                self._publish({"account": self.account.id, "state": "failed",
                               "reason": f"cannot locate the registrar: {exc}",
                               "retry_in": round(delay, 1),
                               "retry_at": round(time.time() + delay, 3)})
                with trio.move_on_after(delay):
                    while not self._stop_requested:
                        _step, begins_round = await self._input_queue.receive()
                        if begins_round:  # the network changed, or accounts.register
                            break
                continue
            if self.targets:
                self._locate_failures = 0
                return True
        return False

    async def _loop(self) -> None:
        while not (self.registration.is_stopped and self._stop_reported):
            deadline = self.registration.next_deadline()
            if self.registration.phase == "registered" and self.closing():
                # The daemon stops: no refresh (it would be built, then never sent); the
                # stop comes as an input.
                deadline = None
            received: tuple[Step, bool] | None = None
            with trio.move_on_at(math.inf if deadline is None else deadline):
                received = await self._input_queue.receive()
            if received is not None:
                step, begins_round = received
                if begins_round:
                    await self._prepare(lambda: self._connect_ahead(self._contact_target
                                                                    or self.targets[0]))
                self._apply(step(trio.current_time()))
                continue
            if self.registration.phase == "waiting":  # a retry after a failure is due
                await self._prepare(self._relocate)
                await self._prepare(lambda: self._connect_ahead(self.targets[0]))
            elif self.registration.phase == "registered":  # a refresh is due
                await self._prepare(lambda: self._connect_ahead(self._contact_target
                                                                or self.targets[0]))
            self._apply(self.registration.timer(trio.current_time()))

    async def _relocate(self) -> None:
        """Locate again before a retry (DNS may have changed; the locator now puts the
        servers that failed last); on failure the servers known are tried again."""
        with trio.move_on_after(LOCATE_TIME_LIMIT):
            try:
                await self._locate()
            except LocationError as exc:
                log.info("%s: locating the registrar again failed, trying the servers "
                         "known: %s", self.account.id, exc)

    @property
    def _stop_reported(self) -> bool:
        return self.registration.state is RegistrationState.UNREGISTERED

    def _apply(self, actions: list) -> None:
        now = trio.current_time()
        for action in actions:
            if isinstance(action, SendRegister):
                assert self._nursery is not None
                self._nursery.start_soon(self._send, action)
            elif isinstance(action, StateChanged):
                self._publish(action.data(self.account.id, now, time.time()))

    def _publish(self, data: dict[str, Any]) -> None:
        if data == self.last_data:  # "registering" while locating, then from the machine
            return
        self.last_data = data
        self.publish(data)

    def _needs_connection(self, target: Target) -> bool:
        """Over TCP/TLS with no listener of ours, the Contact is our end of the connection."""
        return target.transport in STREAMS and target.transport not in self.stack.ports

    async def _connect_ahead(self, target: Target) -> None:
        """Open the connection a REGISTER to `target` will use, if the Contact depends on
        it. A failure is remembered: the REGISTER then fails at once with it, rather than
        after a second attempt to connect."""
        self._connect_failure = None
        if not self._needs_connection(target):
            return
        transports = self.stack.transports
        if transports.find_connection(target.transport, target.address, target.port):
            return
        try:
            # server_name: TLS checks the certificate against the URI's domain (RFC 5922)
            await transports.connect(target.transport, target.address, target.port,
                                     target.server_name)
        except TransportError as exc:
            self._connect_failure = (target.key, str(exc) or "transport error")

    async def _send(self, action: SendRegister) -> None:
        target = self.targets[action.target_index % len(self.targets)]
        request = action.request
        failure, self._connect_failure = self._connect_failure, None
        if failure is not None and failure[0] == target.key:
            self.locator.mark_failed(target)
            self._feed(lambda now: self.registration.transport_failed(now, request, failure[1]))
            return
        try:
            if action.continues or (action.expires == 0 and self.closing()):
                # its attempt already had its turn, or the daemon stops (the manager bounds
                # the unregistrations at once): no queueing
                response = await self.stack.send_request(request, target)
            else:
                paced_response = await paced(
                    self.in_flight, SLOT_HOLD, lambda: self.stack.send_request(request, target),
                    still_wanted=lambda: self.registration.awaits(request) and not (
                        action.expires > 0 and self.closing()))
                if paced_response is None:
                    return  # replaced while it waited (a stop, a new round): never sent
                response = paced_response
        except TransactionTimeout:
            self.locator.mark_failed(target)
            self._feed(lambda now: self.registration.timed_out(now, request))
        except TransportError as exc:
            self.locator.mark_failed(target)
            reason = str(exc) or "transport error"
            self._feed(lambda now: self.registration.transport_failed(now, request, reason))
        else:
            if response.status >= 200:
                self.locator.mark_succeeded(target)
                self._contact_target = target
            self._feed(lambda now: self.registration.response_received(response, now))
            if 200 <= response.status < 300 and action.expires > 0:
                self._heal_contact(request)

    def _heal_contact(self, request: Any) -> None:
        """After a 2xx: if the Contact we would register now differs from the one just
        registered, register again with it (once; the old binding goes in that REGISTER)."""
        try:
            sent = request.contacts[0].uri
        except Exception:  # noqa: BLE001 - our own request: it parsed when we built it
            return
        wanted = self._contact().uri
        if str(sent) == str(wanted):
            self._healing = False
            return
        if self._healing:  # the address keeps changing: keep what we have until the refresh
            log.warning("%s: registered %s, but %s is where we are now; not re-registering "
                        "again before the next refresh", self.account.id, sent, wanted)
            self._healing = False
            return
        log.info("%s: registered %s, but the registrar reaches us at %s: registering that",
                 self.account.id, sent, wanted)
        self._healing = True
        self._feed(self.registration.network_changed)

    def _contact(self) -> Address:
        """Our Contact toward the server we register with, over the transport we reach it
        by: what that server saw as our address (received/rport) if it told us, else our
        listening address, else (TCP/TLS without a listener) our end of the connection."""
        target = self._contact_target or (self.targets[0] if self.targets else None)
        transport = target.transport if target else "udp"
        host, port = self.stack.local_contact(transport, target)
        uri = SipUri(host, user=self.contact_user, port=port,
                     scheme="sips" if transport == "tls" and self._secure_aor
                     else "sip")
        if transport != "udp":
            uri.params.set("transport", transport)
        return Address(uri)
