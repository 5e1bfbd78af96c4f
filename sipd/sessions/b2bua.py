"""One call as a back-to-back user agent (DESIGN.md §2): the outside leg to the remote party
and the internal leg to the media worker that carries its audio, each an InviteSession
driven by a LegDriver, and what passes between them.

Outgoing (`place`): a worker slot is allocated and the worker is told to `call` our internal
URI; its INVITE (tagged with X-Sipd-Session) brings its audio offer. That offer, sanitised,
goes out in our INVITE to the remote party. The remote's 180 / 183 / 2xx come back to the
worker as our 180 / 183 / 200 (with the audio part of the remote's SDP); failures as the same
final code. Asking the worker to call us (rather than us calling the worker without an offer)
keeps both legs in plain offer/answer order: the worker's INVITE waits, unanswered, for as
long as the remote party rings, and the ACK of each leg needs nothing from the other.

Incoming (`receive`, then `answer`): the remote's offer is checked and the call rings (180).
On answer a worker slot is allocated and we INVITE the worker with the audio part of the
offer; it answers at once (auto answer) and its answer, merged, goes out in our 200. An
INVITE without offer is answered the outgoing way round: the worker calls us, its offer goes
out in our 200, and the answer in the remote's ACK becomes our 200 to the worker.

Later offers (hold, unhold, the remote's re-INVITEs) are passed from leg to leg the same way:
an offer on one leg becomes a re-INVITE on the other, and its answer the answer of the first.
An offer that changes nothing (a session refresh) is answered on its own leg. A BYE on either
leg ends the other. A worker that dies ends the outside call with the supervisor's reason.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import trio

from sipd.accounts.model import AccountConfig
from sipd.accounts.outbound import credentials_of, first_hop, proxy_route, with_transport
from sipd.media.process import MediaWorkerError
from sipd.media.protocol import SESSION_HEADER
from sipd.media.supervisor import MediaUnavailable
from sipd.sip.builder import build_request, warning_value
from sipd.sip.header_values import Address
from sipd.sip.trio.locator import LocationError
from sipd.sip.message import Request
from sipd.sip.trio.handles import IncomingRequest
from sipd.sip.trio.transport import Source, TargetLike
from sipd.sip.uri import SipUri

from .streams.audio import sdp
from .streams import NothingAccepted, StreamContext, plan_answer
from .streams.audio import AUDIO
from .b2bua_failover import InviteFailover
from .b2bua_offers import OfferPassing
from .b2bua_transfer import Transfers
from .b2bua_worker import WorkerLeg
from .errors import SessionStateError
from .driver import LegDriver
from .invite.session import InviteSession
from .invite.events import (
    TERMINAL_STATES,
    DtmfReceived,
    InDialogRequest,
    InDialogResponse,
    InviteSessionError,
    OfferReceived,
    ReinviteCompleted,
    RemoteSdp,
    Role,
    SessionState,
    StateChanged,
)
from .sdp import SessionVersion

if TYPE_CHECKING:  # pragma: no cover
    from .manager import SessionManager

log = logging.getLogger(__name__)

SDP_TYPE = "application/sdp"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, REFER, NOTIFY"
SUPPORTED = ("Supported", "replaces")  # RFC 3891, in our INVITEs and 2xx (b2bua_transfer)
SETTLE_WAIT = 5.0  # seconds a hold waits for an offer exchange in progress
_EARLY = (SessionState.CALLING, SessionState.RINGING, SessionState.EARLY)


class Call(WorkerLeg, OfferPassing, InviteFailover):
    def __init__(self, manager: SessionManager, session_id: str, account: AccountConfig,
                 direction: str, remote: str) -> None:
        self.manager = manager
        self.id = session_id
        self.account = account
        self.direction = direction
        self.remote = remote
        self.streams = ["audio"]
        self.state, self.code, self.reason = "calling", None, None
        self.created = time.time()
        self.outside: LegDriver | None = None
        self.media: LegDriver | None = None
        self.worker: Any = None          # sipd.media.process.WorkerProcess
        self.worker_call: int | None = None  # the worker's handle of its call
        self.worker_source: Source | None = None  # where the worker's INVITE came from
        self.worker_listener: Source | None = None
        self.media_info: dict[str, Any] = {}
        self.on_hold = self.remote_hold = False
        self.recording: str | None = None
        self.end_reason: str | None = None  # why we ended it, when not the SIP's reason
        self.out_versions = SessionVersion(manager.media_address)
        self.in_versions = SessionVersion("127.0.0.1")
        self._remote_offer: Any = None  # parsed offer of an incoming call
        self._worker_offer: bytes | None = None
        self._worker_invite = trio.Event()
        self._worker_failure: str | None = None  # why the worker's call ended before its INVITE
        self._answering = False
        self._cancelled = False
        self._outside_answered = False  # the outside INVITE has its 2xx (sent or received)
        self._media_answered = False    # the worker's INVITE has its 2xx (ours or its own)
        self._expect_worker_invite = False
        self._forwarding: tuple[LegDriver, Any] | None = None  # (leg the offer came on, offer)
        self._transport = "udp"  # toward the remote party, for in-dialog requests
        self._nursery: trio.Nursery | None = None
        self._queued: list[tuple[Any, tuple[Any, ...]]] = []  # tasks before `run` starts
        self._placing: Any = None  # sends our INVITE once the worker's has come (`place`)
        self._done = trio.Event()
        self._moved = trio.Event()  # set (and replaced) each time a leg takes an input
        self.transfers = Transfers(self)  # REFER out and in (b2bua_transfer)
        self.extra_headers: list[tuple[str, str]] = []  # in our INVITE (Referred-By, Replaces)
        self._outside_invite: IncomingRequest | None = None  # the remote's INVITE (incoming)

    def __repr__(self) -> str:
        return f"<Call {self.id} {self.direction} {self.state}>"

    # -- views ----------------------------------------------------------------------------------
    @property
    def terminated(self) -> bool:
        return self.state in ("ended", "failed")

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"id": self.id, "account": self.account.id,
                                "direction": self.direction, "remote": self.remote,
                                "streams": list(self.streams), "state": self.state}
        if self.code is not None:
            view["code"] = self.code
        if self.reason is not None:
            view["reason"] = self.reason
        view.update(on_hold=self.on_hold, remote_hold=self.remote_hold,
                    media={k: v for k, v in self.media_info.items()
                           if k not in ("event", "call", "session")},
                    recording=self.recording, started=self.created,
                    transfer=self.transfers.last)
        return view

    def _publish_state(self, state: str, code: int | None = None,
                       reason: str | None = None) -> None:
        if self.terminated or (state == self.state and code == self.code):
            return
        if self.end_reason is not None and state in ("ending", "ended", "failed"):
            reason = self.end_reason
        self.state, self.code, self.reason = state, code, reason
        data: dict[str, Any] = {"id": self.id, "state": state}
        if code is not None:
            data["code"] = code
        if reason is not None:
            data["reason"] = reason
        detail = " ".join(str(part) for part in (code, reason) if part is not None)
        log.info("session %s: %s%s", self.id, state, f" ({detail})" if detail else "")
        self.manager.publish("session.state", data)

    # -- offer exchanges ------------------------------------------------------------------------
    def _legs_moved(self) -> None:
        """A leg took an input (its state may have moved): wake who waits on `settled`."""
        self._moved.set()
        self._moved = trio.Event()

    @property
    def exchanging(self) -> bool:
        """Whether an offer exchange is under way on either leg (or between them)."""
        return self._forwarding is not None or any(
            not leg.closed and not leg.session.terminated and not leg.session.can_reinvite
            for leg in (self.outside, self.media) if leg is not None)

    async def settled(self, limit: float = SETTLE_WAIT) -> None:
        """Returns once no offer exchange is under way (or after `limit` seconds).

        A hold asked for just after the remote's re-INVITE (its session.hold event comes
        with our 200, before the remote's ACK) would make the worker re-INVITE us while the
        outside leg cannot take one yet (RFC 3261 §14.1): we would refuse it 491, and pjsua
        does not try again, so the hold would be lost while sessions.hold said yes."""
        with trio.move_on_after(limit):
            while self.exchanging:
                await self._moved.wait()

    def stream_context(self) -> StreamContext:
        """What this session's streams see of it."""
        return StreamContext(self.id, self.manager.publish, self.manager.media,
                             self.manager.audio_codecs())

    # -- life -----------------------------------------------------------------------------------
    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """The call's tasks live here until both legs are over (and a while after, for
        retransmissions of their last messages)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                queued, self._queued = self._queued, []
                for fn, args in queued:
                    nursery.start_soon(fn, *args)
                task_status.started()
                await self._done.wait()
                # Late retransmissions (a 2xx to ACK again, a BYE to answer) for 64*T1.
                await trio.sleep(self.manager.linger)
                nursery.cancel_scope.cancel()
        finally:
            self.manager.forget(self)

    def start_soon(self, fn: Any, *args: Any) -> None:
        """A task of this call. The manager starts `run` without waiting for it (a round trip
        through the scheduler on every call's setup path): what comes before it opened the
        call's nursery is started there as soon as it has."""
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
        else:
            self._queued.append((fn, args))

    def _spawn(self, leg: LegDriver) -> None:
        self.start_soon(leg.run)

    def _check_done(self) -> None:
        if self._done.is_set():
            return
        outside_over = self.outside is None or self.outside.session.terminated
        media_over = (self.media is None or self.media.closed
                      or self.media.session.terminated)
        if self.terminated and outside_over and media_over:
            if self.media is not None:
                self.media.close()
            self.manager.release_media(self)
            self._done.set()

    def _fail(self, code: int, reason: str) -> None:
        """The call failed before the outside leg could decide it."""
        self._publish_state("failed", code, reason)
        self._end_media(code)
        self._check_done()

    # -- outgoing -------------------------------------------------------------------------------
    async def place(self, to: SipUri) -> None:
        """Sets up an outgoing call (in the call's nursery): worker, its offer, our INVITE."""
        try:
            targets = await self.manager.locator.locate(first_hop(self.account, to))
            if self._cancelled:
                return self._fail(487, "cancelled")
            self.worker = await self.manager.allocate_media(self)
            if self._cancelled or self.terminated:
                self.manager.release_media(self)
                return self._fail(487, "cancelled")
            # The worker's INVITE sends ours from its own task (on_worker_invite calls
            # `_placing`): waking this task first would cost a trip through the scheduler.
            self._placing = lambda: self._invite_remote(to, targets)
            await self._worker_calls_us()
            self._invite_remote(to, targets)  # unless done: a failure, the timeout
        except LocationError as exc:
            self._fail(404 if exc.reason == LocationError.NXDOMAIN else 503, str(exc))
        except (MediaUnavailable, MediaWorkerError) as exc:
            self._fail(503, f"media unavailable: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug fails this call, not the daemon
            log.exception("session %s: setting up the call failed", self.id)
            self._fail(500, f"internal error: {exc!r}; see the log")

    def _invite_remote(self, to: SipUri, targets: Any) -> None:
        """Our INVITE to the remote party, once the worker's INVITE brought its offer (or
        the call fails: no offer, cancelled meanwhile). Once only."""
        self._placing = None
        if self.terminated or self.outside is not None:
            return None
        try:
            if self._worker_offer is None:
                return self._fail(500, self._worker_failure
                                  or "the media engine did not place its call")
            if self._cancelled:
                return self._fail(487, "cancelled")
            self._send_invite(to, self._first_target(to, targets))
        except Exception as exc:  # noqa: BLE001 - a bug fails this call, not the daemon
            log.exception("session %s: setting up the call failed", self.id)
            self._fail(500, f"internal error: {exc!r}; see the log")
        return None

    def _send_invite(self, to: SipUri, target: TargetLike) -> None:
        worker_offer = sdp.parse(self._worker_offer)
        self._transport = target.transport
        invite = build_request(
            "INVITE", to, from_=self.manager.sender(self.account, target),
            to=Address(to), contact=self.manager.contact(self.account, target.transport, target),
            routes=[r for r in (proxy_route(self.account),) if r is not None],
            headers=[("Allow", ALLOW), SUPPORTED, *self.extra_headers],
            body=sdp.outside_offer(worker_offer, self.out_versions),
            content_type=SDP_TYPE)
        session = InviteSession(timers=self.manager.timers)
        leg = self.outside = LegDriver(
            "outside", session, self.manager.stack, route=self._outside_route,
            on_event=self._outside_event, initial_target=target,
            authenticator=credentials_of(self.account), on_fed=self._legs_moved)
        self._spawn(leg)
        assert invite.call_id is not None and invite.from_ is not None
        self.manager.register_dialog(invite.call_id, invite.from_.tag or "", leg)
        leg.feed(session.start(invite, leg.now(), reliable=target.transport != "udp"))

    # -- incoming -------------------------------------------------------------------------------
    def receive(self, incoming: IncomingRequest, *, ring: bool = True) -> None:
        """A new INVITE from the remote party: check its offer and ring (not when it is
        answered at once: a 180 just before the 200 only delays the 200)."""
        incoming.detach()
        self._transport = incoming.transport
        session = InviteSession(timers=self.manager.timers)
        leg = self.outside = LegDriver("outside", session, self.manager.stack,
                                       route=self._outside_route, on_event=self._outside_event,
                                       on_fed=self._legs_moved)
        self._spawn(leg)
        leg.uses(getattr(incoming.source, "connection", None))
        leg.feed(session.incoming(
            incoming.request, leg.now(), ref=incoming, reliable=incoming.transport != "udp",
            contact=self.manager.contact(self.account, incoming.transport, incoming.source)))
        self.manager.register_dialog(session.call_id or "", session.local_tag or "", leg)
        self.start_soon(self._watch_cancel, leg, incoming)
        self._outside_invite = incoming
        if session.terminated:
            return
        if session.remote_sdp is not None:  # else an offerless INVITE: we offer in the 200
            try:
                offer = sdp.parse(session.remote_sdp)
                # Line by line: a line no kind takes gets port 0 in the answer; only an
                # offer of which nothing is taken is refused.
                try:
                    plan = plan_answer(offer, self.manager.streams, self.stream_context())
                except NothingAccepted as exc:
                    if any(media.type == AUDIO for media in offer.media):
                        raise sdp.SdpMismatch(str(exc)) from None
                    raise sdp.SdpMismatch(f"the offer has no audio stream ({exc})") from None
                if not plan.takes(AUDIO):
                    raise sdp.SdpMismatch("the offer has no audio stream, and sessions "
                                          "without audio are not carried yet")
            except sdp.SdpMismatch as exc:
                leg.feed(session.reject(488, leg.now(),
                                        headers=[("Warning", warning_value(str(exc)))]))
                return
            self._remote_offer = offer
        if ring:
            leg.feed(session.ring(leg.now(), headers=[("Allow", ALLOW)]))

    async def answer(self) -> None:
        leg = self.outside
        if self.direction != "incoming" or leg is None:
            raise SessionStateError("only an incoming call can be answered")
        if leg.session.state not in _EARLY or self._answering:
            raise SessionStateError(f"the call is {self.state}; it cannot be answered now")
        self._answering = True
        try:
            self.worker = await self.manager.allocate_media(self)
        except Exception as exc:
            if not leg.session.terminated:
                self.end_reason = f"media unavailable: {exc}"
                leg.feed(leg.session.reject(503, leg.now(), reason="Media Unavailable"))
            raise
        if leg.session.terminated:  # cancelled meanwhile
            self.manager.release_media(self)
            return
        if self._remote_offer is None:
            await self._answer_with_offer(leg)
            return
        transport = self._internal_transport()
        self.worker_listener = self._listener(transport)
        worker_uri = SipUri("127.0.0.1", user="media", port=self.worker_listener.port)
        if transport != "udp":
            worker_uri.params.set("transport", transport)
        invite = build_request(
            "INVITE", worker_uri, from_=Address(self.manager.internal_uri(transport)),
            to=Address(worker_uri), contact=self.manager.internal_contact(transport),
            headers=[(SESSION_HEADER, self.id), ("Allow", ALLOW)],
            body=sdp.for_worker(self._remote_offer, self.in_versions), content_type=SDP_TYPE)
        session = InviteSession(timers=self.manager.timers)
        media = self.media = LegDriver("media", session, self.manager.stack,
                                       route=self._worker_route, on_event=self._media_event,
                                       initial_target=self.worker_listener,
                                       on_fed=self._legs_moved)
        self._spawn(media)
        assert invite.call_id is not None and invite.from_ is not None
        self.manager.register_dialog(invite.call_id, invite.from_.tag or "", media)
        media.feed(session.start(invite, media.now(), reliable=transport != "udp"))

    async def _answer_with_offer(self, leg: LegDriver) -> None:
        """An INVITE without offer: the worker's offer goes out in our 200, the remote's
        answer comes in its ACK and goes back to the worker in our 200 to it."""
        try:
            await self._worker_calls_us()
        except MediaWorkerError as exc:
            self.end(f"media unavailable: {exc}")
            raise
        if leg.session.terminated:
            return
        try:
            offer = sdp.outside_offer(sdp.parse(self._worker_offer), self.out_versions)
        except sdp.SdpMismatch as exc:
            self.end(f"the media engine made no offer: {exc}")
            return
        if self._caller_cancelled(leg):
            return
        self._outside_answered = True
        leg.feed(leg.session.accept(offer, leg.now(), headers=[("Allow", ALLOW), SUPPORTED]))

    def reject(self, code: int) -> None:
        leg = self.outside
        if self.direction != "incoming" or leg is None:
            raise SessionStateError("only an incoming call can be rejected; use sessions.end")
        if leg.session.state not in _EARLY or self._answering:
            raise SessionStateError(f"the call is {self.state}; it cannot be rejected now")
        try:
            leg.feed(leg.session.reject(code, leg.now()))
        except InviteSessionError as exc:
            raise SessionStateError(str(exc)) from None

    def end(self, reason: str | None = None) -> None:
        """Hang up (CANCEL, reject or BYE as the state calls for)."""
        if reason is not None and self.end_reason is None:
            self.end_reason = reason
        leg = self.outside
        if leg is None:  # still setting up
            self._cancelled = True
            if self.direction == "outgoing" and not self.terminated:
                self._publish_state("ending", None, "cancelled")
                self._fail(487, reason or "cancelled")
            return
        if leg.session.terminated:
            return
        if leg.session.role is Role.UAS and leg.session.state in _EARLY \
                and not self._outside_answered:
            # Not answered: declined by the user, or unavailable when we hang up ourselves.
            leg.feed(leg.session.reject(503 if reason else 603, leg.now()))
            return
        if leg.session.role is Role.UAC and leg.session.state in _EARLY \
                and self.end_reason is None:
            self.end_reason = "cancelled"  # our CANCEL: the 487 that follows says why
        leg.feed(leg.session.end(leg.now()))

    # -- outside leg events -----------------------------------------------------------------------
    def _outside_event(self, leg: LegDriver, action: Any) -> None:
        session = leg.session
        if isinstance(action, StateChanged):
            if self._invite_elsewhere(leg, action):
                return  # an earlier attempt's, or the INVITE goes to the next target
            self._publish_state(action.state.value, action.code, action.reason)
            if action.state is SessionState.RINGING and session.role is Role.UAC:
                self._media_feed(lambda m, now: m.ring(now))
            elif action.state in TERMINAL_STATES:
                self._end_media(action.code)
            self._check_done()
        elif isinstance(action, RemoteSdp):
            if action.kind == "answer" and session.role is Role.UAC:
                self._outside_answered = True
            media = self.media
            if action.kind in ("early", "answer") and media is not None \
                    and media.session.role is Role.UAS and not self._media_answered:
                # Our INVITE's answer (outgoing), or the answer to our offer in the ACK of
                # our 200 (an offerless incoming INVITE): the worker's INVITE waits for it.
                self._pass_remote_answer(action.sdp, early=action.kind == "early")
            elif action.kind == "answer":
                self._answer_in_ack(leg, action.sdp)  # of an offerless re-INVITE, if one
        elif isinstance(action, OfferReceived):
            self._offer_from(leg, action.sdp)
        elif isinstance(action, ReinviteCompleted):
            self._forwarded(leg, action)
        elif isinstance(action, DtmfReceived):
            self.manager.publish("session.dtmf", {"id": self.id, "digit": action.digit,
                                                  "method": "sip_info",
                                                  "duration": action.duration})
        elif isinstance(action, InDialogRequest):
            if not self.transfers.on_request(action):
                _answer_other(action)
        elif isinstance(action, InDialogResponse):
            self.transfers.on_response(action)

    def _pass_remote_answer(self, body: bytes, *, early: bool) -> None:
        """The remote's answer (in a 183 or the 2xx) to our INVITE: to the worker."""
        try:
            worker_sdp = sdp.for_worker(sdp.parse(body), self.in_versions)
        except sdp.SdpMismatch as exc:
            if not early:
                self.end_reason = f"unusable answer: {exc}"
                self.end()
            return
        if early:
            self._media_feed(lambda m, now: m.progress(worker_sdp, now))
        else:
            self._media_answered = True
            self._media_feed(lambda m, now: m.accept(worker_sdp, now))

    # -- media leg events ---------------------------------------------------------------------------
    def _media_event(self, leg: LegDriver, action: Any) -> None:
        session = leg.session
        if isinstance(action, StateChanged):
            if action.state in TERMINAL_STATES:
                self._media_over(action)
            self._check_done()
        elif isinstance(action, RemoteSdp):
            if action.kind == "offer":  # the worker's INVITE (outgoing call)
                self._worker_offer = action.sdp
            elif action.kind == "answer" and session.role is Role.UAC \
                    and not self._media_answered:
                self._media_answered = True
                self._answer_outside(action.sdp)
            elif action.kind == "answer":
                self._answer_in_ack(leg, action.sdp)  # of an offerless re-INVITE, if one
        elif isinstance(action, OfferReceived):
            self._offer_from(leg, action.sdp)
        elif isinstance(action, ReinviteCompleted):
            self._forwarded(leg, action)
        elif isinstance(action, InDialogRequest):
            _answer_other(action)

    def _answer_outside(self, worker_answer: bytes) -> None:
        """The worker answered the remote's offer (incoming call): our 200 to the remote."""
        outside = self.outside
        if outside is None or outside.session.terminated:
            self._end_media(None)
            return
        try:
            answer = sdp.outside_answer(self._remote_offer, sdp.parse(worker_answer),
                                        self.out_versions)
        except sdp.SdpMismatch as exc:
            self.end_reason = str(exc)
            outside.feed(outside.session.reject(488, outside.now()))
            return
        if self._caller_cancelled(outside):
            return
        self._outside_answered = True
        outside.feed(outside.session.accept(answer, outside.now(),
                                            headers=[("Allow", ALLOW), SUPPORTED]))

    def _media_over(self, action: StateChanged) -> None:
        outside = self.outside
        if outside is None:
            if not self.terminated and self.direction == "outgoing":
                detail = " ".join(str(p) for p in (action.code, action.reason) if p is not None)
                self._fail(action.code or 500, f"the media engine ended the call "
                                               f"({detail or 'no reason'})")
            return
        if outside.session.terminated:
            return
        if self.end_reason is None:
            detail = " ".join(str(p) for p in (action.code, action.reason) if p is not None)
            self.end_reason = f"the media engine ended the call ({detail or 'no reason'})"
        if outside.session.role is Role.UAS and not self._outside_answered:
            code = 488 if action.code == 488 else 500
            outside.feed(outside.session.reject(code, outside.now()))
        else:
            outside.feed(outside.session.end(outside.now()))

    def _media_feed(self, step: Any) -> None:
        media = self.media
        if media is None or media.closed or media.session.terminated:
            return
        try:
            media.feed(step(media.session, media.now()))
        except InviteSessionError as exc:
            log.warning("session %s: internal leg: %s", self.id, exc)

    def _end_media(self, code: int | None) -> None:
        media = self.media
        if media is None or media.closed or media.session.terminated:
            return
        session = media.session
        if session.role is Role.UAS and not self._media_answered:
            final = code if code is not None and 300 <= code <= 699 else 487
            try:
                media.feed(session.reject(final, media.now()))
                return
            except InviteSessionError:
                pass
        media.feed(session.end(media.now()))

    # -- routing toward the remote party ------------------------------------------------------------
    async def _outside_route(self, request: Request) -> TargetLike:
        """RFC 3261 §8.1.2 for in-dialog requests: the first Route, else the remote target,
        located (RFC 3263); the dialog's transport when the URI names none."""
        routes = request.routes
        uri = routes[0].uri if routes else request.uri
        if not isinstance(uri, SipUri):
            raise LocationError(str(uri), LocationError.BAD_URI, "not a sip: or sips: URI")
        targets = await self.manager.locator.locate(with_transport(uri, self._transport))
        return targets[0]

    def _caller_cancelled(self, leg: LegDriver) -> bool:
        """Whether the caller's CANCEL came just before our 200: the stack has answered it and
        the INVITE (487) already, `_watch_cancel` has not run yet, and a 200 now would go
        nowhere while the call waited forever for an ACK. The session learns it here."""
        invite = self._outside_invite
        if invite is None or not invite.cancelled.is_set():
            return False
        if not leg.closed:
            leg.feed(leg.session.cancelled(leg.now(), already_answered=True))
        return True

    async def _watch_cancel(self, leg: LegDriver, incoming: IncomingRequest) -> None:
        """A CANCEL of an INVITE we have not answered (the stack answered 200 and 487)."""
        await incoming.cancelled.wait()
        if not leg.closed:
            leg.feed(leg.session.cancelled(leg.now(), already_answered=True))


def _answer_other(action: InDialogRequest) -> None:
    """Requests in a dialog that no part of sipd handles yet."""
    ref = action.ref
    if not isinstance(ref, IncomingRequest) or ref.transaction is None or ref.answered:
        return
    if action.request.method == "OPTIONS":
        ref.respond_nowait(200, "OK", headers=[("Allow", ALLOW)])
    else:
        ref.respond_nowait(501, "Not Implemented", headers=[("Allow", ALLOW)])
