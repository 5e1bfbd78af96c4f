"""The registration of one account with its registrar (RFC 3261 §10), sans-I/O.

Driven like h11: the I/O layer feeds inputs with the time from its own clock and carries out
the actions it gets back, in order. Nothing here reads a clock, opens a socket or sleeps.

    reg = Registration(account, contact=lambda: "sip:alice@192.0.2.10:5060", targets=2)
    actions = reg.start(now)
    # for SendRegister(request, target_index): add a top Via for the transport used
    #   (sipd.sip.builder.new_via), start a client transaction to target `target_index` of
    #   the servers located for `request` (RFC 3263 on builder.next_hop(request)); then feed
    #   its outcome: reg.response_received(final_response, now), reg.timed_out(now, request)
    #   or reg.transport_failed(now, request, reason)
    # for StateChanged: publish `account.registration` with event.data(account_id, now)
    # sleep until reg.next_deadline(), then feed reg.timer(now)
    actions = reg.stop(now, wait=5.0)    # unregister; `unregistered` comes within 5 s

States (`account.registration` event data): registering -> registered (expires, contact);
failed (code, reason, retry_at); unregistered. A refresh that succeeds reports nothing new
unless the granted expiry or the contact changed.

Timing (sipd.accounts.timing), measured from the moment the input arrives:
- refresh: `refresh_delay(granted)` after a 2xx: when 80 % of the granted time has passed, or
  30 s before expiry if that comes first, but never before half of it (nor before 5 s); then
  brought forward by a random 0..25 % of that (policy.refresh_spread), so that accounts
  registered together refresh apart (no thundering herd at the registrar);
- 423 Interval Too Brief: at once with the registrar's Min-Expires (kept for the refreshes);
- transient failure (408, 5xx, timeout, transport error): at once to the next located server
  (in order, wrapping from the one that failed); when every server failed, `failed` and a retry
  after an exponential backoff with jitter (30 s doubling, 10 min cap, +0..25 %), or later if
  a 503 says Retry-After;
- permanent failure (wrong password, 403, other 4xx/6xx, an unanswerable challenge): `failed`
  and a retry after a long backoff (5 min doubling, 1 h cap, +0..25 %): a wrong password costs
  two REGISTERs per attempt, a handful per hour, never a loop;
- `network_changed`: re-register at once (backoff reset) unless the last failure was
  permanent; a binding of an older contact is removed in the same REGISTER (expires=0).
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sipd.sip.auth import AuthFailure, Credentials, CredentialStore, DigestAuthenticator
from sipd.sip.builder import build_request, new_call_id, new_tag
from sipd.sip.errors import SipParseError
from sipd.sip.header_values import Address, parse_address
from sipd.sip.message import Request, Response
from sipd.sip.uri import SipUri, parse_uri

from .timing import (
    Backoff,
    RandomSource,
    RegistrationPolicy,
    refresh_delay,
    spread_refresh_delay,
)

__all__ = ["Registration", "RegistrationState", "SendRegister", "StateChanged", "Action",
           "Backoff", "RegistrationPolicy", "refresh_delay", "ContactSource"]


class RegistrationState(str, enum.Enum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


class _Phase(enum.Enum):
    IDLE = "idle"                  # never started, or stopped
    REGISTERING = "registering"    # a REGISTER is out; no binding known to us
    REFRESHING = "refreshing"      # a REGISTER is out to refresh a binding
    REGISTERED = "registered"      # waiting for the refresh time
    WAITING = "waiting"            # failed; waiting for retry_at
    UNREGISTERING = "unregistering"  # an Expires: 0 REGISTER is out (stop)


# --- actions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendRegister:
    """Send `request` in a new client transaction to target `target_index` of the servers
    located for it. The request has no Via: the transport layer adds its own top Via.
    `expires` is what it asks for (0: an unregister). `continues` is true for a REGISTER that
    carries on an attempt already answered (credentials after a challenge, a 423 retry, the
    next server): it should not queue behind new attempts (see registrar_client.IN_FLIGHT)."""
    request: Request
    target_index: int
    expires: int
    continues: bool = False


@dataclass(frozen=True)
class StateChanged:
    """The registration state changed: publish `account.registration`."""
    state: RegistrationState
    code: int | None = None
    reason: str | None = None
    expires: int | None = None      # granted lifetime (registered)
    contact: str | None = None      # our registered contact URI (registered)
    retry_at: float | None = None   # when the next attempt is due, on the caller's clock (failed)

    def data(self, account_id: str, now: float | None = None,
             wall_now: float | None = None) -> dict[str, Any]:
        """The `account.registration` event data. `retry_at` is on the caller's monotonic
        clock: with `now` it becomes `retry_in` (seconds); with `wall_now` (time.time()) too,
        `retry_at` (Unix time)."""
        data: dict[str, Any] = {"account": account_id, "state": self.state.value}
        for name in ("code", "reason", "expires", "contact"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.retry_at is not None and now is not None:
            retry_in = max(0.0, self.retry_at - now)
            data["retry_in"] = round(retry_in, 1)
            if wall_now is not None:
                data["retry_at"] = round(wall_now + retry_in, 3)
        return data


Action = SendRegister | StateChanged


# --- the state machine -----------------------------------------------------------------------

ContactSource = str | SipUri | Address | Callable[[], str | SipUri | Address]


class _AccountLike(Protocol):
    # Read-only, as in the frozen AccountConfig.
    @property
    def aor(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def outbound_proxy(self) -> str: ...
    @property
    def expires(self) -> int: ...
    @property
    def auth_username(self) -> str: ...
    @property
    def registrar_uri(self) -> SipUri: ...


@dataclass
class _Attempt:
    """The REGISTER in flight (one at a time; answers to older ones are ignored)."""
    request: Request        # as built here (no Via): the base of an authenticated retry
    cseq: int
    target: int
    expires: int
    sent_at: float
    unregister: bool = False
    challenges: int = 0     # challenges answered for this attempt (fresh, not preemptive)
    too_brief: int = 0


_RETRY_AFTER = re.compile(r"\s*(\d+)")

# One generator for every registration's jitter: a random.Random holds 2.5 KB of state, and
# the jitter needs no stream of its own (10,000 accounts: 25 MB less).
_SHARED_RNG = random.Random()


class Registration:
    """Registers one account and keeps it registered. One instance per account; the Call-ID
    stays the same for its whole life (RFC 3261 §10.2.4), the CSeq rises by one per REGISTER."""

    def __init__(self, account: _AccountLike, *, contact: ContactSource | None = None,
                 targets: int = 1, rng: RandomSource | None = None,
                 policy: RegistrationPolicy = RegistrationPolicy(),
                 user_agent: str | None = None, call_id: str | None = None,
                 cnonce_factory: Callable[[], str] | None = None) -> None:
        self.account = account
        self.policy = policy
        self._rng: RandomSource = rng if rng is not None else _SHARED_RNG
        self._contact_source = contact
        self.user_agent = user_agent
        self._aor = parse_uri(account.aor, "aor")
        self._request_uri = account.registrar_uri
        self._routes = _routes(account.outbound_proxy)
        self.call_id = call_id or new_call_id()
        self._from_tag = new_tag()
        self._cseq = 0
        store = CredentialStore([Credentials(account.auth_username, account.password)]
                                if account.password else [])
        self._auth = (DigestAuthenticator(store, cnonce_factory) if cnonce_factory
                      else DigestAuthenticator(store))
        self._phase = _Phase.IDLE
        self._event = StateChanged(RegistrationState.UNREGISTERED)
        self._pending: _Attempt | None = None
        self._round_tried = 0            # servers tried in the current round
        self._target = 0                 # where the last REGISTER went
        self._registered_target: int | None = None  # the server holding our binding
        self._targets = 1
        self.set_targets(targets)
        self._requested_expires = account.expires
        self._bound_contact: Address | None = None   # what the registrar holds for us
        self._bound_until: float | None = None
        self._granted: int | None = None
        self._refresh_at: float | None = None
        self._retry_at: float | None = None
        self._stop_deadline: float | None = None
        self._transient_failures = 0
        self._permanent_failures = 0
        self._last_failure_permanent = False

    # -- views ----------------------------------------------------------------------------

    @property
    def state(self) -> RegistrationState:
        return self._event.state

    @property
    def last_event(self) -> StateChanged:
        return self._event

    @property
    def phase(self) -> str:
        """A finer state for logs and tests: idle, registering, refreshing, registered,
        waiting, unregistering."""
        return self._phase.value

    def awaits(self, request: Request) -> bool:
        """Whether `request` (of a SendRegister) is still the REGISTER this registration
        waits on: one that waited to be sent while a stop or a new round replaced it is
        better not sent at all (a refresh sent after the unregister would bind again)."""
        return self._current(request) is not None

    @property
    def is_stopped(self) -> bool:
        """True when nothing is in flight and nothing will happen without start()."""
        return self._phase is _Phase.IDLE

    @property
    def targets(self) -> int:
        return self._targets

    @property
    def contact(self) -> str | None:
        """The contact URI the registrar holds for us, if any."""
        return str(self._bound_contact.uri) if self._bound_contact is not None else None

    @property
    def expires_at(self) -> float | None:
        """When our binding expires (caller's clock), if one is believed to exist."""
        return self._bound_until

    def snapshot(self, account_id: str, now: float) -> dict[str, Any]:
        """For accounts.get and system.state: the last event's data and the phase."""
        return self._event.data(account_id, now) | {"phase": self._phase.value}

    # -- inputs: configuration ------------------------------------------------------------

    def set_contact(self, contact: ContactSource) -> None:
        """The Contact to register (a URI, an Address, or a callable returning one): used
        from the next REGISTER on. Call network_changed() to re-register with it now."""
        self._contact_source = contact

    def set_targets(self, count: int) -> None:
        """How many servers the I/O layer located for this registration (RFC 3263). Takes
        effect from the next REGISTER; an index past the new end starts over at 0."""
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"targets must be a positive integer, got {count!r}")
        self._targets = count
        if self._target >= count:
            self._target = 0
        if self._registered_target is not None and self._registered_target >= count:
            self._registered_target = None

    # -- inputs: control ------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Register (again). A no-op while registered or registering; after a failure it
        retries at once with the backoff reset."""
        if self._phase in (_Phase.REGISTERING, _Phase.REFRESHING, _Phase.REGISTERED):
            return []
        self._transient_failures = self._permanent_failures = 0
        self._last_failure_permanent = False
        self._stop_deadline = None
        if self._phase is _Phase.WAITING:
            self._auth.forget()  # the password may have been fixed meanwhile
        self._pending = None
        return self._begin(now, self._registered_target or 0)

    def stop(self, now: float, wait: float | None = None) -> list[Action]:
        """Unregister: REGISTER with Expires: 0 for our contact, then `unregistered`, within
        `wait` seconds (policy.unregister_wait by default; 0: report at once, send nothing).
        With no binding to remove, `unregistered` comes at once."""
        wait = self.policy.unregister_wait if wait is None else wait
        if self._phase is _Phase.UNREGISTERING:
            self._stop_deadline = min(self._stop_deadline or now + wait, now + wait)
            return self._finish_stop("unregister abandoned") if wait <= 0 else []
        maybe_bound = self._phase in (_Phase.REGISTERING, _Phase.REFRESHING, _Phase.REGISTERED) \
            or (self._bound_until is not None and now < self._bound_until)
        self._pending = None
        self._refresh_at = self._retry_at = None
        if not maybe_bound or wait <= 0:
            return self._finish_stop(None if not maybe_bound else
                                     "stopped without unregistering; the binding expires "
                                     "on its own")
        self._phase = _Phase.UNREGISTERING
        self._stop_deadline = now + wait
        target = self._registered_target if self._registered_target is not None else self._target
        return [self._send(now, target, expires=0)]

    def network_changed(self, now: float) -> list[Action]:
        """The network came back or changed: re-register now (the contact is asked for
        again). A wrong password is not retried early for this."""
        if self._phase in (_Phase.REGISTERING, _Phase.REFRESHING, _Phase.REGISTERED):
            self._pending = None
            self._transient_failures = 0
            first = self._registered_target if self._registered_target is not None else 0
            return self._begin(now, first)
        if self._phase is _Phase.WAITING and not self._last_failure_permanent:
            self._transient_failures = 0
            return self._begin(now, 0)
        return []

    # -- inputs: what happened to the REGISTER in flight ----------------------------------

    def response_received(self, response: Response, now: float) -> list[Action]:
        """A response to one of our REGISTERs (others, and provisional ones, are ignored)."""
        attempt = self._pending
        if attempt is None or not _answers(response, attempt, self.call_id):
            return []
        if response.status < 200:
            return []
        self._pending = None
        status = response.status
        if status in (401, 407):
            return self._challenged(attempt, response, now)
        if attempt.unregister:
            if 200 <= status < 300:
                self._bound_contact = None
                self._bound_until = None
                return self._finish_stop(None)
            return self._finish_stop(f"the registrar refused the unregister "
                                     f"({status} {response.reason}); the binding expires on "
                                     f"its own", code=status)
        if 200 <= status < 300:
            return self._registered(attempt, response, now)
        if status == 423:
            return self._interval_too_brief(attempt, response, now)
        reason = f"{status} {response.reason}".strip()
        if status == 408 or 500 <= status < 600:
            return self._transient_failure(attempt, now, status, reason,
                                           retry_after=_retry_after(response))
        if status == 403:
            reason = f"{reason}: the registrar refused these credentials or this account"
        elif 300 <= status < 400:
            reason = f"{reason}: redirects of a REGISTER are not followed; set the registrar"
        return self._permanent_failure(now, status, reason)

    def timed_out(self, now: float, request: Request | None = None) -> list[Action]:
        """The REGISTER in flight got no final answer (Timer F). With `request`, only if it
        is that one."""
        attempt = self._current(request)
        if attempt is None:
            return []
        self._pending = None
        if attempt.unregister:
            return self._finish_stop("no answer to the unregister; the binding expires on "
                                     "its own", code=408)
        return self._transient_failure(attempt, now, 408, "no answer from the registrar")

    def transport_failed(self, now: float, request: Request | None = None,
                         reason: str = "") -> list[Action]:
        """The REGISTER in flight could not be sent (no route, refused connection, TLS
        failure...): treated as a 503 from that server (RFC 3261 §8.1.3.1)."""
        attempt = self._current(request)
        if attempt is None:
            return []
        self._pending = None
        detail = "cannot reach the registrar" + (f": {reason}" if reason else "")
        if attempt.unregister:
            return self._finish_stop(f"{detail}; the binding expires on its own", code=503)
        return self._transient_failure(attempt, now, 503, detail)

    # -- inputs: time ---------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When timer() must be called next, on the caller's clock (None: nothing pending)."""
        deadlines = []
        if self._pending is not None:
            deadlines.append(self._pending.sent_at + self.policy.response_timeout)
        if self._phase is _Phase.REGISTERED and self._refresh_at is not None:
            deadlines.append(self._refresh_at)
        if self._phase is _Phase.WAITING and self._retry_at is not None:
            deadlines.append(self._retry_at)
        if self._phase is _Phase.UNREGISTERING and self._stop_deadline is not None:
            deadlines.append(self._stop_deadline)
        return min(deadlines) if deadlines else None

    def timer(self, now: float) -> list[Action]:
        """Whatever is due at `now` (early calls do nothing)."""
        if self._phase is _Phase.UNREGISTERING and self._stop_deadline is not None \
                and now >= self._stop_deadline:
            self._pending = None
            return self._finish_stop("no answer to the unregister in time; the binding "
                                     "expires on its own")
        if self._pending is not None and now >= self._pending.sent_at + \
                self.policy.response_timeout:
            return self.timed_out(now)
        if self._phase is _Phase.REGISTERED and self._refresh_at is not None \
                and now >= self._refresh_at:
            self._refresh_at = None
            return self._begin(now, self._registered_target or 0)
        if self._phase is _Phase.WAITING and self._retry_at is not None \
                and now >= self._retry_at:
            self._retry_at = None
            return self._begin(now, 0)
        return []

    # -- internals: sending -----------------------------------------------------------------

    def _begin(self, now: float, first_target: int) -> list[Action]:
        """A new round over the servers, starting with `first_target`. While registered it
        is a refresh and reports nothing until it succeeds or fails."""
        actions: list[Action] = []
        if self.state is RegistrationState.REGISTERED:
            self._phase = _Phase.REFRESHING
        else:
            self._phase = _Phase.REGISTERING
            actions += self._report(StateChanged(RegistrationState.REGISTERING))
        self._round_tried = 0
        self._retry_at = None
        actions.append(self._send(now, first_target % self._targets,
                                  expires=self._requested_expires))
        return actions

    def _send(self, now: float, target: int, *, expires: int,
              continues: bool = False) -> SendRegister:
        unregister = expires == 0
        contact = self._bound_contact if unregister and self._bound_contact is not None \
            else self._current_contact()
        request = self._build(contact, expires, unregister)
        self._auth.authorize_preemptively(request)
        self._target = target
        self._pending = _Attempt(request, self._cseq, target, expires, now, unregister)
        return SendRegister(request.copy(), target, expires, continues)

    def _build(self, contact: Address, expires: int, unregister: bool) -> Request:
        self._cseq += 1
        aor = Address(self._aor.copy(), self.account.display_name or None)
        from_ = aor.copy()
        from_.tag = self._from_tag
        headers: list[tuple[str, str]] = [("Expires", str(expires))]
        if self.user_agent:
            headers.append(("User-Agent", self.user_agent))
        request = build_request("REGISTER", self._request_uri, from_=from_, to=aor,
                                call_id=self.call_id, cseq=self._cseq, contact=contact,
                                routes=self._routes, headers=headers)
        old = self._bound_contact
        if not unregister and old is not None and old.uri != contact.uri:
            stale = Address(old.uri.copy())
            stale.params.set("expires", "0")  # the binding of our previous address goes
            request.headers.add("Contact", str(stale))
        return request

    def _current_contact(self) -> Address:
        source = self._contact_source
        value = source() if callable(source) else source
        if value is None:
            raise RuntimeError("the registration has no contact: pass contact= or call "
                               "set_contact() before start()")
        if isinstance(value, Address):
            address = value.copy()
        elif isinstance(value, SipUri):
            address = Address(value.copy())
        elif "<" in str(value):
            address = parse_address(str(value), "Contact")
        else:  # a bare URI: its ;params are the URI's (not header parameters)
            address = Address(parse_uri(str(value).strip(), "Contact"))
        address.params.remove("expires")  # Expires travels in its own header
        return address

    def _current(self, request: Request | None) -> _Attempt | None:
        attempt = self._pending
        if attempt is None:
            return None
        if request is not None:
            cseq = request.cseq
            if cseq is None or cseq.number != attempt.cseq or request.call_id != self.call_id:
                return None
        return attempt

    # -- internals: answers -----------------------------------------------------------------

    def _challenged(self, attempt: _Attempt, response: Response, now: float) -> list[Action]:
        base = attempt.request.copy()
        if attempt.challenges == 0:
            # Credentials sent preemptively (a refresh with an old nonce) do not count as an
            # answer: only a challenge to credentials answering a challenge means "wrong".
            base.headers.remove("Authorization")
            base.headers.remove("Proxy-Authorization")
        if attempt.challenges >= self.policy.max_challenges:
            result_reason = "the registrar keeps challenging our credentials"
            return self._auth_failed(attempt, now, response.status, result_reason)
        result = self._auth.authenticate(base, response)
        if result.request is None:
            if result.failure is AuthFailure.REJECTED:
                reason = f"wrong username or password ({result.reason})"
            elif result.failure is AuthFailure.NO_CREDENTIALS:
                reason = f"the registrar asks for a password and none is set ({result.reason})"
            else:
                reason = f"cannot answer the registrar's challenge ({result.reason})"
            return self._auth_failed(attempt, now, response.status, reason)
        request = result.request
        self._cseq += 1
        cseq = request.cseq
        assert cseq is not None
        request.headers.set("CSeq", f"{self._cseq} {cseq.method}")
        self._pending = _Attempt(request, self._cseq, attempt.target, attempt.expires, now,
                                 attempt.unregister, attempt.challenges + 1, attempt.too_brief)
        return [SendRegister(request.copy(), attempt.target, attempt.expires, continues=True)]

    def _auth_failed(self, attempt: _Attempt, now: float, code: int,
                     reason: str) -> list[Action]:
        self._auth.forget()
        if attempt.unregister:
            return self._finish_stop(f"unregister refused: {reason}", code=code)
        return self._permanent_failure(now, code, reason)

    def _registered(self, attempt: _Attempt, response: Response, now: float) -> list[Action]:
        contact = attempt.request.contacts[0]
        try:
            granted = _granted_expires(response, contact, attempt.expires)
        except SipParseError as error:
            return self._transient_failure(attempt, now, response.status,
                                           f"malformed 2xx from the registrar: {error.detail}")
        if granted <= 0:
            return self._transient_failure(attempt, now, response.status,
                                           "the registrar accepted the REGISTER but holds no "
                                           "binding for our contact")
        self._phase = _Phase.REGISTERED
        self._registered_target = attempt.target
        self._bound_contact = contact
        self._bound_until = now + granted
        self._granted = granted
        self._refresh_at = now + spread_refresh_delay(granted, self._rng,
                                                      self.policy.refresh_spread)
        self._transient_failures = self._permanent_failures = 0
        self._last_failure_permanent = False
        return self._report(StateChanged(RegistrationState.REGISTERED, expires=granted,
                                         contact=str(contact.uri)))

    def _interval_too_brief(self, attempt: _Attempt, response: Response,
                            now: float) -> list[Action]:
        try:
            minimum = response.min_expires
        except SipParseError:
            minimum = None
        if minimum is None or minimum <= attempt.expires:
            return self._permanent_failure(
                now, 423, "423 Interval Too Brief without a usable Min-Expires")
        if attempt.too_brief + 1 > self.policy.max_interval_too_brief:
            return self._permanent_failure(now, 423, "the registrar keeps raising Min-Expires")
        self._requested_expires = minimum
        sent = self._send(now, attempt.target, expires=minimum, continues=True)
        assert self._pending is not None
        self._pending.too_brief = attempt.too_brief + 1
        return [sent]

    def _transient_failure(self, attempt: _Attempt, now: float, code: int, reason: str,
                           retry_after: int | None = None) -> list[Action]:
        self._round_tried += 1
        if self._round_tried < self._targets:
            next_target = (attempt.target + 1) % self._targets
            return [self._send(now, next_target, expires=attempt.expires, continues=True)]
        self._transient_failures += 1
        delay = self.policy.transient.delay(self._transient_failures, self._rng)
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), self.policy.retry_after_cap))
        self._last_failure_permanent = False
        return self._wait(now, delay, code, reason)

    def _permanent_failure(self, now: float, code: int, reason: str) -> list[Action]:
        self._permanent_failures += 1
        delay = self.policy.permanent.delay(self._permanent_failures, self._rng)
        self._last_failure_permanent = True
        return self._wait(now, delay, code, reason)

    def _wait(self, now: float, delay: float, code: int, reason: str) -> list[Action]:
        self._pending = None
        self._phase = _Phase.WAITING
        self._refresh_at = None
        self._retry_at = now + delay
        self._round_tried = 0
        return self._report(StateChanged(RegistrationState.FAILED, code=code, reason=reason,
                                         retry_at=self._retry_at))

    def _finish_stop(self, reason: str | None, code: int | None = None) -> list[Action]:
        self._phase = _Phase.IDLE
        self._pending = None
        self._refresh_at = self._retry_at = self._stop_deadline = None
        self._granted = None
        if reason is None:
            self._bound_contact = None
            self._bound_until = None
        return self._report(StateChanged(RegistrationState.UNREGISTERED, code=code,
                                         reason=reason))

    def _report(self, event: StateChanged) -> list[Action]:
        if event == self._event:
            return []
        self._event = event
        return [event]


