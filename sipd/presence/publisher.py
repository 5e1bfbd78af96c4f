"""Event state publication (RFC 3903), sans-I/O: our presence (or dialog state) in PUBLISH
requests, with the entity tag the server gives each version.

    pub = Publisher(PublishTarget(aor_uri, from_=our_aor, routes=(proxy,)),
                    event="presence", content_type=PIDF_TYPE, expires=3600)
    actions = pub.publish(body, now)             # initial, or a modification (SIP-If-Match)
    actions = pub.unpublish(now)                 # remove: Expires 0, SIP-If-Match, no body
    actions = pub.refresh(now)                   # refresh now (after a re-registration, say)
    actions = pub.response(key, final, now)      # the final response of a PUBLISH
    actions = pub.no_response(key, now, reason)  # it timed out / could not be sent
    actions = pub.resend(key, authorized_copy, now)  # instead of feeding a 401/407
    # sleep until pub.next_deadline(), then
    actions = pub.timer(now)                     # refresh before expiry, retries

- One PUBLISH at a time (RFC 3903 §4.1): what is asked for meanwhile waits, and only the
  latest state goes out when the one in flight is answered.
- A refresh carries SIP-If-Match and no body; a modification SIP-If-Match and the new body;
  every PUBLISH of a publication shares one Call-ID and From tag, with a growing CSeq.
- The entity tag lives as long as the publication, not as long as a registration: the
  driver keeps this object across re-registrations and calls `refresh(now)` when the account
  registers again. Once the publication has expired, the next PUBLISH is an initial one.
- 412 Conditional Request Failed: the server lost the tag, so the whole state is published
  anew (initial PUBLISH); 423: again with the Min-Expires; 408, 5xx but 501, no answer:
  `failed` with a retry after a backoff (or Retry-After); any other failure: `failed` for
  good, until the next `publish`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipd.sip.builder import build_request, new_call_id, new_tag
from sipd.sip.header_values import Address
from sipd.sip.message import Request, Response
from sipd.sip.uri import SipUri, Uri

from .actions import SendRequest
from .events import PublicationChanged, PublicationState
from .headers import expires_of, min_expires_of, retry_after_of
from .payload import PIDF_TYPE
from .timing import (
    REFRESH_SPREAD,
    SHARED_RNG,
    PublicationPolicy,
    RandomSource,
    retry_after,
    spread_refresh_delay,
)

__all__ = ["Publisher", "PublishTarget", "PublisherError", "Action"]

Action = SendRequest | PublicationChanged

# What a PUBLISH does: publish the whole state, replace it, keep it alive, remove it.
INITIAL, MODIFY, REFRESH, REMOVE = "initial", "modify", "refresh", "remove"


class PublisherError(ValueError):
    """An input the publisher cannot take (a bug of its driver)."""


@dataclass(frozen=True)
class PublishTarget:
    uri: Uri                     # the presentity: our address of record
    from_: Address
    routes: tuple[Address, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class _Outgoing:
    kind: str
    request: Request
    challenges: int = 0
    too_brief: int = 0


class Publisher:
    """One publication; `state`, `etag`, `body` (what we publish), `expires` readable."""

    def __init__(self, target: PublishTarget, *, event: str = "presence",
                 content_type: str = PIDF_TYPE, expires: int = 3600,
                 policy: PublicationPolicy = PublicationPolicy(),
                 rng: RandomSource | None = None) -> None:
        if expires <= 0:
            raise PublisherError("a publication needs a positive expires")
        self.target = target
        self.event = event
        self.content_type = content_type
        self.expires = expires
        self.policy = policy
        self.rng: RandomSource = rng if rng is not None else SHARED_RNG
        self.state: PublicationState | None = None
        self.etag: str | None = None
        self.body: bytes | None = None
        self._etag_until: float | None = None   # when the server forgets the tag
        self._refresh_at: float | None = None
        self._retry_at: float | None = None
        self._in_flight: str | None = None
        self._out: dict[str, _Outgoing] = {}
        self._wanted: str | None = None          # what to send once the one in flight is done
        self._failures = 0
        self._conditional_failures = 0
        self._keys = 0
        self._call_id = new_call_id()
        self._from = target.from_.copy()
        self._from.tag = new_tag()
        self._cseq = 0

    def __repr__(self) -> str:
        return f"<Publisher {self.event} {self.target.uri} {self.state}>"

    @property
    def finished(self) -> bool:
        """Unpublished and nothing in flight: the driver may drop it."""
        return self.state is PublicationState.UNPUBLISHED and self._in_flight is None

    # -- commands ----------------------------------------------------------------------------
    def publish(self, body: bytes, now: float) -> list[Action]:
        """Publishes `body` as the new state (the first time, or in place of the last)."""
        if not body:
            raise PublisherError("publish needs a body; unpublish removes the state")
        self.body = body
        self._conditional_failures = 0
        return self._want(MODIFY if self._tag_valid(now) else INITIAL, now)

    def unpublish(self, now: float) -> list[Action]:
        """Removes our state from the server (nothing to do if it holds none of ours)."""
        self.body = None
        self._refresh_at = self._retry_at = None
        if self._in_flight is not None:
            self._wanted = REMOVE
            return []
        if not self._tag_valid(now):
            self.etag = None
            return self._set_state(PublicationState.UNPUBLISHED)
        return self._send(REMOVE, now)

    def refresh(self, now: float) -> list[Action]:
        """Refreshes now (or publishes anew when the tag has expired), e.g. after the
        account registered again: the tag is kept, the server learns we are still here."""
        if self.body is None:
            return []
        self._retry_at = None
        return self._want(REFRESH if self._tag_valid(now) else INITIAL, now)

    # -- responses -------------------------------------------------------------------------
    def response(self, key: str, response: Response, now: float) -> list[Action]:
        out = self._out.get(key)
        if out is None or response.is_provisional:
            return []
        del self._out[key]
        self._in_flight = None
        status = response.status
        if response.is_success:
            return self._succeeded(out, response, now) + self._next(now)
        if status == 412:
            # the server does not know our tag (any more): publish the whole state anew
            self.etag = self._etag_until = None
            if out.kind == REMOVE or self.body is None:
                return self._set_state(PublicationState.UNPUBLISHED) + self._next(now)
            self._conditional_failures += 1
            if self._conditional_failures <= self.policy.max_conditional_failures:
                return self._send(INITIAL, now)
        if status == 423:
            minimum = min_expires_of(response)
            if minimum is not None and minimum > self.expires and out.kind != REMOVE \
                    and out.too_brief < self.policy.max_interval_too_brief:
                self.expires = minimum
                return self._send(out.kind, now, too_brief=out.too_brief + 1)
        return self._failed(out, status, response.reason, retry_after_of(response), now)

    def no_response(self, key: str, now: float, reason: str = "no response") -> list[Action]:
        out = self._out.pop(key, None)
        if out is None:
            return []
        self._in_flight = None
        return self._failed(out, 408, reason, None, now)

    def resend(self, key: str, request: Request, now: float) -> list[Action]:
        """Sends `request` (the authorised copy of the PUBLISH of `key`) in its place."""
        out = self._out.pop(key, None)
        if out is None:
            raise PublisherError(f"no request {key!r} to resend")
        self._in_flight = None
        if out.challenges >= self.policy.max_challenges:
            return self._failed(out, 401, "authentication failed", None, now)
        cseq = request.cseq
        if cseq is not None:
            self._cseq = max(self._cseq, cseq.number)
        return self._track(_Outgoing(out.kind, request, out.challenges + 1, out.too_brief))

    # -- timers ------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        if self._in_flight is not None:
            return None
        return min((d for d in (self._refresh_at, self._retry_at) if d is not None),
                   default=None)

    def timer(self, now: float) -> list[Action]:
        if self._in_flight is not None:
            return []
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            if self.body is None:
                return self.unpublish(now) if self.etag is not None else []
            return self._send(MODIFY if self._tag_valid(now) else INITIAL, now)
        if self._refresh_at is not None and now >= self._refresh_at:
            self._refresh_at = None
            if self.body is not None:
                return self._send(REFRESH if self._tag_valid(now) else INITIAL, now)
        return []

    # -- internals -------------------------------------------------------------------------
    def _tag_valid(self, now: float) -> bool:
        return self.etag is not None and self._etag_until is not None \
            and now < self._etag_until

    def _want(self, kind: str, now: float) -> list[Action]:
        if self._in_flight is not None:
            # a state change outranks a refresh; the body sent is the latest either way
            if self._wanted is None or kind != REFRESH:
                self._wanted = kind
            return []
        return self._send(kind, now)

    def _next(self, now: float) -> list[Action]:
        wanted, self._wanted = self._wanted, None
        if wanted is None:
            return []
        if wanted == REMOVE:
            return self.unpublish(now)
        if self.body is None:
            return []
        if wanted in (MODIFY, INITIAL):
            return self._send(MODIFY if self._tag_valid(now) else INITIAL, now)
        return self._send(REFRESH if self._tag_valid(now) else INITIAL, now)

    def _send(self, kind: str, now: float, *, too_brief: int = 0) -> list[Action]:
        self._refresh_at = self._retry_at = None
        headers = [("Event", self.event),
                   ("Expires", "0" if kind == REMOVE else str(self.expires))]
        if kind != INITIAL:
            assert self.etag is not None
            headers.append(("SIP-If-Match", self.etag))
        with_body = kind in (INITIAL, MODIFY)
        self._cseq += 1
        request = build_request(
            "PUBLISH", self.target.uri, from_=self._from,
            to=Address(self.target.uri.without_headers() if isinstance(self.target.uri, SipUri)
                       else self.target.uri.copy()),
            call_id=self._call_id, cseq=self._cseq, routes=self.target.routes,
            headers=headers + list(self.target.headers),
            body=(self.body or b"") if with_body else b"",
            content_type=self.content_type if with_body else None)
        actions = self._track(_Outgoing(kind, request, too_brief=too_brief))
        if kind == INITIAL and self.state is not PublicationState.PUBLISHING:
            actions += self._set_state(PublicationState.PUBLISHING)
        return actions

    def _track(self, out: _Outgoing) -> list[Action]:
        self._keys += 1
        key = f"PUBLISH {self._keys}"
        self._out[key] = out
        self._in_flight = key
        return [SendRequest(out.request, key, None)]

    def _succeeded(self, out: _Outgoing, response: Response, now: float) -> list[Action]:
        self._failures = 0
        if out.kind == REMOVE:
            self.etag = self._etag_until = None
            self._refresh_at = None
            return self._set_state(PublicationState.UNPUBLISHED, response.status)
        self._conditional_failures = 0
        granted = expires_of(response)
        granted = self.expires if granted is None or granted <= 0 else granted
        etag = response.headers.get("SIP-ETag")
        # A 2xx without a tag cannot be refreshed conditionally: the refresh publishes anew.
        self.etag = etag.strip() if etag and etag.strip() else None
        self._etag_until = now + granted if self.etag is not None else None
        self._refresh_at = now + spread_refresh_delay(granted, self.rng, REFRESH_SPREAD)
        if self.body is None:  # unpublished while this was out: the remove comes next
            return []
        return self._set_state(PublicationState.PUBLISHED, response.status, expires=granted,
                               again=out.kind != REFRESH)

    def _failed(self, out: _Outgoing, status: int, reason: str, retry_after_seconds: int | None,
                now: float) -> list[Action]:
        if out.kind == REMOVE:
            # Gone or not, it is no longer ours to keep: the server forgets it at expiry.
            self.etag = self._etag_until = None
            return self._set_state(PublicationState.UNPUBLISHED, status, reason) \
                + self._next(now)
        if self.body is None:  # unpublished meanwhile: the remove (if any) is what matters
            self._refresh_at = None
            return self._next(now) or self._set_state(PublicationState.UNPUBLISHED)
        transient = status == 408 or (500 <= status < 600 and status != 501)
        if not transient:
            self._refresh_at = None
            wanted = self._wanted
            actions = self._set_state(PublicationState.FAILED, status, reason, again=True)
            if wanted is not None and wanted != REFRESH:
                actions += self._next(now)  # a new state was asked for meanwhile: try it
            else:
                self._wanted = None
            return actions
        self._failures += 1
        delay = retry_after(retry_after_seconds, self.policy.retry_after_cap)
        if delay is None:
            delay = self.policy.transient.delay(self._failures, self.rng)
        self._wanted = None
        self._refresh_at = None
        self._retry_at = now + delay
        return self._set_state(PublicationState.FAILED, status, reason, retry_at=self._retry_at,
                               again=True)

    def _set_state(self, state: PublicationState, code: int | None = None,
                   reason: str | None = None, *, expires: int | None = None,
                   retry_at: float | None = None, again: bool = False) -> list[Action]:
        """Reports a new state; the same one again only when `again` (a modification that
        went through, a failure with a new retry time)."""
        if state is self.state and not again:
            return []
        self.state = state
        return [PublicationChanged(state, code, reason, expires, retry_at)]
