"""The shared core of an INVITE session (sipd.sessions.invite.session): what a session holds, the
bookkeeping every part uses, and how a call ends (BYE out and in, §15). Sans-I/O."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sipd.sip.builder import reason_phrase
from sipd.sip.dialog import Dialog, SuccessRetransmitter
from sipd.sip.header_values import Address
from sipd.sip.message import Request, Response
from sipd.sip.timers import DEFAULT_TIMERS, TimerSettings

from .content import SDP_TYPE
from .timer import SessionTimer, SessionTimerConfig
from .events import (
    TERMINAL_STATES,
    Action,
    InviteSessionError,
    Role,
    SendAck,
    SendRequest,
    SendResponse,
    SessionState,
    StateChanged,
)

__all__ = ["SessionCore", "OfferSource", "RandomSource", "request_key",
           "unknown_dialog_response"]


class RandomSource(Protocol):
    def random(self) -> float: ...


def request_key(message: Request | Response) -> str:
    """The key of a request we sent, from it or from a response to it: "<METHOD> <CSeq>"."""
    cseq = message.cseq
    if cseq is None:
        raise ValueError("a message without CSeq")
    return f"{cseq.method} {cseq.number}"


def unknown_dialog_response(ref: Any) -> SendResponse:
    """The answer to an in-dialog request that matches no session (RFC 3261 §12.2.2)."""
    return SendResponse(ref, 481, reason_phrase(481))


@dataclass
class _Outgoing:
    kind: str  # "invite" (the initial one), "reinvite", "bye", "other"
    request: Request
    final: Response | None = None


@dataclass
class _SentSuccess:
    """A 2xx we sent to an INVITE, retransmitted until its ACK comes."""
    action: SendResponse
    retransmitter: SuccessRetransmitter
    offer: bool    # it carried our offer: the ACK brings the answer
    initial: bool  # to the dialog-creating INVITE
    sdp: bytes


@dataclass
class _IncomingReinvite:
    request: Request
    ref: Any
    offer: bytes | None
    reliable: bool


OfferSource = bytes | Callable[[], bytes]


@dataclass
class _OwnReinvite:
    offer: OfferSource             # a callable builds a fresh offer for each attempt
    headers: tuple[tuple[str, str], ...]
    key: str | None = None         # the INVITE in flight
    sent_offer: bytes = b""        # the offer of the last attempt
    retry_at: float | None = None  # after a 491
    deferred: bool = False         # retry due, but the remote's INVITE is under way
    attempts: int = 0
    exchanges: int = 0             # the session's exchange count at the last attempt
    refresh: bool = False          # a session refresh (RFC 4028), not a change


@dataclass
class _Ending:
    reason: str
    code: int | None = None
    bye_key: str | None = None
    after_ack: bool = False  # UAS: the BYE waits for the ACK of our 2xx (§15)
    final_state: SessionState = SessionState.ENDED


class SessionCore:
    """State and helpers of an InviteSession; `role`, `state`, `code`, `reason`, `dialog`,
    `local_sdp` and `remote_sdp` (the last completed offer/answer exchange) are public."""

    def __init__(self, *, timers: TimerSettings = DEFAULT_TIMERS,
                 rng: RandomSource | None = None,
                 session_timer: SessionTimerConfig | None = None) -> None:
        self.timers = timers
        # RFC 4028 session timers (sipd.sessions.invite.timer); None: not used on this leg.
        self.session_timer = SessionTimer(session_timer) if session_timer else None
        self.rng: RandomSource = rng if rng is not None else random.Random()
        self.role: Role | None = None
        self.state: SessionState | None = None
        self.code: int | None = None
        self.reason: str | None = None
        self.dialog: Dialog | None = None
        self.invite: Request | None = None  # the dialog-creating INVITE (ours or theirs)
        self.local_sdp: bytes | None = None
        self.remote_sdp: bytes | None = None
        self.early_sdp: bytes | None = None  # remote early media (UAC) / ours (UAS)
        self.reliable = False
        self._requests: dict[str, _Outgoing] = {}
        self._final = False  # the initial INVITE has its final response
        # UAC
        self._invite_key: str | None = None
        self._early: dict[str, Dialog] = {}       # remote tag -> early dialog
        self._acks: dict[tuple[str, int], Request] = {}  # (remote tag, CSeq) -> our ACK
        self._forks: dict[str, Dialog] = {}       # 2xx of other forks, ended with a BYE
        self._cancelled = False
        # UAS
        self._invite_ref: Any = None
        self._local_tag: str | None = None
        self._contact: Address | None = None
        self._offer_in_invite = False
        self._sent_2xx: dict[int, _SentSuccess] = {}  # CSeq of the INVITE -> our 2xx
        # both
        self._incoming_reinvite: _IncomingReinvite | None = None
        self._own_reinvite: _OwnReinvite | None = None
        self._ending: _Ending | None = None
        self._exchanges = 0  # offer/answer exchanges the remote's re-INVITEs completed

    def __repr__(self) -> str:
        state = self.state.value if self.state else "new"
        return f"<InviteSession {self.role.value if self.role else '?'} {state} {self.call_id}>"

    # -- identity -----------------------------------------------------------------------------
    @property
    def call_id(self) -> str | None:
        return self.invite.call_id if self.invite is not None else None

    @property
    def local_tag(self) -> str | None:
        """Our tag: with the Call-ID, what requests in any of our dialogs carry in their To
        (the key to find this session for an incoming request)."""
        if self.role is Role.UAC and self.invite is not None:
            from_ = self.invite.from_
            return from_.tag if from_ is not None else None
        return self._local_tag

    @property
    def terminated(self) -> bool:
        return self.state in TERMINAL_STATES

    # -- helpers ------------------------------------------------------------------------------
    def _check_new(self) -> None:
        if self.role is not None:
            raise InviteSessionError("this session has started already")

    def _set_state(self, state: SessionState | None, code: int | None = None,
                   reason: str | None = None) -> list[Action]:
        if state is None or (state is self.state and code == self.code):
            return []
        self.state, self.code, self.reason = state, code, reason
        return [StateChanged(state, code, reason)]

    def _track(self, request: Request, kind: str) -> str:
        key = request_key(request)
        self._requests[key] = _Outgoing(kind, request)
        return key

    def _respond(self, ref: Any, status: int, reason: str,
                 headers: Iterable[tuple[str, str]] = (), *, to_tag: str | None = None
                 ) -> SendResponse:
        return SendResponse(ref, status, reason, tuple(headers), to_tag=to_tag)

    def _dialog_of(self, request: Request) -> Dialog | None:
        if self.dialog is not None and self._in_dialog(request, self.dialog):
            return self.dialog
        from_ = request.from_
        early = self._early.get(from_.tag or "") if from_ is not None else None
        return early if early is not None and self._in_dialog(request, early) else None

    @staticmethod
    def _in_dialog(request: Request, dialog: Dialog) -> bool:
        to, from_ = request.to, request.from_
        return (request.call_id == dialog.call_id and to is not None and from_ is not None
                and to.tag == dialog.local_tag and (from_.tag or "") == dialog.remote_tag)

    @staticmethod
    def _request(request: Request | None) -> Request:
        assert request is not None
        return request

    @staticmethod
    def _cseq(request: Request | None) -> int:
        assert request is not None and request.cseq is not None
        return request.cseq.number

    def _success(self, ref: Any, headers: Iterable[tuple[str, str]], sdp: bytes
                 ) -> SendResponse:
        contact = self._contact if self.role is Role.UAS else (
            self.dialog.local_contact if self.dialog is not None else None)
        fields = (("Contact", str(contact)),) if contact is not None else ()
        return SendResponse(ref, 200, reason_phrase(200), (*fields, *headers), sdp, SDP_TYPE,
                            self._local_tag)

    def _ack(self, dialog: Dialog, tag: str, cseq: int) -> SendAck:
        ack = dialog.create_ack(cseq)  # no Via: the stack adds one with a fresh branch
        self._acks[(tag, cseq)] = ack
        return SendAck(ack)

    def _resume_reinvite(self) -> list[Action]:  # pragma: no cover - see MidCallMixin
        raise NotImplementedError

    # -- ending -------------------------------------------------------------------------------
    def _start_ending(self, reason: str, *, code: int | None = None,
                      final_state: SessionState = SessionState.ENDED) -> list[Action]:
        self._ending = _Ending(reason, code, final_state=final_state)
        initial = self._sent_2xx.get(self._cseq(self.invite)) if self.invite else None
        if initial is not None and initial.initial:
            self._ending.after_ack = True  # no BYE before the ACK of our 2xx (§15)
            return self._set_state(SessionState.ENDING, code, reason)
        return self._send_bye()

    def _send_bye(self) -> list[Action]:
        ending = self._ending
        assert ending is not None and self.dialog is not None
        if ending.bye_key is not None:
            return []
        ending.after_ack = False
        actions: list[Action] = []
        pending = self._incoming_reinvite
        if pending is not None:  # pending requests still get an answer (§15.1.2)
            self._incoming_reinvite = None
            actions.append(self._respond(pending.ref, 487, reason_phrase(487)))
        for cseq, sent in list(self._sent_2xx.items()):
            if not sent.initial:
                del self._sent_2xx[cseq]
        if self._own_reinvite is not None and self._own_reinvite.key is None:
            self._own_reinvite = None  # a retry that will not happen
        bye = self.dialog.create_request("BYE")
        ending.bye_key = self._track(bye, "bye")
        actions.append(SendRequest(bye, ending.bye_key))
        if self.terminated:
            return actions
        if self._cancelled:  # the 2xx came after our CANCEL: the state is ENDING already
            return actions
        return actions + self._set_state(SessionState.ENDING, ending.code, ending.reason)

    def _bye_response(self, resp: Response) -> list[Action]:
        if resp.is_provisional or self._ending is None:
            return []
        return self._finish(self._ending.final_state, self._ending.code, self._ending.reason)

    def _bye_received(self, bye: Request, ref: Any) -> list[Action]:
        actions: list[Action] = [self._respond(ref, 200, reason_phrase(200))]
        if self.role is Role.UAS and not self._final:
            # the caller gave up on an early dialog (§15.1.2): 487 to the INVITE
            self._final = True
            actions.append(self._respond(self._invite_ref, 487, reason_phrase(487),
                                         to_tag=self._local_tag))
            self.dialog.terminate()  # type: ignore[union-attr]
            return actions + self._finish(SessionState.FAILED, 487, "remote hangup")
        pending = self._incoming_reinvite
        if pending is not None:
            self._incoming_reinvite = None
            actions.append(self._respond(pending.ref, 487, reason_phrase(487)))
        assert self.dialog is not None
        self.dialog.terminate()
        if self._ending is not None:  # the BYEs crossed: ours counts
            return actions + self._finish(self._ending.final_state, self._ending.code,
                                          self._ending.reason)
        return actions + self._finish(SessionState.ENDED, None, "remote hangup")

    def _finish(self, state: SessionState, code: int | None, reason: str | None
                ) -> list[Action]:
        self._sent_2xx.clear()
        self._own_reinvite = None
        self._incoming_reinvite = None
        if self.session_timer is not None:
            self.session_timer.stop()
        if state is SessionState.ENDED and self.dialog is not None:
            self.dialog.terminate()
        return self._set_state(state, code, reason)
