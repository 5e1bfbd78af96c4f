"""Offers after a back-to-back call is set up (hold, unhold, the remote's re-INVITEs, the
worker's session refreshes): an offer on one leg becomes a re-INVITE on the other, whose
answer becomes the answer on the first (the audio stream, sipd.sessions.streams.audio.stream). A re-INVITE without offer is
answered on its own leg with the description we have as our offer; the answer in its ACK,
when it changes the media, goes to the other leg as the offer of a re-INVITE there. Sans-I/O
apart from the legs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from sipd.sip.builder import warning_value

from ...invite.events import ReinviteCompleted
from ...sdp import MediaDescription, SessionDescription, SessionVersion
from . import sdp
from .codecs import missing_codecs

if TYPE_CHECKING:  # pragma: no cover
    from ...driver import LegDriver

log = logging.getLogger(__name__)


class OfferPassing:
    """Passes later offers between the two legs of a session: the outside leg (the remote
    party) and the media leg (the worker). `legs()` gives both as they are now; `on_hold(
    originator, held)` hears when the writer of a description puts us on hold ("remote") or
    the worker puts the remote on hold ("local")."""

    def __init__(self, session_id: str, legs: Callable[[], tuple[LegDriver | None,
                                                                  LegDriver | None]],
                 audio_codecs: Callable[[], tuple[str, ...]],
                 on_hold: Callable[[str, bool], None], *, out_versions: SessionVersion,
                 other_lines: Callable[[], dict[int, MediaDescription]] = dict) -> None:
        self.id = session_id
        self._other_lines = other_lines  # what the session's other streams answer
        self._legs = legs
        self._audio_codecs = audio_codecs
        self._on_hold = on_hold
        self.out_versions = out_versions  # our o= toward the remote (the session's)
        self.in_versions = SessionVersion("127.0.0.1")  # our o= toward the worker
        self.on_hold = self.remote_hold = False
        # A re-INVITE passed on: (the leg it came on, its offer) until the other answers.
        self._forwarding: tuple[LegDriver, SessionDescription] | None = None
        # An offerless re-INVITE we answered with our offer: (its leg, the remote's
        # description before it); the answer comes in the ACK (`answer_in_ack`).
        self._answer_due: tuple[LegDriver, bytes | None] | None = None

    @property
    def forwarding(self) -> bool:
        """Whether an offer passed on waits for the other leg's answer."""
        return self._forwarding is not None

    @property
    def outside(self) -> LegDriver | None:
        return self._legs()[0]

    @property
    def media(self) -> LegDriver | None:
        return self._legs()[1]

    def _other(self, leg: LegDriver) -> LegDriver | None:
        outside, media = self._legs()
        return media if leg is outside else outside

    def offer_from(self, leg: LegDriver, body: bytes | None) -> None:
        """A re-INVITE on `leg`: answered on its own when it changes nothing, else passed as
        a re-INVITE on the other leg."""
        session, now = leg.session, leg.now()
        if body is None or (session.remote_sdp and not sdp.changes(session.remote_sdp, body)):
            # An offerless re-INVITE, or a refresh: what we have is still our answer/offer.
            self._answer_due = (leg, session.remote_sdp) if body is None else None
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
                                              other.session.local_sdp, self._other_lines())
            else:
                # A codec we lack is refused here, with why; the worker would refuse it
                # without a reason that could pass on (and the call stays as it was).
                lacking = missing_codecs(offer, self._audio_codecs())
                if lacking:
                    raise sdp.SdpMismatch(lacking)
                forwarded = sdp.for_worker(offer, self.in_versions)
        except sdp.SdpMismatch as exc:
            leg.feed(session.reject_reinvite(
                488, now, headers=[("Warning", warning_value(str(exc)))]))
            return
        self._forwarding = (leg, offer)
        other.feed(other.session.reinvite(forwarded, other.now()))

    def answer_in_ack(self, leg: LegDriver, body: bytes) -> None:
        """The answer in the ACK of our 200 to an offerless re-INVITE on `leg`. Our offer in
        that 200 was the description we had, so an answer that changes nothing is the end of
        it; one that changes the media (the remote puts us on hold with a=sendonly, say) is
        the other leg's business too: it goes there as the offer of a re-INVITE, whose
        answer changes nothing on `leg` (the remote already chose)."""
        due, self._answer_due = self._answer_due, None
        if due is None or due[0] is not leg:
            self._answer_due = due  # not the answer that one waits for
            return
        previous = due[1]
        if previous and not sdp.changes(previous, body):
            return
        other = self._other(leg)
        if other is None or other.closed or not other.session.can_reinvite:
            log.warning("session %s: the answer in the ACK changes the media, but the other "
                        "leg cannot take a re-INVITE now", self.id)
            return
        try:
            answer = sdp.parse(body)
            if leg is self.media:
                forwarded = sdp.outside_offer(answer, self.out_versions,
                                              other.session.local_sdp, self._other_lines())
            else:
                forwarded = sdp.for_worker(answer, self.in_versions)
        except sdp.SdpMismatch as exc:
            log.warning("session %s: the answer in the ACK cannot be passed on: %s",
                        self.id, exc)
            return
        other.feed(other.session.reinvite(forwarded, other.now()))
        self._note_hold(leg, sdp.holds(answer))

    def forwarded(self, other: LegDriver, action: ReinviteCompleted) -> None:
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
                body = sdp.outside_answer(offer, answer, self.out_versions,
                                          self._other_lines())
        except sdp.SdpMismatch as exc:
            leg.feed(session.reject_reinvite(
                488, now, headers=[("Warning", warning_value(str(exc)))]))
            return
        leg.feed(session.answer_reinvite(body, now))
        self._note_hold(leg, sdp.holds(offer))

    def _note_hold(self, leg: LegDriver, held: bool) -> None:
        """The writer of the description that came on `leg` holds (or no longer holds)."""
        if leg is self.media and held != self.on_hold:
            self.on_hold = held
            self._on_hold("local", held)
        elif leg is self.outside and held != self.remote_hold:
            self.remote_hold = held
            self._on_hold("remote", held)

