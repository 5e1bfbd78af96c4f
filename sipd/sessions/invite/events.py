"""What an `InviteSession` (sipd.sessions.invite.session) hands back to the layer that drives it:
the public states, the actions to carry out, and the events to publish. Plain data, no I/O.

Actions the trio driver executes, in the order returned:
- `SendRequest(request, key)`: start a client transaction for `request` (it has no Via: the
  stack fills it in, with a fresh branch) and feed every response back with
  `session.response(resp, now)`; `key` names the request in `timeout` / `transport_error`
  / `resend`.
- `SendAck(ack)`: send the ACK of a 2xx statelessly (`stack.send_stateless`); the same ACK
  object comes again for a retransmitted 2xx.
- `SendCancel(key)`: `stack.cancel(handle)` for the INVITE transaction of `key`.
- `SendResponse(ref, ...)`: `ref.respond_nowait(status, reason, headers=..., body=...,
  content_type=..., to_tag=...)` where `ref` is what the driver passed in with the request
  (its `IncomingRequest`); a 2xx to an INVITE comes again while its ACK is missing.

Events to publish (or to act on): `StateChanged`, `RemoteSdp`, `OfferReceived`,
`ReinviteCompleted`, `DtmfReceived`, `InDialogRequest`, `InDialogResponse`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sipd.sip.builder import build_response
from sipd.sip.message import Request, Response

__all__ = [
    "SessionState", "Role", "InviteSessionError", "SendRequest", "SendAck", "SendCancel",
    "SendResponse", "StateChanged", "RemoteSdp", "OfferReceived", "ReinviteCompleted",
    "DtmfReceived", "InDialogRequest", "InDialogResponse", "Action", "TERMINAL_STATES",
]


class SessionState(str, enum.Enum):
    """The public states (`session.state` events). Both roles start in CALLING: a UAC calls,
    a UAS is being called."""
    CALLING = "calling"
    RINGING = "ringing"          # 180 sent or received
    EARLY = "early"              # early media: 183 (or another 1xx) with SDP
    ESTABLISHED = "established"  # 2xx and its ACK
    ENDING = "ending"            # CANCEL or BYE sent, waiting for its outcome
    ENDED = "ended"              # an established (or answered) call is over
    FAILED = "failed"            # the call never got established


TERMINAL_STATES = frozenset({SessionState.ENDED, SessionState.FAILED})


class Role(str, enum.Enum):
    UAC = "uac"  # we sent the INVITE (and own the Call-ID)
    UAS = "uas"


class InviteSessionError(ValueError):
    """An input that the session cannot take in its current state (a bug of the caller, or a
    command a user gave at the wrong moment): the message says why."""


# --- actions ---------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SendRequest:
    request: Request
    key: str  # "<METHOD> <CSeq number>", unique within the session


@dataclass(frozen=True, eq=False)
class SendAck:
    ack: Request


@dataclass(frozen=True)
class SendCancel:
    key: str  # the INVITE to cancel


@dataclass(frozen=True, eq=False)
class SendResponse:
    ref: Any  # what the driver passed with the request (its IncomingRequest), else the Request
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str | None = None
    to_tag: str | None = None
    retransmission: bool = False  # the same 2xx again (its ACK has not come)

    def build(self, request: Request) -> Response:
        """The response as `IncomingRequest.respond_nowait` builds it (less its Server)."""
        return build_response(request, self.status, self.reason, to_tag=self.to_tag,
                              headers=self.headers, body=self.body,
                              content_type=self.content_type)


# --- events ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StateChanged:
    state: SessionState
    code: int | None = None
    reason: str | None = None

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"state": self.state.value}
        if self.code is not None:
            data["code"] = self.code
        if self.reason is not None:
            data["reason"] = self.reason
        return data


@dataclass(frozen=True)
class RemoteSdp:
    """An SDP of the remote party in the call setup: "offer" (in the INVITE: answer it with
    `accept`), "early" (early media in a 1xx), "answer" (in the 2xx or the ACK, also the
    answer to our re-INVITE). Offers in re-INVITEs come as `OfferReceived` instead."""
    sdp: bytes
    kind: str


@dataclass(frozen=True)
class OfferReceived:
    """A re-INVITE: answer with `answer_reinvite(sdp, now)` or `reject_reinvite(code)`.
    `sdp` is None for a re-INVITE without offer: then `answer_reinvite` takes our offer and
    the answer comes in the ACK (as `RemoteSdp(kind="answer")`)."""
    sdp: bytes | None


@dataclass(frozen=True)
class ReinviteCompleted:
    """The outcome of our `reinvite`: accepted (its answer came as RemoteSdp just before),
    or refused (the session keeps its previous media, RFC 3261 §14.1). A 491 is retried
    by the session itself; it ends up here only when the offer was plain bytes and the
    remote's own re-INVITE changed the session before the retry (pass a callable offer to
    `reinvite` to have it rebuilt instead)."""
    accepted: bool
    code: int | None
    reason: str


@dataclass(frozen=True)
class DtmfReceived:
    digit: str       # 0-9 * # A-D
    duration: int    # milliseconds


@dataclass(frozen=True, eq=False)
class InDialogRequest:
    """A request in the dialog that the session does not handle itself (NOTIFY, REFER,
    MESSAGE, UPDATE, OPTIONS, INFO of another package...): the owner answers it through
    `ref` (the session sent nothing)."""
    request: Request
    ref: Any


@dataclass(frozen=True, eq=False)
class InDialogResponse:
    """The final response to a request sent with `send_in_dialog`, or None with `reason`
    when it timed out or could not be sent."""
    key: str
    response: Response | None
    reason: str | None = None


Action = (
    SendRequest
    | SendAck
    | SendCancel
    | SendResponse
    | StateChanged
    | RemoteSdp
    | OfferReceived
    | ReinviteCompleted
    | DtmfReceived
    | InDialogRequest
    | InDialogResponse
)
