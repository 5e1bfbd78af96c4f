"""The INVITE session of one call, either role (RFC 3261 §13-15, RFC 3264 timing), sans-I/O.

Driven like h11: the trio layer feeds inputs with the time of its own clock and carries out
the actions it gets back, in order (sipd.sessions.invite.events says how). SDP bodies are
opaque bytes here; what they mean is sipd.sessions.sdp's business.

    # UAC: the caller builds the INVITE, with its SDP offer
    call = InviteSession()
    actions = call.start(invite, now)           # SendRequest(invite, key), StateChanged(calling)
    actions = call.response(resp, now)          # every response of the INVITE transaction, and
                                                # retransmitted 2xx from the stray-response path
    actions = call.cancel(now)                  # before a final response: SendCancel
    actions = call.timeout(now)                 # timer B: failed 408
    actions = call.resend(key, authorized_copy, now)  # instead of feeding a 401/407
    # UAS
    call = InviteSession()
    actions = call.incoming(invite, now, contact=our_contact, ref=incoming_request)
    call.ring(now); call.progress(early_sdp, now); call.accept(answer_sdp, now)
    call.reject(486, now); call.cancelled(now, already_answered=True)  # a CANCEL came
    # both, in the dialog
    actions = call.request(req, now, ref=incoming_request)   # ACK, BYE, re-INVITE, INFO...
    call.end(now); call.reinvite(offer, now); call.answer_reinvite(answer, now)
    call.send_in_dialog("REFER", now, headers=...)            # a hook for REFER/NOTIFY
    # timers: sleep until call.next_deadline(), then
    actions = call.timer(now)                   # 2xx retransmissions, glare retries

Rules it follows: a UAC ACKs every 2xx to each of its INVITEs, again for every
retransmission, and a 2xx that comes after a CANCEL, or from a second fork, is ACKed and then
ended with a BYE (§13.2.2.4, §15); a UAS retransmits its 2xx until the ACK comes, and
without an ACK within 64*T1 ends the dialog with a BYE (§13.3.1.4); no BYE before the ACK
of our 2xx (§15); one INVITE transaction at a time in a dialog: a re-INVITE while ours is
out gets 491, while theirs is unanswered 500 with Retry-After (§14.2); our re-INVITE that
gets 491 is retried after 2.1-4 s when we own the Call-ID, 0-2 s otherwise (§14.1), and
after the remote's re-INVITE when that one comes in between; a 481 or a timeout of our
re-INVITE ends the dialog (§12.2.1.2). Both roles report "calling" first (a UAS: being
called); "failed" is the end of a call that never got established, "ended" of one that did.

The parts: invite_core (state, bookkeeping, BYE), invite_uas (answering an INVITE),
invite_midcall (re-INVITE, INFO, other in-dialog requests), invite_content (SDP and DTMF
bodies), invite_events (states, actions, events).
"""

from __future__ import annotations

from typing import Any

from sipd.sip.builder import reason_phrase
from sipd.sip.dialog import Dialog, DialogState
from sipd.sip.message import Request, Response

from .content import BodyError, sdp_of
from .timer import EXPIRED, Due
from .core import (
    RandomSource,
    _Ending,
    _Outgoing,
    _SentSuccess,
    request_key,
    unknown_dialog_response,
)
from .events import (
    Action,
    InDialogResponse,
    InviteSessionError,
    RemoteSdp,
    Role,
    SendAck,
    SendCancel,
    SendRequest,
    SendResponse,
    SessionState,
)
from .midcall import MidCallMixin
from .uas import UasMixin

__all__ = ["InviteSession", "RandomSource", "request_key", "unknown_dialog_response"]


