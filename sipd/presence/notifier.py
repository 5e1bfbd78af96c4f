"""The notifier side of one subscription (RFC 6665), sans-I/O: sipd as its own presence agent
answers a watcher's SUBSCRIBE and keeps it informed with NOTIFYs.

    watcher = Notifier(event="presence", contact=our_contact, content_type=PIDF_TYPE,
                       body=current_document)
    actions = watcher.subscribe(request, now, ref, decision="pending")  # or allow / deny
    actions = watcher.authorize(True, now)          # the user allowed it (or False)
    actions = watcher.update(new_document, now)     # our presence changed
    actions = watcher.terminate(now, "deactivated") # shutting down
    actions = watcher.response(key, final, now)     # the final response to one of our NOTIFYs
    actions = watcher.no_response(key, now, reason) # it timed out / could not be sent
    actions = watcher.resend(key, authorized_copy, now)  # a watcher that challenges NOTIFYs
    # sleep until watcher.next_deadline(), then
    actions = watcher.timer(now)                    # the subscription expires

- The first SUBSCRIBE: 489 (with Allow-Events) for another event package, 423 (with
  Min-Expires) for an expiry below `min_expires`, 406 when its Accept excludes our document,
  403 when `decision` is "deny"; else 200 with the granted Expires (at most `max_expires`),
  our Contact and To tag, and at once a NOTIFY: `pending` with no body until the user decides,
  or `active` with the current document. Expires 0 is a fetch: one final NOTIFY.
- Every accepted SUBSCRIBE, refreshes too, is followed by a NOTIFY (RFC 6665 §4.2.1.2); a
  refresh with Expires 0 ends it (`terminated;reason=timeout`).
- One NOTIFY at a time (RFC 6665 §4.2.2): a change meanwhile waits, and only the latest state
  goes out when the one in flight is answered.
- A NOTIFY answered 481 or 404, 405, 410, 416, 480-485, 489, 501, 604, or not answered at
  all, ends the subscription without another NOTIFY.
- `WatcherChanged` events say pending / active / terminated with RFC 3857's event names
  (subscribe, approved, rejected, timeout, deactivated, probation, noresource, giveup).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from sipd.sip.builder import new_tag, reason_phrase
from sipd.sip.dialog import Dialog, DialogState
from sipd.sip.errors import SipParseError
from sipd.sip.header_values import Address
from sipd.sip.message import Request, Response

from .actions import ClaimDialog, DialogKey, ReleaseDialog, SendRequest, SendResponse
from .events import WatcherChanged, WatcherState
from .headers import event_of, expires_of
from .payload import PIDF_TYPE

__all__ = ["Notifier", "NotifierPolicy", "NotifierError", "Decision", "Action"]

Action = SendRequest | SendResponse | ClaimDialog | ReleaseDialog | WatcherChanged
Decision = Literal["allow", "deny", "pending"]

_NOTIFY_FATAL = frozenset({404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501,
                           604})
# Reasons a notifier may give (RFC 6665 §4.2.2), each of which RFC 3857 also names.
REASONS = frozenset({"deactivated", "probation", "rejected", "timeout", "giveup",
                     "noresource", "invariant"})


class NotifierError(ValueError):
    """An input the notifier cannot take now (a bug of its driver)."""


@dataclass(frozen=True)
class NotifierPolicy:
    min_expires: int = 60            # shorter asks get 423 with this Min-Expires
    max_expires: int = 3600          # longer asks are granted this
    default_expires: int = 3600      # without Expires (RFC 3856 §6.4 for presence)
    max_challenges: int = 3
    # 200 for every accepted SUBSCRIBE (RFC 6665 §8.3.1 deprecates 202); 202 for a pending
    # one suits watchers written for RFC 3265
    pending_status: int = 200


@dataclass
class _Outgoing:
    request: Request
    challenges: int = 0


class Notifier:
    """One watcher's subscription. `state`, `watcher` (its URI), `display_name`, `dialog`,
    `expires_at` can be read at any time."""

    def __init__(self, *, event: str = "presence", contact: Address,
                 content_type: str = PIDF_TYPE, body: bytes | None = None,
                 policy: NotifierPolicy = NotifierPolicy(),
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.event = event
        self.contact = contact
        self.content_type = content_type
        self.body = body
        self.policy = policy
        self.headers = headers
        self.state: WatcherState | None = None
        self.watcher: str | None = None
        self.display_name: str | None = None
        self.dialog: Dialog | None = None
        self.expires_at: float | None = None
        self._key: DialogKey | None = None
        self._out: dict[str, _Outgoing] = {}
        self._in_flight: str | None = None
        self._dirty = False                  # a NOTIFY is due once the one in flight is done
        self._final: tuple[str, int | None] | None = None  # reason, retry-after of the end
        self._final_sent = False
        self._was_active = False  # the watcher has been allowed to see our state
        self._keys = 0

    def __repr__(self) -> str:
        state = self.state.value if self.state else "new"
        return f"<Notifier {self.event} {self.watcher} {state}>"

    @property
    def finished(self) -> bool:
        return self.state is WatcherState.TERMINATED and self._key is None

    @property
    def dialog_key(self) -> DialogKey | None:
        return self._key

    # -- the watcher's SUBSCRIBEs ------------------------------------------------------------
    def subscribe(self, request: Request, now: float, ref: Any = None, *,
                  decision: Decision = "pending") -> list[Action]:
        """A SUBSCRIBE: the first one (out of dialog; `decision` is the authorisation policy's
        answer for this watcher) or a refresh in our dialog."""
        ref = request if ref is None else ref
        event = event_of(request)
        if event is None or event.package.lower() != self.event.lower():
            return [SendResponse(ref, 489, reason_phrase(489),
                                 headers=(("Allow-Events", self.event),))]
        expires = expires_of(request)
        if expires is None:
            expires = self.policy.default_expires
        if 0 < expires < self.policy.min_expires:
            return [SendResponse(ref, 423, reason_phrase(423),
                                 headers=(("Min-Expires", str(self.policy.min_expires)),))]
        expires = min(expires, self.policy.max_expires)
        if self.dialog is None:
            return self._first(request, ref, now, expires, decision)
        if self.state is WatcherState.TERMINATED or self._final is not None:
            return [SendResponse(ref, 481, reason_phrase(481))]
        problem = self.dialog.receive_request(request)
        if problem is not None:
            return [SendResponse(ref, *problem)]
        actions: list[Action] = [self._accepted(ref, expires)]
        if expires == 0:
            return actions + self._end("timeout", None, now)
        self.expires_at = now + expires
        return actions + self._notify(now)

    def _first(self, request: Request, ref: Any, now: float, expires: int,
               decision: Decision) -> list[Action]:
        if self.state is not None:
            raise NotifierError("this notifier already had its first SUBSCRIBE")
        if not _accepts(request, self.content_type):
            return [SendResponse(ref, 406, reason_phrase(406),
                                 headers=(("Accept", self.content_type),))]
        from_ = request.from_
        if from_ is None or request.call_id is None:
            return [SendResponse(ref, 400, "Missing From or Call-ID")]
        if decision == "deny":
            return [SendResponse(ref, 403, reason_phrase(403))]
        self.watcher = str(from_.uri)
        self.display_name = from_.display_name
        tag = new_tag()
        status = self.policy.pending_status if decision == "pending" else 200
        accepted = self._accepted(ref, expires, tag, status)
        self.dialog = Dialog.create_as_uas(request, accepted.build(request))
        self._key = DialogKey(request.call_id, tag)
        self.expires_at = now + expires
        state = WatcherState.ACTIVE if decision == "allow" else WatcherState.PENDING
        actions: list[Action] = [accepted, ClaimDialog(self._key)]
        actions += self._set_state(state, "approved" if decision == "allow" else "subscribe")
        if expires == 0:  # a fetch: the state once, then over
            return actions + self._end("timeout", None, now)
        return actions + self._notify(now)

    def _accepted(self, ref: Any, expires: int, tag: str | None = None,
                  status: int = 200) -> SendResponse:
        return SendResponse(ref, status, reason_phrase(status),
                            headers=(("Expires", str(expires)), ("Contact", str(self.contact))),
                            to_tag=tag)

    # -- what the user and the presentity's state do ---------------------------------------------
    def authorize(self, allow: bool, now: float) -> list[Action]:
        """The user's decision on a pending (or active) watcher."""
        if self.state is None or self.state is WatcherState.TERMINATED or self._final:
            return []
        if not allow:
            return self._end("rejected", None, now)
        if self.state is WatcherState.ACTIVE:
            return []
        return self._set_state(WatcherState.ACTIVE, "approved") + self._notify(now)

    def update(self, body: bytes | None, now: float) -> list[Action]:
        """Our state changed: active watchers are told; pending ones will be when allowed."""
        if body == self.body:
            return []
        self.body = body
        if self.state is not WatcherState.ACTIVE or self._final is not None:
            return []
        return self._notify(now)

    def terminate(self, now: float, reason: str = "deactivated",
                  retry_after: int | None = None) -> list[Action]:
        """Ends the subscription with `reason` (shutdown: "deactivated" asks the watcher to
        subscribe again, which works once we are back)."""
        if reason not in REASONS:
            raise NotifierError(f"{reason!r} is not a Subscription-State reason")
        if self.state is None or self.state is WatcherState.TERMINATED or self._final:
            return []
        return self._end(reason, retry_after, now)

    # -- responses to our NOTIFYs -------------------------------------------------------------
    def response(self, key: str, response: Response, now: float) -> list[Action]:
        out = self._out.get(key)
        if out is None or response.is_provisional:
            return []
        del self._out[key]
        self._in_flight = None
        if self.dialog is not None:
            self.dialog.receive_response(out.request, response)
        if response.status in _NOTIFY_FATAL:
            return self._gone("timeout" if response.status in (408, 481) else "giveup")
        return self._after_notify(now)

    def no_response(self, key: str, now: float, reason: str = "no response") -> list[Action]:
        if self._out.pop(key, None) is None:
            return []
        self._in_flight = None
        return self._gone("timeout")

    def resend(self, key: str, request: Request, now: float) -> list[Action]:
        out = self._out.pop(key, None)
        if out is None:
            raise NotifierError(f"no request {key!r} to resend")
        self._in_flight = None
        if out.challenges >= self.policy.max_challenges:
            return self._gone("giveup")
        cseq = request.cseq
        if self.dialog is not None and cseq is not None \
                and (self.dialog.local_seq or 0) < cseq.number:
            self.dialog.local_seq = cseq.number
        return self._track(_Outgoing(request, out.challenges + 1))

    # -- timers ----------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        if self.state is WatcherState.TERMINATED or self._final is not None:
            return None
        return self.expires_at

    def timer(self, now: float) -> list[Action]:
        if self.expires_at is None or now < self.expires_at or self._final is not None \
                or self.state in (None, WatcherState.TERMINATED):
            return []
        return self._end("timeout", None, now)

    # -- internals ---------------------------------------------------------------------------
    def _end(self, reason: str, retry_after: int | None, now: float) -> list[Action]:
        self._final = (reason, retry_after)
        actions = self._set_state(WatcherState.TERMINATED, reason)
        return actions + self._notify(now)

    def _notify(self, now: float) -> list[Action]:
        if self._in_flight is not None:
            self._dirty = True
            return []
        dialog = self.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED or self._final_sent:
            return self._release_if_done()
        self._dirty = False
        # The final NOTIFY of an expiry or an unsubscription carries the state to a watcher
        # that was allowed to see it; one that ends by rejection or shutdown carries nothing.
        with_body = self.state is WatcherState.ACTIVE or (
            self._final is not None and self._final[0] == "timeout" and self._was_active)
        if self._final is not None:
            reason, retry_after = self._final
            state = f"terminated;reason={reason}"
            if retry_after is not None:
                state += f";retry-after={retry_after}"
            self._final_sent = True
        else:
            remaining = max(0, math.ceil((self.expires_at or now) - now))
            state = f"{self.state.value if self.state else 'pending'};expires={remaining}"
        body = self.body if with_body and self.body else b""
        request = dialog.create_request(
            "NOTIFY", headers=[("Event", self.event), ("Subscription-State", state),
                               *self.headers],
            body=body, content_type=self.content_type if body else None)
        return self._track(_Outgoing(request))

    def _track(self, out: _Outgoing) -> list[Action]:
        self._keys += 1
        key = f"NOTIFY {self._keys}"
        self._out[key] = out
        self._in_flight = key
        assert self.dialog is not None
        return [SendRequest(out.request, key, self.dialog.id)]

    def _after_notify(self, now: float) -> list[Action]:
        if self._final_sent:
            return self._release_if_done()
        if self._dirty or self._final is not None:
            return self._notify(now)
        return []

    def _gone(self, event: str) -> list[Action]:
        """The watcher is unreachable or forgot the subscription: over, no more NOTIFYs."""
        self._final_sent = True
        if self._final is None:
            self._final = (event, None)
            actions = self._set_state(WatcherState.TERMINATED, event)
        else:
            actions = []
        return actions + self._release_if_done()

    def _release_if_done(self) -> list[Action]:
        if self._in_flight is not None or self._key is None:
            return []
        key, self._key = self._key, None
        if self.dialog is not None:
            self.dialog.terminate()
        self.expires_at = None
        return [ReleaseDialog(key)]

    def _set_state(self, state: WatcherState, event: str) -> list[Action]:
        if state is self.state:
            return []
        self.state = state
        if state is WatcherState.ACTIVE:
            self._was_active = True
        return [WatcherChanged(self.watcher or "", state, event, self.display_name)]


def _accepts(request: Request, content_type: str) -> bool:
    """Whether the SUBSCRIBE's Accept (if any) covers our document."""
    try:
        accept = request.accept
    except SipParseError:
        return True  # unreadable: not a reason to refuse
    if not accept:
        return True
    return any(media.matches(content_type) for media in accept)
