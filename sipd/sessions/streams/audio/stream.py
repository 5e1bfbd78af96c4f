"""The audio stream: a session's audio, carried back to back by a media worker (docs/design.md,
"Sessions and streams"; the flows are in sipd.sessions.session).

The stream holds the worker leg (`WorkerLeg`: the internal INVITE dialog with the pjsua2
worker) and passes what the outside leg brings to it and back: the remote's answer to our
offer (`remote_answer`), its later offers and the worker's (`OfferPassing`), the ring, the
end. It splits the remote's descriptions for the worker (`sdp.for_worker`) and merges the
worker's into the session's (`outside_offer`, `outside_answer`, with the other streams' lines
where they belong). The user's commands about the audio (play, record, DTMF, hold, the web
page's audio) go to the worker from here, the files checked first.

What it needs of its session's SIP side is an `AudioSignalling` (in the StreamContext's
`signalling`): the daemon's SIP context, the outside leg as it is now, our o= versions toward
the remote, the other streams' lines, and where to say that the worker's call ended.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from sipd.media.process import MediaWorkerError
from sipd.sip.trio.handles import IncomingRequest

from ...errors import InvalidSessionParam, SessionStateError
from ...invite.events import (
    TERMINAL_STATES,
    InDialogRequest,
    InviteSessionError,
    OfferReceived,
    ReinviteCompleted,
    RemoteSdp,
    Role,
    StateChanged,
)
from ...sdp import MediaDescription, SessionDescription, SessionVersion
from ..base import Stream, StreamContext, StreamKind, StreamRefused, StreamState
from . import sdp
from .files import MediaFileError, check_playable, check_recordable
from .passing import OfferPassing
from .worker import WorkerLeg

if TYPE_CHECKING:  # pragma: no cover
    from ...context import SessionContext
    from ...driver import LegDriver

log = logging.getLogger(__name__)

DTMF_DIGITS = frozenset("0123456789*#ABCD")
# pjmedia queues at most 32 digits per call (its tx_dtmf_buf) and refuses a request that
# would fill it with PJ_ETOOMANY.
MAX_DTMF_DIGITS = 31


@dataclass
class AudioSignalling:
    """What the audio stream needs of its session's SIP side."""

    sip: SessionContext                      # stack, timers, addresses, dialogs, workers
    outside: Callable[[], LegDriver | None]  # the leg to the remote party, as it is now
    versions: SessionVersion                 # our o= toward the remote party
    other_lines: Callable[[], dict[int, MediaDescription]]  # the other streams' lines
    spawn: Callable[..., None]               # a task of the session
    on_fed: Callable[[], None]               # a leg took an input
    allow: str                               # our Allow header
    # The worker's call ended (its code and reason): the session ends the outside call.
    media_ended: Callable[[int | None, str | None], None]
    # The worker answered the remote's offer (its answer): the session answers the remote.
    answered: Callable[[bytes], None]
    changed: Callable[[], None]              # a leg is over: the session may be done


