"""Call transfer, sans-I/O: REFER (RFC 3515), Replaces (RFC 3891), Referred-By (RFC 3892) and
the implicit subscription that reports how the transfer went (NOTIFY with message/sipfrag).

Header values (`Refer-To`, `Replaces`, `Referred-By`) are built and parsed here; the two sides
of a transfer are small state machines with the time as an explicit input:

- `ReferSubscriber`, the transferor: we sent REFER. Its final response, then each NOTIFY,
  move it through requested -> accepted -> trying / ringing -> completed or failed. It tells
  what to answer each NOTIFY (200, 400 for a body it cannot read, 489 for another event
  package, 481 for another subscription) and gives up after a bounded time without result.
- `ReferNotifier`, the transferee: we got REFER. It makes the NOTIFY of each step of the new
  call (100 Trying at once, 180/183, then the final code, which ends the subscription).

A Refer-To may carry an embedded Replaces header (attended transfer): it travels escaped in
the URI's header part (RFC 3261 §19.1.1), which `SipUri` encodes and decodes. Of all the
headers a Refer-To URI may embed only Replaces is used: the others would let the referrer
put arbitrary headers in a request we send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipd.sip.errors import SipParseError
from sipd.sip.header_values import (
    Address,
    SubscriptionState,
    parse_address,
    parse_event,
    parse_subscription_state,
)
from sipd.sip.syntax import Scanner, is_token, parse_params
from sipd.sip.uri import SipUri

SIPFRAG_TYPE = "message/sipfrag"
SIPFRAG_CONTENT_TYPE = "message/sipfrag;version=2.0"
EVENT_PACKAGE = "refer"
SUBSCRIPTION_SECONDS = 60  # how long the implicit subscription lasts (RFC 3515 leaves it to us)
RESULT_TIMEOUT = 60.0  # seconds a transferor waits for the final NOTIFY without an expires

# Transfer states, as `session.transfer` events name them.
REQUESTED, ACCEPTED, TRYING, RINGING, COMPLETED, FAILED = (
    "requested", "accepted", "trying", "ringing", "completed", "failed")
FINAL_STATES = frozenset({COMPLETED, FAILED})


class ReferError(ValueError):
    """A REFER (or an INVITE's Replaces) we cannot take: the SIP status to answer and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- Replaces (RFC 3891 §6.1) -----------------------------------------------------------------

@dataclass(frozen=True)
class Replaces:
    """The dialog to replace, named as the recipient sees it: its Call-ID, the recipient's own
    tag (`to_tag`) and its peer's tag (`from_tag`)."""
    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def __str__(self) -> str:
        text = f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}"
        return text + (";early-only" if self.early_only else "")


def parse_replaces(text: str) -> Replaces:
    """A Replaces value: `callid;to-tag=..;from-tag=..[;early-only]` (both tags required).
    ReferError(400) says what is wrong."""
    call_id, _, rest = text.strip().partition(";")
    call_id = call_id.strip()
    if not call_id or any(c.isspace() for c in call_id):
        raise ReferError(400, f"Replaces {text!r} has no Call-ID")
    try:
        scanner = Scanner(";" + rest if rest else "", "Replaces")
        params = parse_params(scanner)
        scanner.ensure_end()
    except SipParseError as exc:
        raise ReferError(400, f"malformed Replaces {text!r}: {exc}") from None
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not to_tag or not from_tag:
        raise ReferError(400, f"Replaces {text!r} needs both to-tag and from-tag")
    return Replaces(call_id, to_tag, from_tag, "early-only" in params)


# --- Refer-To, Referred-By ---------------------------------------------------------------------

@dataclass
class ReferTarget:
    """What a REFER asks for: call `uri` (no headers), replacing `replaces` when given."""
    uri: SipUri
    replaces: Replaces | None = None
    display_name: str | None = None


