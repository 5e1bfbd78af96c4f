"""Dialogs (RFC 3261 §12): creation on either side, in-dialog requests, target refresh,
CSeq bookkeeping, and the UAS core's 2xx retransmission (§13.3.1.4, RFC 6026).

    # UAC: a 1xx with a To tag or a 2xx to our INVITE (one Dialog per To tag when forked)
    dialog = Dialog.create_as_uac(invite, response)
    ack = dialog.create_ack(invite.cseq.number, via=new_via(...))   # for the 2xx
    bye = dialog.create_request("BYE", via=new_via(...))
    # UAS: the INVITE and the 1xx/2xx we answered it with (which carries our To tag)
    dialog = Dialog.create_as_uas(invite, ok)
    problem = dialog.receive_request(next_request)   # (500, reason) when out of order

Route sets: a UAC takes the response's Record-Route in reverse order, a UAS the request's as
is; both send in-dialog requests by loose routing, or by strict routing (Request-URI = first
route, remote target appended as the last Route) when the first route has no `lr`.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from .builder import new_branch
from .header_values import Address, Via
from .headers import Headers
from .message import Request, Response
from .timers import DEFAULT_TIMERS, TimerSettings
from .uri import SipUri, Uri

# Requests whose Contact replaces the remote target (RFC 3261 §12.2, RFC 3311, RFC 6665).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class DialogId:
    call_id: str
    local_tag: str
    remote_tag: str


def dialog_id_of_request(request: Request) -> DialogId | None:
    """The dialog an incoming request belongs to, as seen by its receiver (None without a
    To tag, i.e. outside any dialog)."""
    to, from_ = request.to, request.from_
    if request.call_id is None or to is None or not to.tag or from_ is None:
        return None
    return DialogId(request.call_id, to.tag, from_.tag or "")


def dialog_id_of_response(response: Response) -> DialogId | None:
    """The dialog a response belongs to, as seen by the UAC that receives it."""
    to, from_ = response.to, response.from_
    if response.call_id is None or to is None or not to.tag or from_ is None or not from_.tag:
        return None
    return DialogId(response.call_id, from_.tag, to.tag)


class Dialog:
    def __init__(
        self,
        *,
        call_id: str,
        local_tag: str,
        remote_tag: str,
        local_uri: Address,
        remote_uri: Address,
        remote_target: Uri,
        route_set: Iterable[Address] = (),
        local_seq: int | None = None,
        remote_seq: int | None = None,
        secure: bool = False,
        local_contact: Address | None = None,
        state: DialogState = DialogState.CONFIRMED,
        is_uac: bool = True,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = _without_tag(local_uri)
        self.remote_uri = _without_tag(remote_uri)
        self.remote_target = remote_target
        self.route_set = [route.copy() for route in route_set]
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.secure = secure
        self.local_contact = local_contact
        self.state = state
        self.is_uac = is_uac
        self.last_ack: Request | None = None

    def __repr__(self) -> str:
        return f"<Dialog {self.state.value} {self.id}>"

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create_as_uac(cls, request: Request, response: Response) -> Dialog:
        """From our dialog-creating request and a 101-199 response with a To tag or a 2xx
        (RFC 3261 §12.1.2)."""
        to, from_ = response.to, request.from_
        if to is None or not to.tag or from_ is None or not from_.tag:
            raise ValueError("a dialog needs a From tag and a To tag in the response")
        if not 100 < response.status < 300:
            raise ValueError(f"a {response.status} response does not create a dialog")
        contacts = response.contacts
        cseq = request.cseq
        assert cseq is not None and request.call_id is not None
        return cls(
            call_id=request.call_id,
            local_tag=from_.tag,
            remote_tag=to.tag,
            local_uri=from_,
            remote_uri=to,
            remote_target=contacts[0].uri if contacts else request.uri,
            route_set=list(reversed(response.record_routes)),
            local_seq=cseq.number,
            secure=_is_secure(request),
            local_contact=request.contacts[0] if request.contacts else None,
            state=DialogState.EARLY if response.is_provisional else DialogState.CONFIRMED,
            is_uac=True,
        )

    @classmethod
    def create_as_uas(cls, request: Request, response: Response) -> Dialog:
        """From a dialog-creating request and our 101-299 response to it, which carries our
        To tag and Contact (RFC 3261 §12.1.1)."""
        to, from_ = response.to, request.from_
        if to is None or not to.tag or from_ is None:
            raise ValueError("a dialog needs our To tag in the response")
        if not 100 < response.status < 300:
            raise ValueError(f"a {response.status} response does not create a dialog")
        contacts = request.contacts
        cseq = request.cseq
        assert cseq is not None and request.call_id is not None
        return cls(
            call_id=request.call_id,
            local_tag=to.tag,
            remote_tag=from_.tag or "",  # RFC 2543 peers send no From tag
            local_uri=to,
            remote_uri=from_,
            remote_target=contacts[0].uri if contacts else _fallback_target(request),
            route_set=request.record_routes,
            remote_seq=cseq.number,
            secure=_is_secure(request),
            local_contact=response.contacts[0] if response.contacts else None,
            state=DialogState.EARLY if response.is_provisional else DialogState.CONFIRMED,
            is_uac=False,
        )

    # -- sending --------------------------------------------------------------------------
    def create_request(
        self,
        method: str,
        *,
        via: Via | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        max_forwards: int = 70,
    ) -> Request:
        """A request within the dialog (RFC 3261 §12.2.1.1); takes the next local CSeq
        (except ACK and CANCEL, use `create_ack` / `builder.build_cancel`)."""
        if self.state is DialogState.TERMINATED:
            raise ValueError(f"dialog {self.id} is terminated")
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} reuses its INVITE's CSeq; use create_ack or build_cancel")
        if self.local_seq is None:
            self.local_seq = secrets.randbelow(2**31 - 1) + 1  # UAS side: starts anywhere
        else:
            self.local_seq += 1
        return self._build(method, self.local_seq, via, headers, body, content_type, max_forwards)

    def create_ack(
        self,
        cseq_number: int,
        *,
        via: Via | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """The ACK for a 2xx to the INVITE with CSeq `cseq_number` (a transaction of its own,
        so a new branch). Kept in `last_ack` to answer 2xx retransmissions with."""
        if via is not None and not via.branch:
            via = via.copy()
            via.params.set("branch", new_branch())
        self.last_ack = self._build("ACK", cseq_number, via, headers, body, content_type, 70)
        return self.last_ack

    def _build(self, method: str, number: int, via: Via | None,
               headers: Iterable[tuple[str, str]], body: bytes, content_type: str | None,
               max_forwards: int) -> Request:
        uri, routes = self._request_uri_and_routes()
        fields = Headers()
        if via is not None:
            fields.add("Via", str(via))
        fields.add("Max-Forwards", str(max_forwards))
        for route in routes:
            fields.add("Route", str(route))
        local = self.local_uri.copy()
        local.tag = self.local_tag
        remote = self.remote_uri.copy()
        if self.remote_tag:
            remote.tag = self.remote_tag
        fields.add("From", str(local))
        fields.add("To", str(remote))
        fields.add("Call-ID", self.call_id)
        fields.add("CSeq", f"{number} {method}")
        if method in TARGET_REFRESH_METHODS and self.local_contact is not None:
            fields.add("Contact", str(self.local_contact))
        for name, value in headers:
            fields.add(name, value)
        if content_type is not None:
            fields.set("Content-Type", content_type)
        return Request(method, uri, fields, body)

    def _request_uri_and_routes(self) -> tuple[Uri, list[Address]]:
        if not self.route_set:
            return self.remote_target.copy(), []
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target.copy(), [r.copy() for r in self.route_set]
        # Strict router: it gets the Request-URI, the remote target travels as last Route.
        uri = first.without_headers() if isinstance(first, SipUri) else first.copy()
        routes = [r.copy() for r in self.route_set[1:]] + [Address(self.remote_target.copy())]
        return uri, routes

    # -- receiving ------------------------------------------------------------------------
    def receive_request(self, request: Request) -> tuple[int, str] | None:
        """Checks and records a request received in this dialog (RFC 3261 §12.2.2). Returns
        (500, reason) for an out-of-order CSeq; otherwise updates the remote CSeq and, for
        target refresh requests, the remote target."""
        cseq = request.cseq
        assert cseq is not None
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and cseq.number < self.remote_seq:
                return 500, "CSeq Out of Order"
            self.remote_seq = cseq.number
        if request.method in TARGET_REFRESH_METHODS:
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri
        return None

    def receive_response(self, request: Request, response: Response) -> None:
        """Updates the dialog from a response to one of our requests in it (or to the
        request that created it): confirmation, route set and remote target on a 2xx,
        termination on a failure of the creating INVITE or on 481/408 (§12.2.1.2)."""
        if response.is_provisional:
            if self.state is DialogState.EARLY:
                self._refresh_target(response)
            return
        if response.is_success:
            if self.state is DialogState.EARLY:
                self.state = DialogState.CONFIRMED
                if self.is_uac:  # the 2xx's Record-Route is the one that counts
                    self.route_set = list(reversed(response.record_routes))
                self._refresh_target(response)
            elif request.method in TARGET_REFRESH_METHODS:
                self._refresh_target(response)
            return
        if self.state is DialogState.EARLY and request.method == "INVITE":
            self.state = DialogState.TERMINATED
        elif response.status in (408, 481):
            self.state = DialogState.TERMINATED

    def _refresh_target(self, response: Response) -> None:
        contacts = response.contacts
        if contacts:
            self.remote_target = contacts[0].uri

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED


def _without_tag(address: Address) -> Address:
    copy = address.copy()
    copy.tag = None
    return copy


def _is_secure(request: Request) -> bool:
    return isinstance(request.uri, SipUri) and request.uri.secure


def _fallback_target(request: Request) -> Uri:
    # A dialog-creating request must carry a Contact; without one, answer to the From URI.
    from_ = request.from_
    assert from_ is not None
    return from_.uri


# --- the UAS core's 2xx retransmission -------------------------------------------------------

class SuccessRetransmitter:
    """Re-sends the 2xx to an INVITE until its ACK arrives (RFC 3261 §13.3.1.4): every T1,
    doubling up to T2, over unreliable transports; gives up after 64*T1 on any transport
    (then the dialog should be ended with a BYE).

    `handle_timeout(now)` returns "retransmit" (send `response` again through the INVITE
    server transaction, which is in its Accepted state for exactly that long), "timed_out",
    or None.
    """

    def __init__(self, response: Response, *, reliable: bool, now: float,
                 timers: TimerSettings = DEFAULT_TIMERS) -> None:
        self.response = response
        self.timers = timers
        self._interval = timers.t1
        self._retransmit_at: float | None = None if reliable else now + timers.t1
        self._give_up_at: float | None = now + timers.transaction_timeout
        self.acknowledged = False

    def ack_received(self) -> None:
        self.acknowledged = True
        self._retransmit_at = self._give_up_at = None

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self._retransmit_at, self._give_up_at) if d is not None]
        return min(deadlines, default=None)

    def handle_timeout(self, now: float) -> str | None:
        if self._give_up_at is not None and now >= self._give_up_at:
            self._retransmit_at = self._give_up_at = None
            return "timed_out"
        if self._retransmit_at is not None and now >= self._retransmit_at:
            self._interval = min(self._interval * 2, self.timers.t2)
            self._retransmit_at += self._interval
            return "retransmit"
        return None