# --- helpers ---------------------------------------------------------------------------------

def _routes(outbound_proxy: str) -> list[Address]:
    if not outbound_proxy:
        return []
    uri = parse_uri(outbound_proxy, "outbound_proxy")
    if isinstance(uri, SipUri) and not uri.lr:
        uri.params.set("lr")  # a pre-loaded route to a loose router (RFC 3261 §8.1.2)
    return [Address(uri)]


def _answers(response: Response, attempt: _Attempt, call_id: str) -> bool:
    try:
        cseq = response.cseq
        return (cseq is not None and cseq.method == "REGISTER" and cseq.number == attempt.cseq
                and response.call_id == call_id)
    except SipParseError:
        return False


def _granted_expires(response: Response, ours: Address, asked: int) -> int:
    """The lifetime the registrar granted our contact (RFC 3261 §10.2.4): the `expires` of
    our Contact in the 2xx, else the Expires header, else what we asked for. A registrar
    that rewrote the contact (NAT) and lists one contact only: that one's `expires`."""
    contacts = response.contacts
    match = next((c for c in contacts if c.uri == ours.uri), None)
    if match is None and len(contacts) == 1:
        match = contacts[0]
    if match is not None and match.expires is not None:
        return match.expires
    if response.expires is not None:
        return response.expires
    return asked


def _retry_after(response: Response) -> int | None:
    value = response.headers.get("Retry-After")
    match = _RETRY_AFTER.match(value) if value else None
    return int(match.group(1)) if match else None