def refer_to_value(uri: SipUri, replaces: Replaces | None = None) -> str:
    """A Refer-To value (always name-addr: a URI with headers needs the brackets)."""
    target = uri.without_headers()
    if replaces is not None:
        target.headers = [("Replaces", str(replaces))]
    return str(Address(target))


def parse_refer_to(text: str) -> ReferTarget:
    """The target of a REFER. ReferError: 400 for a malformed value or Replaces, 416 for a
    URI that is not sip:/sips: (the only kind we can call)."""
    try:
        address = parse_address(text, "Refer-To")
    except SipParseError as exc:
        raise ReferError(400, f"malformed Refer-To: {exc}") from None
    uri = address.uri
    if not isinstance(uri, SipUri):
        raise ReferError(416, f"cannot call {uri} (only sip: and sips: URIs)")
    replaces = None
    for name, value in uri.headers:
        if name.lower() == "replaces":
            if replaces is not None:
                raise ReferError(400, "Refer-To embeds more than one Replaces")
            replaces = parse_replaces(value)
    return ReferTarget(uri.without_headers(), replaces, address.display_name)


def parse_referred_by(text: str | None) -> Address | None:
    """The Referred-By address, or None when absent or unreadable (it is informative only:
    a transfer does not fail because of it)."""
    if not text:
        return None
    try:
        return parse_address(text, "Referred-By")
    except SipParseError:
        return None


# --- message/sipfrag (RFC 3420) ------------------------------------------------------------------

def sipfrag(status: int, reason: str) -> bytes:
    """The body of a NOTIFY: the status line of the new call's latest response."""
    return f"SIP/2.0 {status} {reason}\r\n".encode()


