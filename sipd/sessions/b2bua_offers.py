"""Offers after a back-to-back call is set up (hold, unhold, the remote's re-INVITEs, the
worker's session refreshes): an offer on one leg becomes a re-INVITE on the other, whose
answer becomes the answer on the first (sipd.sessions.b2bua). Sans-I/O apart from the legs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sipd.sip.builder import warning_value

from . import b2bua_sdp as sdp
from .invite_events import ReinviteCompleted
from .sdp import SessionVersion, media_changed

if TYPE_CHECKING:  # pragma: no cover
    from .driver import LegDriver


class OfferPassing:
    """The part of a Call (sipd.sessions.b2bua) that passes offers between its legs."""

    id: str
    manager: Any
    outside: LegDriver | None
    media: LegDriver | None
    out_versions: SessionVersion
    in_versions: SessionVersion
    on_hold: bool
    remote_hold: bool
    _forwarding: tuple[LegDriver, Any] | None

    def _other(self, leg: LegDriver) -> LegDriver | None:
        return self.media if leg is self.outside else self.outside

    def _offer_from(self, leg: LegDriver, body: bytes | None) -> None:
        """A re-INVITE on `leg`: answered on its own when it changes nothing, else passed as
        a re-INVITE on the other leg."""
        session, now = leg.session, leg.now()
        if body is None or (session.remote_sdp and not _changes(session.remote_sdp, body)):
            # An offerless re-INVITE, or a refresh: what we have is still our answer/offer.
            leg.feed(session.answer_reinvite(session.local_sdp or b"", now))
            return
        other = self._other(leg)
        try:
            offer = sdp.parse(body)
            if other is None or other.closed or not other.session.can_reinvite:
                leg.feed(session.reject_reinvite(491, now))
                return
            if leg is self.media:
                forwarded = sdp.outside_offer(offer, self.out_versions,
                                              other.session.local_sdp)
            else:
                forwarded = sdp.for_worker(offer, self.in_versions)
        except sdp.SdpMismatch as exc:
            leg.feed(session.reject_reinvite(
                488, now, headers=[("Warning", warning_value(str(exc)))]))
            return
        self._forwarding = (leg, offer)
        other.feed(other.session.reinvite(forwarded, other.now()))

    def _forwarded(self, other: LegDriver, action: ReinviteCompleted) -> None:
        """Our re-INVITE on `other` (a forwarded offer) is over: answer the original one."""
        if self._forwarding is None:
            return
        leg, offer = self._forwarding
        self._forwarding = None
        if leg.closed or leg.session.terminated:
            return
        session, now = leg.session, leg.now()
        if not action.accepted:
            code = action.code if action.code and 300 <= action.code <= 699 else 500
            leg.feed(session.reject_reinvite(code, now, reason=action.reason))
            return
        try:
            answer = sdp.parse(other.session.remote_sdp)
            if leg is self.media:
                body = sdp.for_worker(answer, self.in_versions)
            else:
                body = sdp.outside_answer(offer, answer, self.out_versions)
        except sdp.SdpMismatch as exc:
            leg.feed(session.reject_reinvite(
                488, now, headers=[("Warning", warning_value(str(exc)))]))
            return
        leg.feed(session.answer_reinvite(body, now))
        held = sdp.holds(offer)
        if leg is self.media and held != self.on_hold:
            self.on_hold = held
            self.manager.publish("session.hold", {"id": self.id, "originator": "local",
                                                  "on_hold": held})
        elif leg is self.outside and held != self.remote_hold:
            self.remote_hold = held
            self.manager.publish("session.hold", {"id": self.id, "originator": "remote",
                                                  "on_hold": held})


def _changes(previous: bytes, body: bytes) -> bool:
    try:
        return media_changed(sdp.parse(previous), sdp.parse(body))
    except sdp.SdpMismatch:
        return True