class InviteSession(UasMixin, MidCallMixin):
    """One call, either role: see the module docstring. `role`, `state`, `code`, `reason`,
    `dialog`, `local_sdp` and `remote_sdp` (the last completed offer/answer exchange) can
    be read at any time."""

    # -- UAC ----------------------------------------------------------------------------------
    def start(self, invite: Request, now: float, *, reliable: bool = False) -> list[Action]:
        """Sends our INVITE (with its SDP offer; a From tag, a Contact). `reliable`: the
        transport is a stream (for the 2xx we may send to re-INVITEs)."""
        self._check_new()
        if invite.method != "INVITE":
            raise InviteSessionError(f"start() takes an INVITE, not {invite.method}")
        from_ = invite.from_
        if from_ is None or not from_.tag or invite.call_id is None or invite.cseq is None:
            raise InviteSessionError("the INVITE needs a From tag, a Call-ID and a CSeq")
        try:
            offer = sdp_of(invite)
        except BodyError as exc:
            raise InviteSessionError(f"the INVITE body is no SDP offer: {exc.reason}") from None
        if offer is None:
            raise InviteSessionError("an INVITE without SDP offer is not supported: the offer "
                                     "would come in the 2xx and our answer in the ACK")
        self.role, self.invite, self.reliable = Role.UAC, invite, reliable
        self.local_sdp = offer
        if self.session_timer is not None:
            _set_timer_headers(invite, self.session_timer.request_headers())
        self._invite_key = self._track(invite, "invite")
        return [SendRequest(invite, self._invite_key),
                *self._set_state(SessionState.CALLING)]

    @property
    def invite_final(self) -> Response | None:
        """The final response our INVITE got; None before one came, and when the INVITE
        timed out or could not be sent (the 408/503 of `timeout`/`transport_error`)."""
        out = self._requests.get(self._invite_key) if self._invite_key else None
        return out.final if out is not None else None

    def cancel(self, now: float) -> list[Action]:
        """Cancels our INVITE before its final response (nothing once one came; a 2xx that
        still comes is ACKed and ended with a BYE)."""
        if self.role is not Role.UAC or self._final or self.terminated or self._cancelled:
            return []
        self._cancelled = True
        self._ending = _Ending("cancelled", final_state=SessionState.FAILED)
        assert self._invite_key is not None
        return [SendCancel(self._invite_key), *self._set_state(SessionState.ENDING,
                                                               None, "cancelled")]

    def _invite_response(self, out: _Outgoing, resp: Response, now: float) -> list[Action]:
        if resp.status == 100:
            return []
        to = resp.to
        tag = to.tag if to is not None else None
        if resp.is_success:
            return self._invite_success(out, resp, tag, now)
        if self._final:
            return []  # a late response of another branch
        invite = out.request
        if resp.is_provisional:
            if tag:
                early = self._early.get(tag)
                if early is None:
                    self._early[tag] = Dialog.create_as_uac(invite, resp)
                else:
                    early.receive_response(invite, resp)
            if self._cancelled:
                return []
            try:
                sdp = sdp_of(resp)
            except BodyError:
                sdp = None  # not ours to reject; no early media from it
            actions: list[Action] = []
            if sdp is not None:
                if sdp != self.early_sdp:
                    self.early_sdp = sdp
                    actions.append(RemoteSdp(sdp, "early"))
                actions += self._set_state(SessionState.EARLY, resp.status, resp.reason)
            elif resp.status == 180 and self.state is SessionState.CALLING:
                actions += self._set_state(SessionState.RINGING, resp.status, resp.reason)
            return actions
        # 300-699: the INVITE failed (its ACK is the transaction's business)
        for early in self._early.values():
            early.receive_response(invite, resp)
        self._early.clear()
        timer = self.session_timer
        if resp.status == 422 and timer is not None and not self._cancelled \
                and timer.too_small(resp):
            # Session Interval Too Small (RFC 4028 §7.4): again, asking for its Min-SE.
            retry = invite.copy()
            retry.headers.remove("Via")
            retry.headers.set("CSeq", f"{self._cseq(invite) + 1} INVITE")
            _set_timer_headers(retry, timer.request_headers())
            return self.resend(request_key(resp), retry, now)
        self._final = True
        return self._finish(SessionState.FAILED, resp.status, resp.reason)

    def _invite_success(self, out: _Outgoing, resp: Response, tag: str | None, now: float
                        ) -> list[Action]:
        cseq = resp.cseq
        assert cseq is not None
        if not tag:
            return []  # a 2xx without To tag cannot be ACKed into any dialog
        sent = self._acks.get((tag, cseq.number))
        if sent is not None:
            return [SendAck(sent)]  # a retransmission: the ACK again (§13.2.2.4)
        invite = out.request
        if self.dialog is not None and tag != self.dialog.remote_tag:
            return self._end_fork(invite, resp, tag)
        dialog = self._early.pop(tag, None)
        if dialog is None:
            dialog = Dialog.create_as_uac(invite, resp)
        else:
            dialog.receive_response(invite, resp)
        for early in self._early.values():
            early.terminate()
        self._early.clear()
        self.dialog = dialog
        self._final = True
        actions: list[Action] = [self._ack(dialog, tag, cseq.number)]
        if self.terminated and self._ending is None:  # after timer B: answered too late
            assert self.state is not None  # terminated: in a terminal state
            self._ending = _Ending(self.reason or "", self.code, final_state=self.state)
        if self._ending is not None:  # cancelled (or given up) too late: ACK, then BYE (§15)
            return actions + self._send_bye()
        try:
            sdp = sdp_of(resp)
        except BodyError:
            sdp = None
        sdp = sdp if sdp is not None else self.early_sdp
        if sdp is None:
            return actions + self._start_ending("no SDP answer in the 2xx", code=resp.status)
        self.remote_sdp = sdp
        actions.append(RemoteSdp(sdp, "answer"))
        if self.session_timer is not None:
            self.session_timer.answered(resp, now)
        return actions + self._set_state(SessionState.ESTABLISHED, resp.status, resp.reason)

    def _end_fork(self, invite: Request, resp: Response, tag: str) -> list[Action]:
        """A 2xx of another fork after ours: ACK it and end its dialog (§13.2.2.4)."""
        cseq = resp.cseq
        assert cseq is not None
        fork = Dialog.create_as_uac(invite, resp)
        self._forks[tag] = fork
        actions: list[Action] = [self._ack(fork, tag, cseq.number)]
        bye = fork.create_request("BYE")
        return actions + [SendRequest(bye, f"{request_key(bye)} {tag}")]

    # -- both: the ACK of our 2xx, hanging up ------------------------------------------------
    def _ack_received(self, ack: Request, now: float) -> list[Action]:
        cseq = ack.cseq
        if cseq is None or self.dialog is None or not self._in_dialog(ack, self.dialog):
            return []
        sent = self._sent_2xx.pop(cseq.number, None)
        if sent is None:
            return []  # a retransmitted ACK, or one of nothing we know
        sent.retransmitter.ack_received()
        if self._ending is not None:
            # we hung up meanwhile: the BYE that waited for this ACK goes now (§15)
            return self._send_bye() if self._ending.after_ack else []
        actions: list[Action] = []
        if sent.offer:
            try:
                answer = sdp_of(ack)
            except BodyError:
                answer = None
            if answer is None:
                return self._start_ending("no SDP answer in the ACK")
            self.local_sdp, self.remote_sdp = sent.sdp, answer
            actions.append(RemoteSdp(answer, "answer"))
        if not sent.initial:
            if sent.offer:
                self._exchanges += 1
            return actions + self._resume_reinvite()
        return actions + self._set_state(SessionState.ESTABLISHED, 200, reason_phrase(200))

    def end(self, now: float) -> list[Action]:
        """Hangs up: CANCEL (UAC) or 603 (UAS) before the call is answered, BYE after
        (for a UAS only once the ACK of its 2xx came, §15)."""
        if self.role is None or self.terminated or self._ending is not None:
            return []
        if not self._final:
            return self.cancel(now) if self.role is Role.UAC else self.reject(603, now)
        return self._start_ending("local hangup")

    # -- both: what comes in ------------------------------------------------------------------
    def request(self, request: Request, now: float, *, ref: Any = None,
                reliable: bool | None = None) -> list[Action]:
        """A request in one of our dialogs (the driver finds the session by Call-ID and the
        To tag, `local_tag`): ACK, BYE, re-INVITE, INFO; others become InDialogRequest.
        `ref` comes back in SendResponse; `reliable` is the transport of a re-INVITE."""
        if self.role is None:
            raise InviteSessionError("request() before start() or incoming()")
        ref = request if ref is None else ref
        if request.method == "ACK":
            return self._ack_received(request, now)
        if request.method == "CANCEL":
            raise InviteSessionError("the stack answers CANCEL; feed cancelled() instead")
        dialog = self._dialog_of(request)
        if dialog is None or dialog.state is DialogState.TERMINATED or self.terminated:
            return [unknown_dialog_response(ref)]
        problem = dialog.receive_request(request)
        if problem is not None:
            return [self._respond(ref, *problem)]
        if dialog is not self.dialog:  # an early dialog of a fork (UAC)
            if request.method == "BYE":
                dialog.terminate()
                return [self._respond(ref, 200, reason_phrase(200))]
            return self._other_request(request, ref)
        if request.method == "BYE":
            return self._bye_received(request, ref)
        if request.method == "INVITE":
            return self._reinvite_received(request, ref, now,
                                           self.reliable if reliable is None else reliable)
        if request.method == "INFO":
            return self._info_received(request, ref)
        return self._other_request(request, ref)

    def response(self, resp: Response, now: float) -> list[Action]:
        """Any response to a request we sent (every one of the INVITE transaction, and 2xx
        retransmissions that reach the stack's stray-response handler)."""
        if resp.cseq is None:
            return []
        to = resp.to
        tag = to.tag if to is not None else None
        if tag and tag in self._forks:  # a fork we ended: ACK its 2xx again, nothing else
            cseq = resp.cseq
            sent = self._acks.get((tag, cseq.number))
            return [SendAck(sent)] if cseq.method == "INVITE" and resp.is_success and sent \
                else []
        key = request_key(resp)
        out = self._requests.get(key)
        if out is None:
            return []
        if not resp.is_provisional and out.final is None:
            out.final = resp
        if out.kind == "invite":
            return self._invite_response(out, resp, now)
        if out.kind == "reinvite":
            return self._reinvite_response(key, out, resp, now)
        if self.dialog is not None and self.dialog.state is not DialogState.TERMINATED:
            self.dialog.receive_response(out.request, resp)
        if out.kind == "bye":
            return self._bye_response(resp)
        if resp.is_provisional or out.final is not resp:
            return []
        return [InDialogResponse(key, resp)]

    def timeout(self, now: float, key: str | None = None) -> list[Action]:
        """The client transaction of `key` (default: our INVITE) ended without a final
        response (timer B or F)."""
        return self._request_failed(key, 408, reason_phrase(408))

    def transport_error(self, now: float, key: str | None = None,
                        reason: str | None = None) -> list[Action]:
        """The request of `key` (default: our INVITE) could not be sent (treated as a 503,
        RFC 3261 §8.1.3.1)."""
        return self._request_failed(key, 503, reason or reason_phrase(503))

    def _request_failed(self, key: str | None, code: int, reason: str) -> list[Action]:
        key = key or self._invite_key
        if key is None:
            return []
        out = self._requests.get(key)
        if out is None or out.final is not None:
            return []
        if out.kind == "invite":
            if self._final or self.terminated:
                return []
            self._final = True
            for early in self._early.values():
                early.terminate()
            self._early.clear()
            return self._finish(SessionState.FAILED, code, reason)
        if out.kind == "reinvite":
            return self._reinvite_failed(key, code, reason)
        if out.kind == "bye":
            if self._ending is None:
                return []
            return self._finish(self._ending.final_state, self._ending.code,
                                self._ending.reason)
        return [InDialogResponse(key, None, reason)]

    def resend(self, key: str, request: Request, now: float) -> list[Action]:
        """Sends `request` in place of the request of `key` (its copy with credentials after
        a 401/407: same Call-ID and tags, CSeq + 1, RFC 3261 §22.2). Feed the 401/407 here
        instead of to `response` when retrying."""
        out = self._requests.get(key)
        if out is None:
            raise InviteSessionError(f"no request {key!r} to resend")
        if out.kind == "invite" and (self._cancelled or self._final or self.terminated):
            return [] if self.terminated else self._request_failed(key, 487, "cancelled")
        new_key = self._track(request, out.kind)
        if out.kind == "invite":
            self.invite, self._invite_key = request, new_key
        elif out.kind == "reinvite" and self._own_reinvite is not None:
            self._own_reinvite.key = new_key
        elif out.kind == "bye" and self._ending is not None:
            self._ending.bye_key = new_key
        cseq = self._cseq(request)
        if self.dialog is not None and (self.dialog.local_seq or 0) < cseq:
            self.dialog.local_seq = cseq
        return [SendRequest(request, new_key)]

    # -- timers -------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When `timer(now)` must be called next, on the caller's clock (None: no timer)."""
        deadlines = [sent.retransmitter.next_deadline() for sent in self._sent_2xx.values()]
        if self._own_reinvite is not None:
            deadlines.append(self._own_reinvite.retry_at)
        if self.session_timer is not None and not self.terminated:
            deadlines.append(self.session_timer.next_deadline())
        return min((d for d in deadlines if d is not None), default=None)

    def timer(self, now: float) -> list[Action]:
        """What is due at `now`: 2xx retransmissions, giving up on a missing ACK, the retry
        of a re-INVITE that got 491 (early calls do nothing)."""
        actions: list[Action] = []
        for cseq, sent in list(self._sent_2xx.items()):
            outcome = sent.retransmitter.handle_timeout(now)
            retransmit = False
            while outcome is not None:
                if outcome == "timed_out":
                    del self._sent_2xx[cseq]
                    actions += self._no_ack(sent)
                    retransmit = False
                    break
                retransmit = True
                outcome = sent.retransmitter.handle_timeout(now)
            if retransmit:
                action = sent.action
                actions.append(SendResponse(action.ref, action.status, action.reason,
                                            action.headers, action.body, action.content_type,
                                            action.to_tag, retransmission=True))
        return actions + self._retry_reinvite(now) + self._session_timer_due(now)

    def _session_timer_due(self, now: float) -> list[Action]:
        """RFC 4028 §10: refresh the session (a re-INVITE with the offer unchanged) when we
        are the refresher, end it with a BYE when the refresher let it expire."""
        timer = self.session_timer
        due = timer.due(now) if timer is not None and not self.terminated else None
        if due is None or self._ending is not None or self.state is not SessionState.ESTABLISHED:
            return []
        if due is Due.EXPIRED:
            return self._start_ending(EXPIRED, final_state=SessionState.FAILED)
        if not self.can_reinvite or not self.local_sdp:
            return []  # an exchange under way refreshes the session too; due again soon
        actions = self.reinvite(self.local_sdp, now)
        if self._own_reinvite is not None:
            self._own_reinvite.refresh = True
        return actions

    def _no_ack(self, sent: _SentSuccess) -> list[Action]:
        """No ACK for our 2xx within 64*T1: the dialog is confirmed but the session ends with
        a BYE (§13.3.1.4)."""
        if self.terminated:
            return []
        if self._ending is not None:
            return self._send_bye()  # a BYE that waited for that ACK
        if sent.initial:  # never established: failed, and the BYE is a formality
            self._ending = _Ending("no ACK", final_state=SessionState.FAILED)
            return [*self._set_state(SessionState.FAILED, None, "no ACK"), *self._send_bye()]
        return self._start_ending("no ACK")


def _set_timer_headers(request: Request, headers: list[tuple[str, str]]) -> None:
    """Our session timer headers in an INVITE (those of an earlier attempt replaced)."""
    for name in ("Session-Expires", "Min-SE"):
        request.headers.remove(name)
    for name, value in headers:
        if name != "Supported" or "timer" not in (t.lower() for t in request.supported):
            request.headers.add(name, value)