def parse_sipfrag(body: bytes) -> tuple[int, str]:
    """(status, reason) of a sipfrag whose first line is a status line; ValueError if not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the sipfrag is not UTF-8") from None
    line = text.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version.upper() != "SIP/2.0" or len(code) != 3 or not code.isdigit() \
            or not 100 <= int(code) <= 699:
        raise ValueError(f"not a SIP status line: {line[:80]!r}")
    return int(code), reason.strip()


def state_of(status: int) -> str:
    """The transfer state a status of the new call stands for."""
    if status == 100:
        return TRYING
    if status < 200:
        return RINGING
    return COMPLETED if status < 300 else FAILED


# --- the transferor --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    """A step of a transfer (one `session.transfer` event)."""
    state: str
    code: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class NotifyAnswer:
    """What to answer an incoming NOTIFY, and the step it made (None: no change)."""
    status: int
    reason: str
    progress: Progress | None = None


@dataclass
class ReferSubscriber:
    """We sent REFER (its CSeq number is the subscription's `event_id`, RFC 3515 §2.4.6)."""
    event_id: str
    started: float
    timeout: float = RESULT_TIMEOUT
    state: str = REQUESTED
    code: int | None = None
    reason: str | None = None
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = self.started + self.timeout

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def _step(self, state: str, code: int | None, reason: str | None) -> Progress | None:
        if self.done or (state == self.state and code == self.code):
            return None
        self.state, self.code, self.reason = state, code, reason
        return Progress(state, code, reason)

    def refer_response(self, status: int | None, reason: str | None,
                       now: float) -> Progress | None:
        """The REFER's final response (None: it timed out or could not be sent)."""
        if status is None:
            return self._step(FAILED, 408, reason or "the REFER got no answer")
        if 200 <= status < 300:
            if self.state != REQUESTED:  # a NOTIFY overtook the 202
                return None
            return self._step(ACCEPTED, status, reason)
        if status >= 300:
            return self._step(FAILED, status, reason)
        return None

    def matches(self, event: str | None) -> bool:
        """Whether a NOTIFY's Event names this subscription (an id-less one does too: there
        is one REFER at a time per call)."""
        try:
            header = parse_event(event or "")
        except SipParseError:
            return False
        return header.package.lower() == EVENT_PACKAGE and header.id in (None, self.event_id)

    def notify(self, event: str | None, subscription_state: str | None,
               content_type: str | None, body: bytes, now: float) -> NotifyAnswer:
        """A NOTIFY of the implicit subscription."""
        try:
            header = parse_event(event or "")
        except SipParseError:
            return NotifyAnswer(400, "Bad Event header")
        if header.package.lower() != EVENT_PACKAGE:
            return NotifyAnswer(489, "Bad Event")
        if header.id not in (None, self.event_id) or self.done:
            return NotifyAnswer(481, "Subscription Does Not Exist")
        sub = _subscription_state(subscription_state)
        if sub is None:
            return NotifyAnswer(400, "Missing or malformed Subscription-State")
        if sub.state == "active" and sub.expires:
            self.deadline = max(self.deadline, now + sub.expires)
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        try:
            if mime != SIPFRAG_TYPE:
                raise ValueError(f"a {mime or 'missing'} body, not {SIPFRAG_TYPE}")
            status, reason = parse_sipfrag(body)
        except ValueError as exc:
            # Keep the state; a subscription that ends here ends without a result.
            progress = self._step(FAILED, None, "the transfer ended without a result") \
                if sub.state == "terminated" else None
            return NotifyAnswer(400, f"Bad sipfrag: {exc}"[:120], progress)
        if self.state == REQUESTED:
            self.state = ACCEPTED  # a NOTIFY overtook the 202
        progress = self._step(state_of(status), status, reason)
        if sub.state == "terminated" and not self.done:
            progress = self._step(FAILED, status if status >= 300 else None,
                                  f"the transfer ended without a result "
                                  f"({sub.reason or 'no reason'})")
        return NotifyAnswer(200, "OK", progress)

    def timer(self, now: float) -> Progress | None:
        if self.done or now < self.deadline:
            return None
        return self._step(FAILED, None, "no result: the transfer target's call was not "
                                        "reported in time")


def _subscription_state(text: str | None) -> SubscriptionState | None:
    """The Subscription-State, read leniently: a malformed parameter after a good substate
    (linphone 5 sends `terminated;reason=reason=noresource`) costs the parameters, not the
    NOTIFY and its result."""
    try:
        return parse_subscription_state(text or "")
    except SipParseError:
        state = (text or "").split(";", 1)[0].strip()
        return SubscriptionState(state.lower()) if is_token(state) else None


# --- the transferee --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NotifyContent:
    headers: tuple[tuple[str, str], ...]
    body: bytes
    content_type: str
    final: bool


@dataclass
class ReferNotifier:
    """We accepted a REFER (CSeq number `event_id`): the NOTIFYs of the new call's progress."""
    event_id: str
    expires: int = SUBSCRIPTION_SECONDS
    last: int | None = None
    done: bool = False

    def notify(self, status: int, reason: str) -> NotifyContent | None:
        """The NOTIFY for the new call's status `status` (None: nothing new to say). A final
        status ends the subscription (reason noresource, RFC 3515 §2.4.7)."""
        if self.done or status == self.last or (self.last is not None and status < self.last
                                                and status < 200):
            return None
        self.last = status
        final = status >= 200
        self.done = final
        sub = "terminated;reason=noresource" if final else f"active;expires={self.expires}"
        headers = (("Event", f"{EVENT_PACKAGE};id={self.event_id}"),
                   ("Subscription-State", sub))
        return NotifyContent(headers, sipfrag(status, reason), SIPFRAG_CONTENT_TYPE, final)


__all__ = [
    "ReferError", "Replaces", "parse_replaces", "ReferTarget", "refer_to_value",
    "parse_refer_to", "parse_referred_by", "sipfrag", "parse_sipfrag", "state_of", "Progress",
    "NotifyAnswer", "ReferSubscriber", "NotifyContent", "ReferNotifier",
    "REQUESTED", "ACCEPTED", "TRYING", "RINGING", "COMPLETED", "FAILED", "FINAL_STATES",
    "SIPFRAG_TYPE", "SIPFRAG_CONTENT_TYPE",
]