class AudioStream(Stream):
    """The session's audio lines, all carried by one worker call."""

    def __init__(self, kind: StreamKind, context: StreamContext, index: int) -> None:
        super().__init__(kind, context, index)
        signalling = context.signalling
        assert isinstance(signalling, AudioSignalling), "an audio stream needs its session"
        self.sig = signalling
        self.worker = WorkerLeg(context.session_id, signalling.sip, on_event=self._media_event,
                                spawn=signalling.spawn, on_fed=signalling.on_fed,
                                allow=signalling.allow)
        self.offers = OfferPassing(context.session_id,
                                   lambda: (signalling.outside(), self.worker.leg),
                                   signalling.sip.media.audio_codecs, self._hold_changed,
                                   out_versions=signalling.versions,
                                   other_lines=signalling.other_lines)
        self.answered = False  # the internal INVITE has its 2xx (ours or the worker's)

    # -- views ---------------------------------------------------------------------------------
    @property
    def leg(self) -> LegDriver | None:
        """The internal leg to the media worker (None before it is set up)."""
        return self.worker.leg

    @property
    def worker_id(self) -> str | None:
        """Which media worker carries the call (None: none yet)."""
        return getattr(self.worker.worker, "id", None)

    @property
    def on_hold(self) -> bool:
        return self.offers.on_hold

    @property
    def remote_hold(self) -> bool:
        return self.offers.remote_hold

    @property
    def usable(self) -> bool:
        """Whether the worker takes commands for this call now."""
        return self.worker.usable

    @property
    def over(self) -> bool:
        return self.worker.over

    @property
    def forwarding(self) -> bool:
        return self.offers.forwarding

    @property
    def awaits_remote_answer(self) -> bool:
        """Whether the worker's INVITE waits for the remote's answer (our outgoing INVITE's,
        or the one in the ACK of our 200 to an offerless INVITE)."""
        leg = self.leg
        return leg is not None and leg.session.role is Role.UAS and not self.answered

    def _hold_changed(self, originator: str, held: bool) -> None:
        self.held = held if originator == "local" else self.held
        self.context.publish("session.hold", {"id": self.context.session_id,
                                              "originator": originator, "on_hold": held})

    # -- the worker ----------------------------------------------------------------------------
    async def allocate(self) -> None:
        await self.worker.allocate()

    def release(self) -> None:
        self.worker.release()

    async def worker_calls_us(self) -> None:
        """The worker INVITEs us with its offer (`on_worker_invite` takes it), bounded."""
        await self.worker.calls_us()

    def on_worker_invite(self, incoming: IncomingRequest) -> bool:
        return self.worker.on_invite(incoming)

    @property
    def worker_offer(self) -> bytes | None:
        return self.worker.offer

    @property
    def failure(self) -> str | None:
        return self.worker.failure

    def invite_worker(self, offer: SessionDescription) -> None:
        """Our INVITE to the worker with the audio part of the remote's offer."""
        self.worker.invite(sdp.for_worker(offer, self.offers.in_versions))

    def on_worker_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "call.rtp_timeout":  # the remote's media stopped: it is gone
            if self.state is StreamState.ACTIVE:
                self.context.fail("no media from the remote party")
            return
        self.worker.on_worker_event(event)

    def lost(self) -> None:
        """The worker carrying this call is gone."""
        self.worker.lost()

    def close(self) -> None:
        self.worker.close()
        self.worker.release()

    # -- descriptions toward the remote --------------------------------------------------------
    def outside_offer(self, lines: Mapping[int, MediaDescription], count: int) -> bytes:
        """Our first offer: the worker's offer (when it made one) and the other lines."""
        worker_offer = sdp.parse(self.worker.offer) if self.worker.offer is not None else None
        return sdp.outside_offer(worker_offer, self.offers.out_versions, lines=lines,
                                 count=count)

    def outside_answer(self, offer: SessionDescription, worker_answer: bytes | None,
                       lines: Mapping[int, MediaDescription]) -> bytes:
        """Our answer to the remote's offer: the worker's answer (None: no audio) and the
        other streams' lines."""
        answer = sdp.parse(worker_answer) if worker_answer is not None else None
        return sdp.outside_answer(offer, answer, self.offers.out_versions, lines)

    def remote_answer(self, body: bytes, *, early: bool) -> None:
        """The remote's answer (in a 183 or the 2xx) to our offer: to the worker.
        SdpMismatch when it cannot be passed on."""
        worker_sdp = sdp.for_worker(sdp.parse(body), self.offers.in_versions)
        if early:
            self._feed(lambda m, now: m.progress(worker_sdp, now))
        else:
            self.answered = True
            self._feed(lambda m, now: m.accept(worker_sdp, now))

    def ringing(self) -> None:
        """The remote party rings: so does our answer to the worker's INVITE."""
        self._feed(lambda m, now: m.ring(now))

    async def offer(self) -> MediaDescription:
        """Our audio line, as it goes out in our offer: the worker's (it has called us).
        The session places the worker's description as a whole (`outside_offer`): its
        session-level lines come with it."""
        return self._first_line(self.worker.offer, "the media engine made no offer")

    async def answer(self, offer: SessionDescription,
                     offered: MediaDescription) -> MediaDescription:
        """Our audio line answering `offered`: the worker's answer, once it has answered
        (`invite_worker`); as for `offer`, the session places its description whole."""
        leg = self.leg
        body = leg.session.remote_sdp if leg is not None and leg.session.role is Role.UAC \
            else None
        return self._first_line(body, "the media engine has not answered")

    def _first_line(self, body: bytes | None, missing: str) -> MediaDescription:
        if not body:
            raise StreamRefused(missing)
        try:
            lines = sdp.outgoing_lines(sdp.parse(body))
        except sdp.SdpMismatch as exc:
            raise StreamRefused(str(exc)) from None
        if not lines:
            raise StreamRefused(missing)
        return lines[0]

    # -- later offers --------------------------------------------------------------------------
    def offer_from(self, leg: LegDriver, body: bytes | None) -> None:
        self.offers.offer_from(leg, body)

    def answer_in_ack(self, leg: LegDriver, body: bytes) -> None:
        self.offers.answer_in_ack(leg, body)

    def forwarded(self, leg: LegDriver, action: ReinviteCompleted) -> None:
        self.offers.forwarded(leg, action)

    # -- life ----------------------------------------------------------------------------------
    async def start(self, local: MediaDescription, remote: MediaDescription) -> None:
        self.state = StreamState.ACTIVE

    async def end(self, reason: str | None = None) -> None:
        self.end_media(None)
        self.state = StreamState.ENDED

    def end_media(self, code: int | None) -> None:
        """The call is over (`code`: its final status): the worker's call ends too."""
        media = self.leg
        if media is None or media.closed or media.session.terminated:
            return
        session = media.session
        if session.role is Role.UAS and not self.answered:
            final = code if code is not None and 300 <= code <= 699 else 487
            try:
                media.feed(session.reject(final, media.now()))
                return
            except InviteSessionError:
                pass
        media.feed(session.end(media.now()))

    def _feed(self, step: Any) -> None:
        media = self.leg
        if media is None or media.closed or media.session.terminated:
            return
        try:
            media.feed(step(media.session, media.now()))
        except InviteSessionError as exc:
            log.warning("session %s: internal leg: %s", self.context.session_id, exc)

    def _media_event(self, leg: LegDriver, action: Any) -> None:
        session = leg.session
        if isinstance(action, StateChanged):
            if action.state in TERMINAL_STATES:
                self.sig.media_ended(action.code, action.reason)
            self.sig.changed()
        elif isinstance(action, RemoteSdp):
            if action.kind == "offer":  # the worker's INVITE (outgoing call)
                self.worker.offer = action.sdp
            elif action.kind == "answer" and session.role is Role.UAC and not self.answered:
                self.answered = True
                self.sig.answered(action.sdp)
            elif action.kind == "answer":
                self.offers.answer_in_ack(leg, action.sdp)  # of an offerless re-INVITE
        elif isinstance(action, OfferReceived):
            self.offers.offer_from(leg, action.sdp)
        elif isinstance(action, ReinviteCompleted):
            self.offers.forwarded(leg, action)
        elif isinstance(action, InDialogRequest):
            answer_other(action, self.sig.allow)

    # -- commands ------------------------------------------------------------------------------
    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """A control command about this call to its worker (the session checked it is up)."""
        return await self.worker.command(cmd, **fields)

    async def rtp_counters(self) -> dict[str, Any] | None:
        return await self.worker.rtp_counters()

    @property
    def recording(self) -> str | None:
        return self.worker.recording

    @recording.setter
    def recording(self, path: str | None) -> None:
        self.worker.recording = path

    @property
    def info(self) -> dict[str, Any]:
        """The worker's latest call.media event."""
        return self.worker.info

    async def play(self, file: str, loop: bool = False) -> None:
        """Plays a WAV file into the call (`file` checked by `playable_file`)."""
        await self.command("play", file=file, loop=loop)

    async def record(self, file: str) -> None:
        """Records the call to a WAV file (`file` checked by `recordable_file`)."""
        await self.command("record", file=file)
        self.recording = file

    async def send_dtmf(self, digits: str) -> None:
        """Sends DTMF digits (checked by `dtmf_digits`)."""
        try:
            await self.command("dtmf", digits=digits)
        except MediaWorkerError as exc:
            if "ETOOMANY" not in str(exc):
                raise
            raise SessionStateError(f"the digits sent before are still going out (at most "
                                    f"{MAX_DTMF_DIGITS} wait at a time); send these once they "
                                    f"have gone") from None

    async def hold(self, held: bool) -> None:
        """The worker re-INVITEs us with its audio on hold (or off it); the offer passes on
        to the remote party, and session.hold says when it is."""
        await self.command("hold" if held else "unhold")


