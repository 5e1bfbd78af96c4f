"""The subscriber side of a subscription (RFC 6665), sans-I/O: SUBSCRIBE out, NOTIFYs in, for
any event package (presence, presence.winfo, message-summary, dialog...).

    sub = Subscriber(SubscribeTarget(uri, from_=our_aor, contact=our_contact,
                                     routes=(proxy,)), event="presence",
                     accept=(PIDF_TYPE,), expires=3600, eventlist=False)
    actions = sub.start(now)                      # ClaimDialog, SendRequest(SUBSCRIBE), ...
    actions = sub.response(key, final, now)       # the final response of a request we sent
    actions = sub.no_response(key, now, reason)   # it timed out / could not be sent
    actions = sub.resend(key, authorized_copy, now)   # instead of feeding a 401/407
    actions = sub.notify(request, now, ref)       # a NOTIFY the dialog table routed to us
    actions = sub.refresh(now)                    # refresh now (a reader asked to resync)
    actions = sub.update_contact(contact, now)    # our address changed: refresh with it
    actions = sub.unsubscribe(now)                # Expires: 0 in every dialog
    # sleep until sub.next_deadline(), then
    actions = sub.timer(now)                      # refreshes, expiry, Timer N, retries
    sub.finished                                  # nothing more will happen: drop it

What it does (sipd.presence.actions and .events name the outputs):
- A NOTIFY may come before the 2xx and from several notifiers (a forked SUBSCRIBE): each new
  From tag is a dialog of its own (up to `max_forks`), refreshed and ended on its own; the
  subscription is active while one of them is. The dialog key (Call-ID, our tag) is claimed
  when the SUBSCRIBE goes out and released when the attempt is over.
- Refresh at `refresh_delay(granted)` (sipd.presence.timing), granted by the 2xx's Expires
  and by each NOTIFY's `expires`. 423 Interval Too Brief: again at once with the Min-Expires.
- A refresh answered 481 (or 404, 405, 410, 416, 480-485, 489, 501, 604: RFC 6665 §4.1.2.2)
  ends that dialog; another failure leaves it valid until it expires, and the refresh is tried
  again. When the last dialog ends: terminated;reason=deactivated or timeout, a 481, 480, 482
  or 483, or a lapsed subscription -> SUBSCRIBE again (at once the first time, then with a
  growing backoff, reset once a subscription has been active for a minute); probation,
  giveup, no or an unknown reason -> again after retry-after (or the backoff); rejected,
  noresource, invariant -> terminated with that reason.
- An initial SUBSCRIBE that fails transiently (408, 480, 5xx but 501, a timeout, no NOTIFY
  within Timer N = 64*T1 of sending it) is retried after a backoff (or its Retry-After);
  other failures end the subscription with the code.
- A NOTIFY of another event package gets 489, one without a usable Subscription-State 400,
  one for a subscription we no longer hold (an old Call-ID or tag, after unsubscribing, a
  fork beyond the limit) 481; every NOTIFY we accept gets 200 at once, even when its body
  turns out unreadable: that is the package reader's business, and a subscription lives on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sipd.sip.builder import build_request, new_call_id, new_tag, reason_phrase
from sipd.sip.dialog import Dialog, DialogState
from sipd.sip.header_values import Address
from sipd.sip.message import Request, Response
from sipd.sip.timers import DEFAULT_TIMERS, TimerSettings
from sipd.sip.uri import SipUri, Uri

from .actions import ClaimDialog, DialogKey, ReleaseDialog, SendRequest, SendResponse
from .events import Notified, SubscriptionChanged, SubscriptionState
from .forks import Attempt, Fork
from .headers import (
    event_of,
    expires_of,
    min_expires_of,
    retry_after_of,
    state_expires,
    state_retry_after,
    subscription_state_of,
)
from .payload import MULTIPART_RELATED, RLMI_TYPE
from .timing import SHARED_RNG, RandomSource, SubscriptionPolicy, retry_after

__all__ = ["Subscriber", "SubscribeTarget", "SubscriberError", "Action"]

Action = SendRequest | SendResponse | ClaimDialog | ReleaseDialog | SubscriptionChanged | Notified

# A refresh answered with one of these ends that dialog (RFC 6665 §4.1.2.2).
_REFRESH_FATAL = frozenset({404, 405, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604})
# ...and of those, the ones after which a new subscription is worth trying.
_REFRESH_RESUBSCRIBE = frozenset({480, 481, 482, 483})
_AGAIN_AT_ONCE = frozenset({"deactivated", "timeout"})       # RFC 6665 §4.1.3
_NEVER_AGAIN = frozenset({"rejected", "noresource", "invariant"})
STABLE_AFTER = 60.0  # an active subscription this old starts the resubscribe backoff afresh


class SubscriberError(ValueError):
    """An input the subscriber cannot take now (a bug of its driver)."""


@dataclass(frozen=True)
class SubscribeTarget:
    """What the SUBSCRIBE is built from: the Request-URI (the contact, the list, our own AOR
    for winfo...), our identity and contact, the route to the next hop (an outbound proxy),
    and headers every request carries (User-Agent...)."""
    uri: Uri
    from_: Address
    contact: Address
    to: Address | None = None   # default: the Request-URI
    routes: tuple[Address, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    #: what the initial SUBSCRIBE carries (xcap-diff's list of documents, RFC 5875 §4.3);
    #: refreshes go without: the notifier keeps what it was given
    body: bytes = b""
    content_type: str | None = None


@dataclass
class _Outgoing:
    kind: str                    # "subscribe" (out of dialog), "refresh", "unsubscribe"
    request: Request
    remote_tag: str | None       # the dialog of a refresh or unsubscribe
    challenges: int = 0
    too_brief: int = 0


class Subscriber:
    """One subscription: see the module docstring. `state`, `reason`, `code`, `expires`
    (what we ask for; raised by 423) can be read at any time."""

    def __init__(self, target: SubscribeTarget, *, event: str = "presence",
                 accept: tuple[str, ...] = (), expires: int = 3600, eventlist: bool = False,
                 policy: SubscriptionPolicy = SubscriptionPolicy(),
                 timers: TimerSettings = DEFAULT_TIMERS, rng: RandomSource | None = None
                 ) -> None:
        if expires < 0:
            raise SubscriberError("expires must not be negative")
        self.target = target
        self.event = event
        self.accept = accept + ((MULTIPART_RELATED, RLMI_TYPE) if eventlist else ())
        self.expires = expires
        self.eventlist = eventlist
        self.policy = policy
        self.timers = timers
        self.rng: RandomSource = rng if rng is not None else SHARED_RNG
        self.state: SubscriptionState | None = None
        self.reason: str | None = None
        self.code: int | None = None
        self._attempt: Attempt | None = None
        self._out: dict[str, _Outgoing] = {}
        self._keys = 0
        self._retry_at: float | None = None
        self._failures = 0       # transient failures of the initial SUBSCRIBE in a row
        self._resubscribes = 0   # notifier-ended subscriptions in a row
        self._unsubscribing = False
        self._release_at: float | None = None

    def __repr__(self) -> str:
        state = self.state.value if self.state else "new"
        return f"<Subscriber {self.event} {self.target.uri} {state}>"

    # -- reading -----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """Terminated, and nothing claimed or outstanding any more: the driver may drop it."""
        return self.state is SubscriptionState.TERMINATED and self._attempt is None

    @property
    def dialog_key(self) -> DialogKey | None:
        """The (Call-ID, our tag) the dialog table should route to us, if any."""
        return self._attempt.key if self._attempt is not None else None

    @property
    def dialogs(self) -> list[Dialog]:
        return [fork.dialog for fork in self._attempt.forks.values()] if self._attempt else []

    # -- commands ----------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        if self.state is not None:
            raise SubscriberError("this subscription has already been started")
        return self._subscribe(now, None, None)

    def refresh(self, now: float) -> list[Action]:
        """Refreshes every dialog now (the notifier then sends full state); while waiting to
        retry, retries now."""
        if self._unsubscribing or self.state is SubscriptionState.TERMINATED:
            return []
        if self._attempt is None:
            self._retry_at = None
            return self._subscribe(now, self.reason, self.code)
        return [action for fork in list(self._attempt.forks.values())
                if fork.refreshing is None and fork.dialog.state is DialogState.CONFIRMED
                for action in self._send_refresh(fork, self.expires)]

    def update_contact(self, contact: Address, now: float) -> list[Action]:
        """Our contact changed (a new network): every dialog learns it by a refresh."""
        self.target = dataclasses.replace(self.target, contact=contact)
        if self._attempt is not None:
            for fork in self._attempt.forks.values():
                fork.dialog.local_contact = contact
        return self.refresh(now)

    def unsubscribe(self, now: float) -> list[Action]:
        """Ends the subscription: SUBSCRIBE with Expires: 0 in each dialog, then waits (64*T1
        at most) for the final NOTIFYs before releasing the dialog key."""
        if self._unsubscribing or self.state is SubscriptionState.TERMINATED:
            return []
        self._unsubscribing = True
        self._retry_at = None
        actions: list[Action] = []
        attempt = self._attempt
        if attempt is not None:
            attempt.timer_n = None
            for fork in list(attempt.forks.values()):
                actions += self._send_unsubscribe(fork)
            self._release_at = now + self.timers.transaction_timeout
        actions += self._set_state(SubscriptionState.TERMINATED, "unsubscribed")
        return actions + self._finish_if_done()

    # -- responses to our requests ----------------------------------------------------------
    def response(self, key: str, response: Response, now: float) -> list[Action]:
        out = self._out.get(key)
        if out is None or response.is_provisional:
            return []
        del self._out[key]
        if out.kind == "subscribe":
            return self._subscribe_response(key, out, response, now)
        fork = self._fork(out.remote_tag)
        if fork is None:
            return []
        if out.kind == "refresh":
            return self._refresh_response(out, fork, response, now)
        if not response.is_success:  # the unsubscribe failed: nothing left to end
            return self._drop(fork) + self._finish_if_done()
        return []

    def no_response(self, key: str, now: float, reason: str = "no response") -> list[Action]:
        """The request of `key` timed out or could not be sent (an 408 of our own)."""
        out = self._out.pop(key, None)
        if out is None:
            return []
        if out.kind == "subscribe":
            return self._subscribe_failed(key, out, 408, reason, None, now)
        fork = self._fork(out.remote_tag)
        if fork is None:
            return []
        if out.kind == "refresh":
            return self._refresh_failed(fork, now)
        return self._drop(fork) + self._finish_if_done()

    def resend(self, key: str, request: Request, now: float) -> list[Action]:
        """Sends `request` in place of the request of `key`: its copy with credentials after a
        401/407 (same Call-ID and tags, CSeq + 1). After `max_challenges` rounds it is taken
        as the final failure it is."""
        out = self._out.pop(key, None)
        if out is None:
            raise SubscriberError(f"no request {key!r} to resend")
        if out.challenges >= self.policy.max_challenges:
            if out.kind == "subscribe":
                return self._subscribe_failed(key, out, 401, "authentication failed", None,
                                              now)
            fork = self._fork(out.remote_tag)
            return self._refresh_failed(fork, now) if fork is not None else []
        return self._send(out.kind, request, out.remote_tag, now,
                          challenges=out.challenges + 1, too_brief=out.too_brief)

    # -- NOTIFY ------------------------------------------------------------------------------
    def notify(self, request: Request, now: float, ref: Any = None) -> list[Action]:
        ref = request if ref is None else ref
        event = event_of(request)
        if event is None:
            return [SendResponse(ref, 400, "Bad Event Header")]
        if event.package.lower() != self.event.lower():
            return [SendResponse(ref, 489, reason_phrase(489))]
        state = subscription_state_of(request)
        if state is None:
            return [SendResponse(ref, 400, "Missing or Malformed Subscription-State")]
        remote = request.from_
        if remote is None or not remote.tag:
            return [SendResponse(ref, 400, "NOTIFY Without From Tag")]
        attempt = self._attempt
        to = request.to
        if attempt is None or event.id is not None or to is None \
                or request.call_id != attempt.key.call_id or to.tag != attempt.key.local_tag:
            return [SendResponse(ref, 481, reason_phrase(481))]
        fork = attempt.forks.get(remote.tag)
        if fork is None:
            if self._unsubscribing or len(attempt.forks) >= self.policy.max_forks:
                return [SendResponse(ref, 481, reason_phrase(481))]
            fork = Fork(attempt.dialog_from_notify(request, self.target.contact))
            attempt.forks[remote.tag] = fork
        problem = fork.dialog.receive_request(request)
        if problem is not None:
            return [SendResponse(ref, *problem)]
        first, fork.notified = not fork.notified, True
        attempt.timer_n = None
        self._failures = 0
        actions: list[Action] = [SendResponse(ref, 200, "OK")]
        if not self._unsubscribing:
            content_type = request.headers.get("Content-Type")
            actions.append(Notified(fork.dialog.id, state.state, content_type, request.body,
                                    first, state.reason))
        if state.state == "terminated":
            return actions + self._fork_ended(fork, state.reason, None,
                                              state_retry_after(state), now)
        if fork.unsubscribing:
            return actions
        fork.state = "active" if state.state == "active" else "pending"  # unknown: pending
        if fork.state == "active" and fork.active_since is None:
            fork.active_since = now
        expires = state_expires(state)
        if expires is not None:
            fork.remaining(expires, now)
        return actions + self._update_state()

    # -- timers ------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = [self._retry_at, self._release_at]
        if self._attempt is not None:
            deadlines.append(self._attempt.timer_n)
            for fork in self._attempt.forks.values():
                deadlines.append(fork.expires_at)
                if fork.refreshing is None and not fork.unsubscribing:
                    deadlines.append(fork.refresh_at)
        return min((d for d in deadlines if d is not None), default=None)

    def timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self._release_at is not None and now >= self._release_at:
            self._release_at = None
            return self._release()  # gave up waiting for the final NOTIFYs
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            return self._subscribe(now, self.reason, self.code)
        attempt = self._attempt
        if attempt is None:
            return actions
        if attempt.timer_n is not None and now >= attempt.timer_n:
            attempt.timer_n = None
            if not any(fork.notified for fork in attempt.forks.values()):
                return self._attempt_failed(None, "no NOTIFY came within "
                                            f"{self.timers.transaction_timeout:g} s", None,
                                            now, transient=True)
        for fork in list(attempt.forks.values()):
            if fork.expires_at is not None and now >= fork.expires_at:
                actions += self._fork_ended(fork, "timeout", None, None, now, lapsed=True)
                if self._attempt is not attempt:
                    return actions
            elif fork.refresh_at is not None and now >= fork.refresh_at \
                    and fork.refreshing is None and not fork.unsubscribing:
                actions += self._send_refresh(fork, self.expires)
        return actions

    # -- internals -------------------------------------------------------------------------
    def _fork(self, remote_tag: str | None) -> Fork | None:
        if self._attempt is None or remote_tag is None:
            return None
        return self._attempt.forks.get(remote_tag)

    def _headers(self, expires: int) -> list[tuple[str, str]]:
        headers = [("Event", self.event), ("Expires", str(expires))]
        if self.accept:
            headers.append(("Accept", ", ".join(self.accept)))
        if self.eventlist:
            headers.append(("Supported", "eventlist"))
        return headers + list(self.target.headers)

    def _next_key(self) -> str:
        self._keys += 1
        return f"SUBSCRIBE {self._keys}"

    def _send(self, kind: str, request: Request, remote_tag: str | None,
              now: float | None = None, *, challenges: int = 0, too_brief: int = 0
              ) -> list[Action]:
        """Tracks and sends a request; `now` (for Timer N) only for an out-of-dialog one."""
        key = self._next_key()
        self._out[key] = _Outgoing(kind, request, remote_tag, challenges, too_brief)
        attempt = self._attempt
        assert attempt is not None
        if kind == "subscribe":
            assert now is not None
            attempt.request, attempt.in_flight = request, key
            attempt.timer_n = now + self.timers.transaction_timeout
            return [SendRequest(request, key, None)]
        fork = attempt.forks[remote_tag or ""]
        cseq = request.cseq
        if cseq is not None and (fork.dialog.local_seq or 0) < cseq.number:
            fork.dialog.local_seq = cseq.number
        if kind == "refresh":
            fork.refreshing = key
        return [SendRequest(request, key, fork.dialog.id)]

    def _subscribe(self, now: float, reason: str | None, code: int | None) -> list[Action]:
        actions = self._release()
        from_ = self.target.from_.copy()
        from_.tag = new_tag()
        call_id = new_call_id()
        request = build_request(
            "SUBSCRIBE", self.target.uri, from_=from_,
            to=self.target.to or Address(_without_headers(self.target.uri)),
            call_id=call_id, cseq=1, contact=self.target.contact, routes=self.target.routes,
            headers=self._headers(self.expires), body=self.target.body,
            content_type=self.target.content_type if self.target.body else None)
        self._attempt = Attempt(DialogKey(call_id, from_.tag or ""), request)
        actions.append(ClaimDialog(self._attempt.key))
        actions += self._send("subscribe", request, None, now)
        return actions + self._set_state(SubscriptionState.SUBSCRIBING, reason, code)

    def _subscribe_response(self, key: str, out: _Outgoing, response: Response, now: float
                            ) -> list[Action]:
        attempt = self._attempt
        if attempt is None or attempt.in_flight != key:
            return []
        attempt.in_flight = None
        status = response.status
        if response.is_success:
            to = response.to
            tag = to.tag if to is not None else None
            if not tag:
                return self._finish_if_done()  # no dialog to speak of; the NOTIFY makes it
            fork = attempt.forks.get(tag)
            if fork is None:
                if len(attempt.forks) >= self.policy.max_forks:
                    return []
                fork = Fork(Dialog.create_as_uac(out.request, response))
                attempt.forks[tag] = fork
            else:
                fork.dialog.receive_response(out.request, response)
            if self._unsubscribing:
                return self._send_unsubscribe(fork)
            granted = expires_of(response)
            fork.grant(self.expires if granted is None else granted, now, self.rng)
            return []
        if status == 423:
            minimum = min_expires_of(response)
            if minimum is not None and minimum > self.expires \
                    and out.too_brief < self.policy.max_interval_too_brief \
                    and not self._unsubscribing:
                self.expires = minimum
                return self._send("subscribe", self._again(out.request, minimum), None, now,
                                  too_brief=out.too_brief + 1)
        return self._subscribe_failed(key, out, status, response.reason,
                                      retry_after_of(response), now)

    def _again(self, request: Request, expires: int) -> Request:
        """The out-of-dialog SUBSCRIBE again (a new transaction): CSeq + 1, new Expires."""
        again = request.copy()
        again.headers.remove("Via")
        cseq = request.cseq
        assert cseq is not None
        again.headers.set("CSeq", f"{cseq.number + 1} SUBSCRIBE")
        again.headers.set("Expires", str(expires))
        return again

    def _subscribe_failed(self, key: str, out: _Outgoing, status: int, reason: str,
                          retry_after_seconds: int | None, now: float) -> list[Action]:
        attempt = self._attempt
        if attempt is None or attempt.in_flight not in (None, key):
            return []
        attempt.in_flight = None
        if attempt.forks or self._unsubscribing:
            return self._finish_if_done()  # a NOTIFY made a dialog anyway: it stands
        transient = status in (408, 480) or (500 <= status < 600 and status != 501)
        return self._attempt_failed(status, reason, retry_after_seconds, now,
                                    transient=transient)

    def _attempt_failed(self, code: int | None, reason: str, retry_after_seconds: int | None,
                        now: float, *, transient: bool) -> list[Action]:
        actions = self._release()
        if not transient:
            return actions + self._set_state(SubscriptionState.TERMINATED, reason, code)
        self._failures += 1
        delay = retry_after(retry_after_seconds, self.policy.retry_after_cap)
        if delay is None:
            delay = self.policy.transient.delay(self._failures, self.rng)
        self._retry_at = now + delay
        return actions + self._set_state(SubscriptionState.RETRYING, reason, code,
                                         self._retry_at)

    def _refresh_response(self, out: _Outgoing, fork: Fork, response: Response, now: float
                          ) -> list[Action]:
        fork.refreshing = None
        status = response.status
        if fork.unsubscribing:
            return []
        if response.is_success:
            fork.dialog.receive_response(out.request, response)
            granted = expires_of(response)
            fork.grant(self.expires if granted is None else granted, now, self.rng)
            return []
        if status == 423:
            minimum = min_expires_of(response)
            if minimum is not None and minimum > self.expires \
                    and out.too_brief < self.policy.max_interval_too_brief:
                self.expires = minimum
                actions = self._send_refresh(fork, minimum)
                self._out[fork.refreshing or ""].too_brief = out.too_brief + 1
                return actions
        if status in _REFRESH_FATAL:
            return self._fork_ended(fork, None, status, retry_after_of(response), now,
                                    response_reason=response.reason)
        return self._refresh_failed(fork, now)

    def _refresh_failed(self, fork: Fork, now: float) -> list[Action]:
        """The subscription holds until it expires (RFC 6665 §4.1.2.2): try again later."""
        fork.refreshing = None
        if fork.expires_at is not None:
            left = fork.expires_at - now
            fork.refresh_at = now + max(1.0, min(self.policy.refresh_retry, left / 2))
        return []

    def _send_refresh(self, fork: Fork, expires: int) -> list[Action]:
        fork.refresh_at = None
        request = fork.dialog.create_request("SUBSCRIBE", headers=self._headers(expires))
        return self._send("refresh", request, fork.dialog.remote_tag)

    def _send_unsubscribe(self, fork: Fork) -> list[Action]:
        fork.unsubscribing = True
        fork.refresh_at = fork.expires_at = None
        if fork.dialog.state is DialogState.TERMINATED:
            return self._drop(fork)
        request = fork.dialog.create_request("SUBSCRIBE", headers=self._headers(0))
        return self._send("unsubscribe", request, fork.dialog.remote_tag)

    def _fork_ended(self, fork: Fork, reason: str | None, code: int | None,
                    retry_after_seconds: int | None, now: float, *, lapsed: bool = False,
                    response_reason: str | None = None) -> list[Action]:
        stable = fork.active_since is not None and now - fork.active_since >= STABLE_AFTER
        actions = self._drop(fork)
        attempt = self._attempt
        if self._unsubscribing or attempt is None:
            return actions + self._finish_if_done()
        if attempt.forks:
            return actions + self._update_state()
        if stable:
            self._resubscribes = 0
        described = reason or (f"{code} {response_reason}" if code is not None else None)
        if reason in _NEVER_AGAIN or (code is not None and code not in _REFRESH_RESUBSCRIBE):
            return actions + self._release() + self._set_state(
                SubscriptionState.TERMINATED, described, code)
        self._resubscribes += 1
        delay = retry_after(retry_after_seconds, self.policy.retry_after_cap)
        if delay is None:
            at_once = reason in _AGAIN_AT_ONCE or lapsed or code is not None
            if at_once and self._resubscribes == 1:
                delay = 0.0
            else:
                delay = self.policy.resubscribe.delay(max(1, self._resubscribes - 1), self.rng)
        if delay <= 0:
            return actions + self._subscribe(now, described, code)
        actions += self._release()
        self._retry_at = now + delay
        return actions + self._set_state(SubscriptionState.RETRYING, described, code,
                                         self._retry_at)

    def _drop(self, fork: Fork) -> list[Action]:
        fork.dialog.terminate()
        if self._attempt is not None:
            self._attempt.forks.pop(fork.dialog.remote_tag, None)
        for key in [k for k, out in self._out.items()
                    if out.remote_tag == fork.dialog.remote_tag and out.kind != "subscribe"]:
            del self._out[key]
        return []

    def _update_state(self) -> list[Action]:
        forks = self._attempt.forks.values() if self._attempt is not None else ()
        states = {fork.state for fork in forks}
        granted = max((f.granted for f in forks if f.granted is not None), default=None)
        if "active" in states:
            return self._set_state(SubscriptionState.ACTIVE, None, None, expires=granted)
        if "pending" in states:
            return self._set_state(SubscriptionState.PENDING, None, None, expires=granted)
        return []

    def _set_state(self, state: SubscriptionState, reason: str | None, code: int | None = None,
                   retry_at: float | None = None, *, expires: int | None = None
                   ) -> list[Action]:
        if (state, reason, code) == (self.state, self.reason, self.code) \
                and retry_at is None:
            return []
        self.state, self.reason, self.code = state, reason, code
        return [SubscriptionChanged(state, reason, code, retry_at, expires)]

    def _finish_if_done(self) -> list[Action]:
        attempt = self._attempt
        if not self._unsubscribing or attempt is None:
            return []
        if attempt.forks or attempt.in_flight is not None:
            return []
        self._release_at = None
        return self._release()

    def _release(self) -> list[Action]:
        attempt, self._attempt = self._attempt, None
        if attempt is None:
            return []
        for fork in attempt.forks.values():
            fork.dialog.terminate()
        self._out.clear()
        return [ReleaseDialog(attempt.key)]


def _without_headers(uri: Uri) -> Uri:
    return uri.without_headers() if isinstance(uri, SipUri) else uri.copy()
