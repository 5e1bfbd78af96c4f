"""The UAS side of an INVITE session: a new INVITE, 180/183, 2xx, rejection and CANCEL
(RFC 3261 §13.3, §9.2). Sans-I/O; see sipd.sessions.invite.session."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sipd.sip.builder import new_tag, reason_phrase
from sipd.sip.dialog import Dialog, DialogState, SuccessRetransmitter
from sipd.sip.header_values import Address, parse_address
from sipd.sip.message import Request

from .content import SDP_TYPE, BodyError, sdp_of
from .core import SessionCore, _SentSuccess
from .events import (
    Action,
    InviteSessionError,
    RemoteSdp,
    Role,
    SendResponse,
    SessionState,
)


class UasMixin(SessionCore):
    def incoming(self, invite: Request, now: float, *, contact: Address | str,
                 ref: Any = None, reliable: bool = False) -> list[Action]:
        """A new INVITE for us (with an offer or without). `contact`: ours, for the 1xx/2xx
        that make the dialog; `ref`: handed back in SendResponse (the IncomingRequest)."""
        self._check_new()
        to = invite.to
        if invite.method != "INVITE" or to is None or to.tag:
            raise InviteSessionError("incoming() takes an INVITE outside any dialog")
        self.role, self.invite, self.reliable = Role.UAS, invite, reliable
        self._invite_ref = invite if ref is None else ref
        self._contact = parse_address(contact, "Contact") if isinstance(contact, str) \
            else contact.copy()
        self._local_tag = new_tag()
        try:
            offer = sdp_of(invite)
        except BodyError as exc:
            self._final = True
            return [self._respond(self._invite_ref, exc.status, exc.reason,
                                  [("Accept", SDP_TYPE)], to_tag=self._local_tag),
                    *self._finish(SessionState.FAILED, exc.status, exc.reason)]
        timer = self.session_timer
        too_small = timer.check(invite) if timer is not None else None
        if too_small is not None:  # RFC 4028 §8.1: 422 with our Min-SE
            self._final = True
            status, reason, headers = too_small
            return [self._respond(self._invite_ref, status, reason, headers,
                                  to_tag=self._local_tag),
                    *self._finish(SessionState.FAILED, status, reason)]
        if timer is not None:
            timer.received(invite)
        actions = self._set_state(SessionState.CALLING)
        if offer is not None:
            self._offer_in_invite = True
            self.remote_sdp = offer
            actions.append(RemoteSdp(offer, "offer"))
        return actions

    def ring(self, now: float, *, headers: Iterable[tuple[str, str]] = ()) -> list[Action]:
        """180 Ringing (creates the early dialog)."""
        if not self._can_answer("ring"):
            return []
        return [self._provisional(180, headers),
                *self._set_state(SessionState.RINGING, 180, reason_phrase(180))]

    def progress(self, sdp: bytes | None, now: float, *,
                 headers: Iterable[tuple[str, str]] = ()) -> list[Action]:
        """183 Session Progress, with our early media SDP (the answer to the INVITE's offer:
        the 2xx must bring the same one, RFC 3261 §13.2.1)."""
        if not self._can_answer("progress"):
            return []
        if sdp and not self._offer_in_invite:
            raise InviteSessionError("the INVITE carried no offer: an SDP in a 183 would be "
                                     "an offer, which needs reliable 1xx (RFC 3262)")
        if sdp:
            self.early_sdp = sdp
        actions: list[Action] = [self._provisional(183, headers, sdp or b"")]
        if sdp:
            actions += self._set_state(SessionState.EARLY, 183, reason_phrase(183))
        return actions

    def accept(self, sdp: bytes, now: float, *,
               headers: Iterable[tuple[str, str]] = ()) -> list[Action]:
        """200 OK with our Contact and `sdp` (the answer; our offer when the INVITE had
        none, the answer then comes in the ACK). Established when the ACK comes."""
        if not self._can_answer("accept"):
            return []
        if not sdp:
            raise InviteSessionError("accept() needs an SDP body")
        if self.session_timer is not None:
            headers = [*headers, *self.session_timer.response_headers()]
            self.session_timer.accepted(now)
        action = self._success(self._invite_ref, headers, sdp)
        response = action.build(self._request(self.invite))
        if self.dialog is None:
            self.dialog = Dialog.create_as_uas(self._request(self.invite), response)
        else:
            self.dialog.state = DialogState.CONFIRMED
        self._final = True
        self._sent_2xx[self._cseq(self.invite)] = _SentSuccess(
            action, SuccessRetransmitter(response, reliable=self.reliable, now=now,
                                         timers=self.timers),
            offer=not self._offer_in_invite, initial=True, sdp=sdp)
        if self._offer_in_invite:
            self.local_sdp = sdp
        return [action]

    def reject(self, code: int, now: float, *, reason: str | None = None,
               headers: Iterable[tuple[str, str]] = ()) -> list[Action]:
        """A final 3xx-6xx to the INVITE: failed."""
        if not 300 <= code <= 699:
            raise InviteSessionError(f"reject() takes a 3xx-6xx code, not {code}")
        if not self._can_answer("reject"):
            return []
        reason = reason or reason_phrase(code)
        self._final = True
        if self.dialog is not None:
            self.dialog.terminate()
        return [self._respond(self._invite_ref, code, reason, headers, to_tag=self._local_tag),
                *self._finish(SessionState.FAILED, code, reason)]

    def cancelled(self, now: float, *, ref: Any = None,
                  already_answered: bool = False) -> list[Action]:
        """A CANCEL came for the INVITE (or, with its `ref`, a re-INVITE) and the stack
        answered it: 487 to that INVITE (not sent again when the stack `already_answered`,
        as sipd.sip.trio.stack does). Nothing when the INVITE had a final response already."""
        pending = self._incoming_reinvite
        if ref is not None and pending is not None and ref is pending.ref:
            self._incoming_reinvite = None
            answer = [] if already_answered else [self._respond(ref, 487, reason_phrase(487))]
            return answer + self._resume_reinvite()
        if self.role is not Role.UAS or self._final or self.terminated:
            return []
        self._final = True
        if self.dialog is not None:
            self.dialog.terminate()
        actions: list[Action] = [] if already_answered else [
            self._respond(self._invite_ref, 487, reason_phrase(487), to_tag=self._local_tag)]
        return actions + self._finish(SessionState.FAILED, 487, reason_phrase(487))

    def _can_answer(self, what: str) -> bool:
        if self.role is not Role.UAS:
            raise InviteSessionError(f"{what}() is for an incoming call")
        if self.terminated:
            return False  # the caller cancelled meanwhile: nothing to do
        if self._final:
            raise InviteSessionError(f"{what}(): the INVITE was answered already")
        return True

    def _provisional(self, status: int, headers: Iterable[tuple[str, str]],
                     sdp: bytes = b"") -> SendResponse:
        assert self._contact is not None
        action = SendResponse(self._invite_ref, status, reason_phrase(status),
                              (("Contact", str(self._contact)), *headers), sdp,
                              SDP_TYPE if sdp else None, self._local_tag)
        if self.dialog is None:
            invite = self._request(self.invite)
            self.dialog = Dialog.create_as_uas(invite, action.build(invite))
        return action