def answer_other(action: InDialogRequest, allow: str) -> None:
    """Requests in a dialog that no part of sipd handles yet."""
    ref = action.ref
    if not isinstance(ref, IncomingRequest) or ref.transaction is None or ref.answered:
        return
    if action.request.method == "OPTIONS":
        ref.respond_nowait(200, "OK", headers=[("Allow", allow)])
    else:
        ref.respond_nowait(501, "Not Implemented", headers=[("Allow", allow)])


def playable_file(path: str) -> str:
    """The file `play` takes (InvalidSessionParam: why not), checked before the worker sees
    it."""
    file = _absolute(path)
    _checked(check_playable, file)
    return file


def recordable_file(path: str) -> str:
    """The file `record` writes (InvalidSessionParam: why it cannot)."""
    file = _absolute(path)
    _checked(check_recordable, file)
    return file


def dtmf_digits(digits: str) -> str:
    """Digits `send_dtmf` takes (InvalidSessionParam: why not)."""
    if not digits or not set(digits) <= DTMF_DIGITS:
        raise InvalidSessionParam("digits", f"DTMF digits are 0-9, *, # and A-D, not "
                                            f"{digits!r}")
    if len(digits) > MAX_DTMF_DIGITS:
        raise InvalidSessionParam("digits", f"at most {MAX_DTMF_DIGITS} DTMF digits at a "
                                            f"time, not {len(digits)}")
    return digits


def _checked(check: Callable[[str], None], path: str) -> None:
    try:
        check(path)
    except MediaFileError as exc:
        raise InvalidSessionParam("path", str(exc)) from None


def _absolute(path: str) -> str:
    if not path or not Path(path).is_absolute():
        raise InvalidSessionParam("path", f"{path!r} is not an absolute path (the daemon's "
                                          f"working directory means nothing to a client)")
    return path
