"""Mid-call requests of an INVITE session: re-INVITE both ways with glare handling (RFC 3261
§14), INFO with DTMF, and other requests in the dialog. Sans-I/O; see
sipd.sessions.invite.session."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sipd.sip.builder import reason_phrase
from sipd.sip.dialog import DialogState, SuccessRetransmitter
from sipd.sip.message import Request, Response

from .content import (
    DTMF_RELAY_TYPE,
    DTMF_TYPE,
    SDP_TYPE,
    BodyError,
    body_mime,
    dtmf_relay_body,
    parse_dtmf,
    sdp_of,
)
from .timer import EXPIRED
from .core import (
    OfferSource,
    SessionCore,
    _IncomingReinvite,
    _Outgoing,
    _OwnReinvite,
    _SentSuccess,
    unknown_dialog_response,
)
from .events import (
    Action,
    DtmfReceived,
    InDialogRequest,
    InviteSessionError,
    OfferReceived,
    ReinviteCompleted,
    RemoteSdp,
    Role,
    SendAck,
    SendRequest,
    SessionState,
)

# Requests with methods of their own in the session (send_in_dialog sends the others).
_OWN_METHODS = frozenset({"INVITE", "ACK", "CANCEL", "BYE"})


class MidCallMixin(SessionCore):
    @property
    def can_reinvite(self) -> bool:
        """Whether `reinvite` may be called now: established, and no INVITE transaction or
        offer/answer exchange under way in either direction (RFC 3261 §14.1)."""
        return (self.state is SessionState.ESTABLISHED and self._own_reinvite is None
                and self._incoming_reinvite is None and not self._sent_2xx)

    def reinvite(self, offer: OfferSource, now: float, *,
                 headers: Iterable[tuple[str, str]] = ()) -> list[Action]:
        """Sends a re-INVITE with a new offer (hold, unhold, media change). Its outcome comes
        as RemoteSdp(answer) + ReinviteCompleted(accepted=True), or ReinviteCompleted(False).

        A 491 (glare) is retried after the random wait of RFC 3261 §14.1, and after the
        remote's own re-INVITE when that one comes first. `offer` may be a callable that
        builds the offer: it is called again for each retry, so a retry after the remote
        changed the session offers what is current. Plain bytes are resent as they are,
        unless the remote changed the session meanwhile: then ReinviteCompleted(False, 491)."""
        if not self.can_reinvite:
            raise InviteSessionError(self._why_no_reinvite())
        own = _OwnReinvite(offer, tuple(headers))
        first = offer() if callable(offer) else offer
        if not first:
            raise InviteSessionError("reinvite() needs an SDP offer")
        self._own_reinvite = own
        return self._send_reinvite(own, first)

    def _why_no_reinvite(self) -> str:
        if self.state is not SessionState.ESTABLISHED:
            state = self.state.value if self.state else "new"
            return f"a re-INVITE needs an established call (this one is {state})"
        if self._own_reinvite is not None:
            return "our previous re-INVITE is still under way"
        return "the remote's INVITE is still under way; answer it (and wait for its ACK)"

    def _send_reinvite(self, own: _OwnReinvite, offer: bytes | None = None) -> list[Action]:
        assert self.dialog is not None
        if offer is None:  # a retry
            if callable(own.offer):
                offer = own.offer()
            elif own.exchanges != self._exchanges:
                self._own_reinvite = None  # its bytes describe a session that changed since
                return [ReinviteCompleted(False, 491, "Request Pending (the remote changed "
                                                      "the session first)")]
            else:
                offer = own.offer
        own.attempts += 1
        own.exchanges, own.sent_offer = self._exchanges, offer
        headers = list(own.headers)
        if self.session_timer is not None:  # every re-INVITE refreshes (RFC 4028 §7.4)
            headers += self.session_timer.request_headers()
        request = self.dialog.create_request("INVITE", headers=headers, body=offer,
                                             content_type=SDP_TYPE)
        own.key = self._track(request, "reinvite")
        return [SendRequest(request, own.key)]

    def _retry_reinvite(self, now: float) -> list[Action]:
        """The glare wait is over: send our re-INVITE again, or as soon as the remote's
        INVITE transaction is over if one is under way (one at a time, §14.1)."""
        own = self._own_reinvite
        if own is None or own.retry_at is None or now < own.retry_at:
            return []
        own.retry_at = None
        if not self._remote_idle():
            own.deferred = True
            return []
        return self._send_reinvite(own)

    def _remote_idle(self) -> bool:
        return self._incoming_reinvite is None and not any(
            not sent.initial for sent in self._sent_2xx.values())

    def _resume_reinvite(self) -> list[Action]:
        """The remote's re-INVITE is over: a retry of ours that waited for it goes now."""
        own = self._own_reinvite
        if own is None or not own.deferred or not self._remote_idle() or self.terminated \
                or self._ending is not None:
            return []
        own.deferred = False
        return self._send_reinvite(own)

    def _reinvite_response(self, key: str, out: _Outgoing, resp: Response, now: float
                           ) -> list[Action]:
        assert self.dialog is not None
        own = self._own_reinvite
        current = own is not None and own.key == key
        if resp.is_success:
            to = resp.to
            tag = (to.tag if to is not None else None) or self.dialog.remote_tag
            cseq = self._cseq(out.request)
            sent = self._acks.get((tag, cseq))
            if sent is not None:
                return [SendAck(sent)]
            self.dialog.receive_response(out.request, resp)
            actions: list[Action] = [self._ack(self.dialog, tag, cseq)]
            if not current or self.state is not SessionState.ESTABLISHED:
                return actions
            assert own is not None
            self._own_reinvite = None
            if self.session_timer is not None:
                self.session_timer.answered(resp, now)
            try:
                answer = sdp_of(resp)
            except BodyError:
                answer = None
            if answer is not None:
                self.local_sdp, self.remote_sdp = own.sent_offer, answer
                actions.append(RemoteSdp(answer, "answer"))
            return actions + [ReinviteCompleted(True, resp.status, resp.reason)]
        if resp.is_provisional or not current:
            return []
        assert own is not None
        if self.dialog.state is not DialogState.TERMINATED:
            self.dialog.receive_response(out.request, resp)
        if resp.status == 491 and self.state is SessionState.ESTABLISHED:
            own.key = None
            own.retry_at = now + self._glare_delay()
            return []
        timer = self.session_timer
        if resp.status == 422 and timer is not None and timer.too_small(resp) \
                and self.state is SessionState.ESTABLISHED:
            own.key = None  # again at once, asking for its Min-SE (RFC 4028 §7.4)
            own.retry_at = now
            return []
        return self._reinvite_failed(key, resp.status, resp.reason)

    def _glare_delay(self) -> float:
        """RFC 3261 §14.1: 2.1-4 s for the owner of the Call-ID (the UAC of the dialog),
        0-2 s for the other side, in units of 10 ms."""
        if self.role is Role.UAC:
            return round(2.1 + 1.9 * self.rng.random(), 2)
        return round(2.0 * self.rng.random(), 2)

    def _reinvite_failed(self, key: str, code: int, reason: str) -> list[Action]:
        own = self._own_reinvite
        if own is None or own.key != key:
            return []
        self._own_reinvite = None
        actions: list[Action] = [ReinviteCompleted(False, code, reason)]
        if self.terminated or self._ending is not None:
            return actions
        if code == 481:  # the dialog is gone at the remote end (§12.2.1.2)
            assert self.dialog is not None
            self.dialog.terminate()
            return actions + self._finish(SessionState.ENDED, code, reason)
        if code == 408 and own.refresh:  # RFC 4028 §10: the session cannot be kept
            return actions + self._start_ending(f"{EXPIRED}: the refresh got no answer",
                                                code=code, final_state=SessionState.FAILED)
        if code == 408:  # no answer to the re-INVITE: end the dialog (§12.2.1.2, §14.1)
            return actions + self._start_ending("re-INVITE timed out", code=code)
        return actions

    def _reinvite_received(self, request: Request, ref: Any, now: float,
                           reliable: bool) -> list[Action]:
        if self._ending is not None:
            return [unknown_dialog_response(ref)]
        if self._incoming_reinvite is not None or (self.role is Role.UAS and not self._final):
            # their previous INVITE is unanswered (§14.2)
            retry = str(int(self.rng.random() * 10))
            return [self._respond(ref, 500, reason_phrase(500), [("Retry-After", retry)])]
        own_in_flight = self._own_reinvite is not None and self._own_reinvite.key is not None
        offer_out = any(sent.offer for sent in self._sent_2xx.values())
        if own_in_flight or offer_out or (self.role is Role.UAC and not self._final):
            return [self._respond(ref, 491, reason_phrase(491))]  # glare (§14.2)
        try:
            offer = sdp_of(request)
        except BodyError as exc:
            return [self._respond(ref, exc.status, exc.reason, [("Accept", SDP_TYPE)])]
        if self.session_timer is not None:
            too_small = self.session_timer.check(request)
            if too_small is not None:
                return [self._respond(ref, *too_small)]
            self.session_timer.received(request)
        # (our re-INVITE may be waiting to retry after a 491: it waits for this one too)
        self._incoming_reinvite = _IncomingReinvite(request, ref, offer, reliable)
        return [OfferReceived(offer)]

    def answer_reinvite(self, sdp: bytes, now: float, *,
                        headers: Iterable[tuple[str, str]] = ()) -> list[Action]:
        """200 OK to the re-INVITE of the last OfferReceived, with our answer (our offer when
        it had none). Nothing when it is no longer pending (cancelled, the call ended)."""
        pending = self._incoming_reinvite
        if pending is None or self.terminated:
            return []
        if not sdp:
            raise InviteSessionError("answer_reinvite() needs an SDP body")
        self._incoming_reinvite = None
        if self.session_timer is not None:
            headers = [*headers, *self.session_timer.response_headers()]
            self.session_timer.accepted(now)
        action = self._success(pending.ref, headers, sdp)
        response = action.build(pending.request)
        self._sent_2xx[self._cseq(pending.request)] = _SentSuccess(
            action, SuccessRetransmitter(response, reliable=pending.reliable, now=now,
                                         timers=self.timers),
            offer=pending.offer is None, initial=False, sdp=sdp)
        if pending.offer is not None:
            self.local_sdp, self.remote_sdp = sdp, pending.offer
            self._exchanges += 1
        return [action]

    def reject_reinvite(self, code: int, now: float | None = None, *,
                        reason: str | None = None,
                        headers: Iterable[tuple[str, str]] = ()) -> list[Action]:
        """A final 3xx-6xx to the pending re-INVITE (488 for an offer we cannot take); the
        session keeps its media."""
        if not 300 <= code <= 699:
            raise InviteSessionError(f"reject_reinvite() takes a 3xx-6xx code, not {code}")
        pending = self._incoming_reinvite
        if pending is None or self.terminated:
            return []
        self._incoming_reinvite = None
        return [self._respond(pending.ref, code, reason or reason_phrase(code), headers),
                *self._resume_reinvite()]

    # -- INFO and the rest ---------------------------------------------------------------------
    def _info_received(self, request: Request, ref: Any) -> list[Action]:
        mime = body_mime(request)
        if not request.body:
            return [self._respond(ref, 200, reason_phrase(200))]  # a keep-alive probe
        if mime not in (DTMF_RELAY_TYPE, DTMF_TYPE):
            return self._other_request(request, ref)
        try:
            digit, duration = parse_dtmf(request.body, mime)
        except BodyError as exc:
            return [self._respond(ref, exc.status, exc.reason)]
        return [self._respond(ref, 200, reason_phrase(200)), DtmfReceived(digit, duration)]

    def _other_request(self, request: Request, ref: Any) -> list[Action]:
        return [InDialogRequest(request, ref)]

    def send_in_dialog(self, method: str, now: float, *,
                       headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                       content_type: str | None = None) -> list[Action]:
        """Another request in the established dialog (INFO, REFER, NOTIFY, MESSAGE...): its
        final response comes back as InDialogResponse(key, response)."""
        if method.upper() in _OWN_METHODS:
            raise InviteSessionError(f"{method} has a method of its own here")
        if self.dialog is None or self.dialog.state is not DialogState.CONFIRMED \
                or self.terminated or self._ending is not None:
            raise InviteSessionError(f"no established dialog to send {method} in")
        request = self.dialog.create_request(method, headers=headers, body=body,
                                             content_type=content_type)
        return [SendRequest(request, self._track(request, "other"))]

    def send_dtmf(self, digit: str, now: float, *, duration: int = 250) -> list[Action]:
        """A DTMF digit as INFO application/dtmf-relay (for peers without RFC 4733)."""
        return self.send_in_dialog("INFO", now, body=dtmf_relay_body(digit, duration),
                                   content_type=DTMF_RELAY_TYPE)
