"""A session (docs/design.md, "Sessions and streams"): one INVITE dialog with the remote party
(the outside leg) and the streams it carries, one per m-line, with an explicit state
(`SessionState`: calling, ringing, early, established, ending, ended, failed).

The pieces are objects the session holds: its streams, made by their kinds
(sipd.sessions.streams): `lines`, one stream per m-line of the kinds that answer for their own
line (chat, file transfer, screen sharing...), and `audio`, the `AudioStream` that carries
all the audio lines through one media worker call on an internal leg
(sipd.sessions.streams.audio.stream; None in a session without audio); `StreamChanges`
(streams added and removed once it is up, sipd.sessions.proposals), `InviteFailover` (the
next located target, sipd.sessions.failover) and `Transfers` (REFER,
sipd.sessions.transfer). What it may use of the daemon is a `SessionContext`
(sipd.sessions.context); what the audio stream may use of the session, an
`AudioSignalling`. The session drives the outside leg and tells the audio stream what it
brings; audio is carried back to back:

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

import enum
import logging
import time
from typing import Any, Callable, Sequence

import trio

from sipd.accounts.model import AccountConfig
from sipd.accounts.outbound import credentials_of, first_hop, proxy_route, with_transport
from sipd.media.process import MediaWorkerError
from sipd.media.supervisor import MediaUnavailable
from sipd.sip.builder import build_request, warning_value
from sipd.sip.header_values import Address
from sipd.sip.message import Request
from sipd.sip.trio.handles import IncomingRequest
from sipd.sip.trio.locator import LocationError, Target
from sipd.sip.uri import SipUri

from .context import SessionContext
from .driver import Hop, LegDriver
from .errors import SessionStateError
from .failover import InviteFailover
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
from .invite.session import InviteSession
from .proposals import StreamChanges
from .ring_limit import RingLimit, expires_header, incoming_limit, outgoing_limit
from .sdp import MediaDescription, SessionVersion
from .streams import (AnswerPlan, AudioKind, NothingAccepted, Stream, StreamContext,
                      StreamRefused, StreamState, plan_answer)
from .streams.audio import AUDIO, sdp
from .streams.audio.stream import (AudioSignalling, AudioStream, answer_other, dtmf_digits,
                                   playable_file, recordable_file)
from .transfer import Transfers, attended_target

log = logging.getLogger(__name__)

__all__ = ["Session", "SessionState"]

SDP_TYPE = "application/sdp"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, REFER, NOTIFY"
SUPPORTED = ("Supported", "replaces")  # RFC 3891, in our INVITEs and 2xx (sessions.transfer)
SETTLE_WAIT = 5.0  # seconds a hold waits for an offer exchange in progress
_EARLY = (SessionState.CALLING, SessionState.RINGING, SessionState.EARLY)
_LEAVING = (SessionState.ENDING, SessionState.ENDED, SessionState.FAILED)


class Answer(enum.Enum):
    """Where our answer to an incoming INVITE is (the outside leg as UAS)."""

    WAITING = "waiting"      # ringing: nobody answered or refused yet
    ANSWERING = "answering"  # sessions.answer: the worker is being set up
    SENT = "sent"            # our 2xx went out


class Session:
    def __init__(self, context: SessionContext, session_id: str, account: AccountConfig,
                 direction: str, remote: str, streams: Sequence[str] = (AUDIO,)) -> None:
        self.context = context
        self.id = session_id
        self.account = account
        self.direction = direction
        self.remote = remote
        self.streams = list(streams)  # the kinds, in m-line order
        self.stream_options: dict[str, Any] = {}  # by kind: what the user asked of them
        self.state = SessionState.CALLING
        self.code: int | None = None
        self.reason: str | None = None
        self.created = time.time()
        self.end_reason: str | None = None  # why we ended it, when not the SIP's reason
        # Ended for a fault (worker lost, no media from the remote party), not a hangup:
        # the session ends `failed`, even if it was established.
        self.end_failed = False
        self.extra_headers: list[tuple[str, str]] = []  # in our INVITE (Referred-By...)
        # Where the call's audio comes from and goes: "null" (nothing, or a WAV `play`), or
        # "web" (a web page's microphone and speaker, over its audio channel: sipd/web).
        self.audio_device = "null"
        self.outside: LegDriver | None = None
        self.versions = SessionVersion(context.addresses.media_address)  # our o= outside
        self.failover = InviteFailover(session_id, context.locator, self._invite_elsewhere)
        self.transfers = Transfers(self)  # REFER out and in (sessions.transfer)
        self.changes = StreamChanges(self)  # streams added and removed once it is up
        self._answer = Answer.WAITING
        self._remote_offer: Any = None  # parsed offer of an incoming call
        self._plan: AnswerPlan | None = None  # which kind answers which line of it
        # The streams of kinds other than the worker's audio, by m-line, and our lines.
        self.lines: dict[int, Stream] = {}
        self._local_lines: dict[int, MediaDescription] = {}
        self._transport = "udp"  # toward the remote party, for in-dialog requests
        self._outside_invite: IncomingRequest | None = None  # the remote's INVITE (incoming)
        self._placing: Callable[[], None] | None = None  # our INVITE, once the worker's came
        self._nursery: trio.Nursery | None = None
        self._queued: list[tuple[Any, tuple[Any, ...]]] = []  # tasks before `run` starts
        self._done = trio.Event()
        self._moved = trio.Event()  # set (and replaced) each time a leg takes an input
        self._terminated = trio.Event()  # the state is ended or failed
        # The audio lines, carried by a media worker: made when the session sets its audio
        # up (none in a session without audio).
        self.audio: AudioStream | None = None

    def _audio_stream(self, index: int) -> AudioStream:
        """The session's audio stream, made once."""
        if self.audio is not None:
            return self.audio
        kind = self.context.streams.get(AUDIO) if AUDIO in self.context.streams \
            else AudioKind()
        context = self.stream_context()
        context.signalling = AudioSignalling(
            self.context, lambda: self.outside, self.versions, lambda: dict(self._local_lines),
            spawn=self.start_soon, on_fed=self._legs_moved, allow=ALLOW,
            media_ended=self._media_over, answered=self._worker_answered,
            changed=self._check_done)
        stream = kind.new_stream(context, index)
        assert isinstance(stream, AudioStream)
        self.audio = stream
        return stream

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.direction} {self.state.value}>"

    # -- views ---------------------------------------------------------------------------------
    @property
    def terminated(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def media(self) -> LegDriver | None:
        """The internal leg to the media worker (None before it is set up)."""
        return self.audio.leg if self.audio is not None else None

    @property
    def local_lines(self) -> dict[int, MediaDescription]:
        """Our lines of the streams in `lines`, by m-line."""
        return self._local_lines

    @property
    def on_hold(self) -> bool:
        return self.audio is not None and self.audio.on_hold

    @property
    def remote_hold(self) -> bool:
        return self.audio is not None and self.audio.remote_hold

    @property
    def recording(self) -> str | None:
        return self.audio.recording if self.audio is not None else None

    @recording.setter
    def recording(self, path: str | None) -> None:
        if self.audio is not None:
            self.audio.recording = path

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"id": self.id, "account": self.account.id,
                                "direction": self.direction, "remote": self.remote,
                                "streams": list(self.streams), "state": self.state.value}
        if self.code is not None:
            view["code"] = self.code
        if self.reason is not None:
            view["reason"] = self.reason
        view.update(on_hold=self.on_hold, remote_hold=self.remote_hold,
                    media={k: v for k, v in (self.audio.info if self.audio else {}).items()
                           if k not in ("event", "call", "session")},
                    recording=self.recording, started=self.created,
                    audio_device=self.audio_device,
                    transfer=self.transfers.last,
                    lines=[stream.view() for stream in self.lines.values()],
                    proposal=self.changes.view(), session_timer=self._timer_view())
        return view

    def _timer_view(self) -> dict[str, Any] | None:
        """The RFC 4028 session timer agreed with the remote party (None: no timer)."""
        timer = self.outside.session.session_timer if self.outside is not None else None
        if timer is None or timer.interval is None:
            return None
        return {"interval": timer.interval, "refresher": "us" if timer.we_refresh else "them"}

    async def rtp_counters(self) -> dict[str, Any] | None:
        return await self.audio.rtp_counters() if self.audio is not None else None

    def _publish_state(self, state: SessionState, code: int | None = None,
                       reason: str | None = None) -> None:
        if self.terminated or (state is self.state and code == self.code):
            return
        if self.end_reason is None and state in _LEAVING:
            # a hangup (ours or the remote's) says what it means for a stream's work
            self.end_reason = next((meaning for stream in self.lines.values()
                                    if (meaning := stream.end_meaning()) is not None), None)
        if self.end_reason is not None and state in _LEAVING:
            reason = self.end_reason
            if state is SessionState.ENDED and self.end_failed:
                state = SessionState.FAILED
        self.state, self.code, self.reason = state, code, reason
        if state in TERMINAL_STATES:
            self._terminated.set()
        data: dict[str, Any] = {"id": self.id, "state": state.value}
        if code is not None:
            data["code"] = code
        if reason is not None:
            data["reason"] = reason
        detail = " ".join(str(part) for part in (code, reason) if part is not None)
        log.info("session %s: %s%s", self.id, state.value, f" ({detail})" if detail else "")
        self.context.publish("session.state", data)

    def stream_context(self) -> StreamContext:
        """What this session's streams see of it."""
        return StreamContext(self.id, self.context.publish, self.context.media,
                             self.context.media.audio_codecs(), self.context.resources,
                             account=self.account, local=str(self.account.aor_uri),
                             remote=self.remote, fail=self._stream_failed,
                             line_changed=self.changes.line_changed,
                             options=self.stream_options, end=self.end,
                             outcome=self._stream_outcome, leave=self._stream_leaves)

    def _stream_leaves(self, index: int, reason: str) -> None:
        """A stream's work is over: its line goes, or the session when nothing else is in it."""
        if self.terminated:
            return
        others = [s for i, s in self.lines.items()
                  if i != index and s.state is not StreamState.ENDED]
        if others or self._uses_worker:
            self.changes.leave(index, reason)
        else:
            self._stream_outcome(reason, False)
            self.end(reason)

    def _stream_outcome(self, reason: str, failed: bool = False) -> None:
        """A stream knows how the session ends (a file delivered, or refused for its hash)
        before the remote party hangs up: the end says so."""
        if self.end_reason is None and not self.terminated:
            self.end_reason, self.end_failed = reason, failed

    def _stream_failed(self, reason: str) -> None:
        """A stream broke for good (its MSRP connection lost...): the session ends with it."""
        if not self.terminated:
            self.end_failed = True
            self.end(reason)

    # -- offer exchanges -----------------------------------------------------------------------
    def _legs_moved(self) -> None:
        """A leg took an input (its state may have moved): wake who waits on `settled`."""
        self._moved.set()
        self._moved = trio.Event()

    @property
    def exchanging(self) -> bool:
        """Whether an offer exchange is under way on either leg (or between them)."""
        return (self.audio is not None and self.audio.forwarding) or any(
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

    # -- life ----------------------------------------------------------------------------------
    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """The session's tasks live here until both legs are over (and a while after, for
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
                await trio.sleep(self.context.linger)
                nursery.cancel_scope.cancel()
        finally:
            self.context.forget(self)

    async def wait_terminated(self) -> None:
        """Returns once the session is ended or failed."""
        await self._terminated.wait()

    def start_soon(self, fn: Any, *args: Any) -> None:
        """A task of this session. The manager starts `run` without waiting for it (a round
        trip through the scheduler on every call's setup path): what comes before it opened
        the nursery is started there as soon as it has."""
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
        else:
            self._queued.append((fn, args))

    def _check_done(self) -> None:
        if self._done.is_set():
            return
        outside_over = self.outside is None or self.outside.session.terminated
        if self.terminated and outside_over and (self.audio is None or self.audio.over):
            if self.audio is not None:
                self.audio.close()
            self._done.set()

    def _fail(self, code: int, reason: str) -> None:
        """The session failed before the outside leg could decide it."""
        self._publish_state(SessionState.FAILED, code, reason)
        self._lines_follow(SessionState.FAILED)
        if self.audio is not None:
            self.audio.end_media(code)
        self._check_done()

    # -- outgoing ------------------------------------------------------------------------------
    async def place(self, to: SipUri) -> None:
        """Sets up an outgoing call (in the session's nursery): worker, its offer, our
        INVITE."""
        self._limit_ringing(outgoing_limit(self.context.policy.no_answer_timeout))
        try:
            targets = await self.context.locator.locate(first_hop(self.account, to))
            if self.terminated:
                return None
            await self._offer_lines()
            if self.terminated:
                return None
            if not self._uses_worker:
                self._invite_remote(to, targets)
                return None
            audio = self._audio_stream(self.streams.index(AUDIO) if AUDIO in self.streams
                                       else 0)
            await audio.allocate()
            if self.terminated:
                audio.release()
                return self._fail(487, "cancelled")
            # The worker's INVITE sends ours from its own task (`on_worker_invite` calls
            # `_placing`): waking this task first would cost a trip through the scheduler.
            self._placing = lambda: self._invite_remote(to, targets)
            await audio.worker_calls_us()
            self._invite_remote(to, targets)  # unless done: a failure, the timeout
        except LocationError as exc:
            self._fail(404 if exc.reason == LocationError.NXDOMAIN else 503, str(exc))
        except StreamRefused as exc:  # a stream could not make its line (no MSRP relay...)
            self._fail(503, str(exc))
        except (MediaUnavailable, MediaWorkerError) as exc:
            self._fail(503, f"media unavailable: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug fails this session, not the daemon
            log.exception("session %s: setting up the call failed", self.id)
            self._fail(500, f"internal error: {exc!r}; see the log")
        return None

    @property
    def _uses_worker(self) -> bool:
        return any(self.context.streams.get(name).uses_media_worker for name in self.streams)

    async def _offer_lines(self) -> None:
        """Our lines for the streams of other kinds than the worker's audio (outgoing)."""
        context = self.stream_context()
        for index, name in enumerate(self.streams):
            kind = self.context.streams.get(name)
            if kind.uses_media_worker:
                continue
            stream = self.lines[index] = kind.new_stream(context, index)
            self._local_lines[index] = await stream.offer()

    def _invite_remote(self, to: SipUri, targets: Sequence[Target]) -> None:
        """Our INVITE to the remote party, once the worker's INVITE brought its offer (or
        the call fails: no offer, cancelled meanwhile). Once only."""
        self._placing = None
        if self.terminated or self.outside is not None:
            return None
        try:
            if self._uses_worker and (self.audio is None or self.audio.worker_offer is None):
                return self._fail(500, (self.audio and self.audio.failure)
                                  or "the media engine did not place its call")
            self._send_invite(to, self.failover.first_target(to, targets))
        except Exception as exc:  # noqa: BLE001 - a bug fails this session, not the daemon
            log.exception("session %s: setting up the call failed", self.id)
            self._fail(500, f"internal error: {exc!r}; see the log")
        return None

    def _invite_elsewhere(self, to: SipUri, target: Target) -> None:
        previous = self.outside
        try:
            self._send_invite(to, target)
        except Exception:
            self.outside = previous
            raise

    def _first_offer(self) -> bytes:
        """Our INVITE's offer: the worker's audio (when the session has audio) and the other
        streams' lines, in the order of `streams`."""
        if self.audio is not None:
            return self.audio.outside_offer(self._local_lines, len(self.streams))
        return sdp.outside_offer(None, self.versions, lines=self._local_lines,
                                 count=len(self.streams))

    def _send_invite(self, to: SipUri, target: Target) -> None:
        self._transport = target.transport
        addresses = self.context.addresses
        invite = build_request(
            "INVITE", to, from_=addresses.sender(self.account, target),
            to=Address(to), contact=addresses.contact(self.account, target.transport, target),
            routes=[r for r in (proxy_route(self.account),) if r is not None],
            headers=[("Allow", ALLOW), SUPPORTED, *self.extra_headers,
                     *expires_header(outgoing_limit(self.context.policy.no_answer_timeout))],
            body=self._first_offer(),
            content_type=SDP_TYPE)
        session = InviteSession(timers=self.context.timers,
                                session_timer=self.context.policy.session_timer())
        leg = self.outside = LegDriver(
            "outside", session, self.context.stack, route=self._outside_route,
            on_event=self._outside_event, initial_target=target,
            authenticator=credentials_of(self.account), on_fed=self._legs_moved)
        self.start_soon(leg.run)
        assert invite.call_id is not None and invite.from_ is not None
        self.context.register_dialog(invite.call_id, invite.from_.tag or "", leg)
        leg.feed(session.start(invite, leg.now(), reliable=target.transport != "udp"))

    # -- incoming ------------------------------------------------------------------------------
    def receive(self, incoming: IncomingRequest, *, ring: bool = True) -> None:
        """A new INVITE from the remote party: check its offer and ring (not when it is
        answered at once: a 180 just before the 200 only delays the 200)."""
        incoming.detach()
        self._transport = incoming.transport
        session = InviteSession(timers=self.context.timers,
                                session_timer=self.context.policy.session_timer())
        leg = self.outside = LegDriver("outside", session, self.context.stack,
                                       route=self._outside_route, on_event=self._outside_event,
                                       on_fed=self._legs_moved)
        self.start_soon(leg.run)
        leg.uses(getattr(incoming.source, "connection", None))
        leg.feed(session.incoming(
            incoming.request, leg.now(), ref=incoming, reliable=incoming.transport != "udp",
            contact=self.context.addresses.contact(self.account, incoming.transport,
                                                   incoming.source)))
        self.context.register_dialog(session.call_id or "", session.local_tag or "", leg)
        self.start_soon(self._watch_cancel, leg, incoming)
        self._outside_invite = incoming
        if session.terminated:
            return
        self._limit_ringing(incoming_limit(incoming.request,
                                           self.context.policy.no_answer_timeout))
        if session.remote_sdp is not None:  # else an offerless INVITE: we offer in the 200
            try:
                offer = sdp.parse(session.remote_sdp)
                # Line by line: a line no kind takes gets port 0 in the answer; only an
                # offer of which nothing is taken is refused.
                try:
                    plan = plan_answer(offer, self.context.streams, self.stream_context())
                except NothingAccepted as exc:
                    raise sdp.SdpMismatch(str(exc)) from None
            except sdp.SdpMismatch as exc:
                leg.feed(session.reject(488, leg.now(),
                                        headers=[("Warning", warning_value(str(exc)))]))
                return
            self._remote_offer, self._plan = offer, plan
            self.streams = [kind.name for kind in plan.kinds()]
        if ring:
            leg.feed(session.ring(leg.now(), headers=[("Allow", ALLOW)]))

    async def answer(self) -> None:
        leg = self.outside
        if self.direction != "incoming" or leg is None:
            raise SessionStateError("only an incoming call can be answered")
        if leg.session.state not in _EARLY or self._answer is not Answer.WAITING:
            raise SessionStateError(f"the call is {self.state.value}; it cannot be answered "
                                    f"now")
        self._answer = Answer.ANSWERING
        if self._plan is not None and not await self._answer_lines(leg, self._plan):
            return
        if self._plan is not None and not self._plan.uses_media_worker:
            self._accept(leg, sdp.outside_answer(self._remote_offer, None, self.versions,
                                                 self._local_lines))
            return
        audio = self._audio_stream(next(
            (line.index for line in self._plan.accepted
             if line.kind is not None and line.kind.uses_media_worker), 0)
            if self._plan is not None else 0)
        try:
            await audio.allocate()
        except Exception as exc:
            if not leg.session.terminated:
                self.end_reason = f"media unavailable: {exc}"
                leg.feed(leg.session.reject(503, leg.now(), reason="Media Unavailable"))
            raise
        if leg.session.terminated:  # cancelled meanwhile
            audio.release()
            return
        if self._remote_offer is None:
            await self._answer_with_offer(leg, audio)
            return
        audio.invite_worker(self._remote_offer)

    async def _answer_lines(self, leg: LegDriver, plan: AnswerPlan) -> bool:
        """The lines of the offer that streams of other kinds than the worker's audio take:
        each stream answers its own (an MSRP stream reserves its path first). False when the
        call was refused (a stream could not take its line after all) or is over."""
        context = self.stream_context()
        for line in plan.accepted:
            assert line.kind is not None
            if line.kind.uses_media_worker:
                continue
            stream = self.lines[line.index] = line.kind.new_stream(context, line.index)
            try:
                self._local_lines[line.index] = await stream.answer(self._remote_offer,
                                                                    line.offered)
            except StreamRefused as exc:
                if not leg.session.terminated:
                    leg.feed(leg.session.reject(
                        488, leg.now(), headers=[("Warning", warning_value(str(exc)))]))
                return False
            except BaseException:  # a bug, or the RPC's cancellation: refused, not left ringing
                if not leg.session.terminated:
                    leg.feed(leg.session.reject(500, leg.now()))
                raise
        return not leg.session.terminated

    def _accept(self, leg: LegDriver, body: bytes) -> None:
        """Our 2xx to the remote's INVITE (unless its CANCEL came first)."""
        if self._caller_cancelled(leg):
            return
        self._answer = Answer.SENT
        leg.feed(leg.session.accept(body, leg.now(), headers=[("Allow", ALLOW), SUPPORTED]))

    def _lines_follow(self, state: SessionState) -> None:
        """The streams of other kinds start once the call is up, and end with it."""
        outside = self.outside
        if self.audio is not None and state is SessionState.ESTABLISHED:
            self.audio.state = StreamState.ACTIVE
        elif self.audio is not None and state in _LEAVING:
            self.audio.state = StreamState.ENDED
        if state is SessionState.ESTABLISHED and self.lines and outside is not None:
            try:
                remote = sdp.parse(outside.session.remote_sdp).media
            except sdp.SdpMismatch:
                remote = []
            for index, stream in self.lines.items():
                if stream.state is not StreamState.NEW:
                    continue
                if index >= len(remote) or remote[index].is_rejected:
                    stream.state = StreamState.ENDED  # the remote refused it (port 0)
                    self.start_soon(stream.end, "rejected by the remote party")
                    continue
                stream.state = StreamState.NEGOTIATING  # once: start() makes it ACTIVE
                self.start_soon(stream.start, self._local_lines[index], remote[index])
            if not self._uses_worker and all(s.state is StreamState.ENDED
                                             for s in self.lines.values()):
                async def hang_up() -> None:  # not from within the leg's own event
                    self.end("the remote party took none of the streams")
                self.start_soon(hang_up)
        elif state in TERMINAL_STATES:
            for stream in self.lines.values():
                if stream.state is not StreamState.ENDED:
                    stream.state = StreamState.ENDED
                    self.start_soon(stream.end, self.end_reason or self.reason)

    async def _answer_with_offer(self, leg: LegDriver, audio: AudioStream) -> None:
        """An INVITE without offer: the worker's offer goes out in our 200, the remote's
        answer comes in its ACK and goes back to the worker in our 200 to it."""
        try:
            await audio.worker_calls_us()
        except MediaWorkerError as exc:
            self.end(f"media unavailable: {exc}")
            raise
        if leg.session.terminated:
            return
        try:
            if audio.worker_offer is None:
                raise sdp.SdpMismatch("no SDP")
            offer = audio.outside_offer({}, 1)
        except sdp.SdpMismatch as exc:
            self.end(f"the media engine made no offer: {exc}")
            return
        if self._caller_cancelled(leg):
            return
        self._answer = Answer.SENT
        leg.feed(leg.session.accept(offer, leg.now(), headers=[("Allow", ALLOW), SUPPORTED]))

    def _limit_ringing(self, limit: RingLimit | None) -> None:
        if limit is not None:
            self.start_soon(self._give_up_ringing, limit)

    async def _give_up_ringing(self, limit: RingLimit) -> None:
        """Nobody answered in time (sipd.sessions.ring_limit): refuse the caller, or cancel
        our INVITE; the session fails with the limit's reason."""
        await trio.sleep(limit.after)
        leg = self.outside
        if self.terminated or self.state not in _EARLY:
            return
        if self.direction == "outgoing":
            self.end(limit.reason)
            return
        if leg is None or leg.session.terminated or self._answer is not Answer.WAITING:
            return  # answered (being set up), or over
        log.info("session %s: %s", self.id, limit.reason)
        self.end_reason = limit.reason
        leg.feed(leg.session.reject(limit.code, leg.now()))

    def reject(self, code: int) -> None:
        leg = self.outside
        if self.direction != "incoming" or leg is None:
            raise SessionStateError("only an incoming call can be rejected; use sessions.end")
        if leg.session.state not in _EARLY or self._answer is not Answer.WAITING:
            raise SessionStateError(f"the call is {self.state.value}; it cannot be rejected "
                                    f"now")
        try:
            leg.feed(leg.session.reject(code, leg.now()))
        except InviteSessionError as exc:
            raise SessionStateError(str(exc)) from None

    def end(self, reason: str | None = None) -> None:
        """Hang up (CANCEL, reject or BYE as the state calls for)."""
        if reason is not None and self.end_reason is None:
            self.end_reason = reason
        leg = self.outside
        if leg is None:  # still setting up (outgoing)
            if not self.terminated:
                self._publish_state(SessionState.ENDING, None, "cancelled")
                self._fail(487, reason or "cancelled")
            return
        if leg.session.terminated:
            return
        if leg.session.role is Role.UAS and leg.session.state in _EARLY \
                and self._answer is not Answer.SENT:
            # Not answered: declined by the user, or unavailable when we hang up ourselves.
            leg.feed(leg.session.reject(503 if reason else 603, leg.now()))
            return
        if leg.session.role is Role.UAC and leg.session.state in _EARLY \
                and self.end_reason is None:
            self.end_reason = "cancelled"  # our CANCEL: the 487 that follows says why
        leg.feed(leg.session.end(leg.now()))

    # -- commands ------------------------------------------------------------------------------
    def _audio_up(self, cmd: str) -> AudioStream:
        """The audio stream, for a command to its worker (SessionStateError: not now)."""
        if self.terminated or self.audio is None or not self.audio.usable:
            raise SessionStateError(f"the call is {self.state.value} and has no media to "
                                    f"{cmd.replace('_', ' ')}")
        return self.audio

    async def play(self, path: str, loop: bool = False) -> None:
        file = playable_file(path)  # a bad path says so before a call that is not up
        await self._audio_up("play").play(file, loop)

    async def web_audio(self, peer: str) -> int:
        """Carry the call's audio as UDP datagrams with `peer` (127.0.0.1:PORT, the web
        page's relay): returns the worker's UDP port (protocol.py, web_audio)."""
        if self.audio_device != "web":
            raise SessionStateError('the call was not started or answered with audio_device '
                                    '"web"')
        reply = await self._audio_up("web_audio").command("web_audio", peer=peer)
        return int(reply["port"])

    async def stop_web_audio(self) -> None:
        if not self.terminated and self.audio is not None and self.audio.usable:
            await self.audio.command("stop_web_audio")

    async def record(self, path: str) -> None:
        file = recordable_file(path)
        await self._audio_up("record").record(file)

    async def send_dtmf(self, digits: str) -> None:
        await self._audio_up("dtmf").send_dtmf(dtmf_digits(digits))

    async def hold(self, held: bool) -> None:
        if self.state is not SessionState.ESTABLISHED:
            raise SessionStateError(f"the call is {self.state.value}; only an established "
                                    f"call can be put on hold or taken off it")
        await self.settled()
        await self._audio_up("hold" if held else "unhold").hold(held)

    def check_established(self, what: str) -> None:
        leg = self.outside
        if self.state is not SessionState.ESTABLISHED or leg is None \
                or leg.session.dialog is None:
            raise SessionStateError(f"session {self.id} is {self.state.value}; only an "
                                    f"established call can be {what}")

    def transfer(self, to: SipUri | None = None,
                 replaces: Session | None = None) -> dict[str, Any]:
        """Transfers the remote party: to `to` (blind), or to the remote party of our session
        `replaces` (attended: it is replaced by the new call). Progress comes as
        session.transfer events."""
        self.check_established("transferred")
        if self.transfers.busy:
            raise SessionStateError("a transfer of this call is already in progress")
        named = None
        if replaces is not None:
            replaces.check_established("the target of an attended transfer")
            attended = attended_target(replaces)
            if attended is None:
                raise SessionStateError(f"session {replaces.id}'s remote party has no sip: "
                                        f"URI to transfer to")
            to, named = attended
        assert to is not None
        try:
            return self.transfers.start(to, named, replaces.id if replaces else None)
        except InviteSessionError as exc:
            raise SessionStateError(f"session {self.id} cannot be transferred now: {exc}") \
                from None

    # -- the media worker ----------------------------------------------------------------------
    def on_worker_invite(self, incoming: IncomingRequest) -> None:
        """The worker's INVITE that `place` (or an offerless answer) asked for."""
        if self.audio is None:
            incoming.respond_nowait(482, "Loop Detected")  # we asked for none
            return
        if not self.audio.on_worker_invite(incoming):
            return
        if self.terminated:
            self.audio.end_media(487)
        if self._placing is not None:
            self._placing()  # our INVITE to the remote party, from this task (`place`)

    def on_worker_event(self, event: dict[str, Any]) -> None:
        if self.audio is not None:
            self.audio.on_worker_event(event)

    def media_lost(self, reason: str) -> None:
        """The worker carrying this session is gone: end the outside call with its reason."""
        log.warning("session %s: %s", self.id, reason)
        if self.audio is not None:
            self.audio.lost()
        if not self.terminated:
            self.end_failed = True
            self.end(reason)
        self._check_done()

    # -- outside leg events --------------------------------------------------------------------
    def _outside_event(self, leg: LegDriver, action: Any) -> None:
        session = leg.session
        if isinstance(action, StateChanged):
            if self.failover.moves_on(leg, self.outside, action):
                return  # an earlier attempt's, or the INVITE goes to the next target
            self._publish_state(action.state, action.code, action.reason)
            self._lines_follow(action.state)
            if self.audio is None:
                pass
            elif action.state is SessionState.RINGING and session.role is Role.UAC:
                self.audio.ringing()
            elif action.state in TERMINAL_STATES:
                self.audio.end_media(action.code)
            self._check_done()
        elif isinstance(action, RemoteSdp):
            audio = self.audio
            if audio is None:
                pass
            elif action.kind in ("early", "answer") and audio.awaits_remote_answer:
                # Our INVITE's answer (outgoing), or the answer to our offer in the ACK of
                # our 200 (an offerless incoming INVITE): the worker's INVITE waits for it.
                self._pass_remote_answer(audio, action.sdp, early=action.kind == "early")
            elif action.kind == "answer":
                audio.answer_in_ack(leg, action.sdp)  # of an offerless re-INVITE
        elif isinstance(action, OfferReceived):
            if self.changes.offer_from(leg, action.sdp):
                pass
            elif self.audio is not None:
                self.audio.offer_from(leg, action.sdp)
            else:
                self._offer_nobody_takes(leg, action.sdp)
        elif isinstance(action, ReinviteCompleted):
            if not self.changes.completed(leg, action) and self.audio is not None:
                self.audio.forwarded(leg, action)
        elif isinstance(action, DtmfReceived):
            self.context.publish("session.dtmf", {"id": self.id, "digit": action.digit,
                                                  "method": "sip_info",
                                                  "duration": action.duration})
        elif isinstance(action, InDialogRequest):
            if not self.transfers.on_request(action):
                answer_other(action, ALLOW)
        elif isinstance(action, InDialogResponse):
            self.transfers.on_response(action)

    def _offer_nobody_takes(self, leg: LegDriver, body: bytes | None) -> None:
        """A re-INVITE of a session without audio that no stream took (StreamChanges took
        those that add, remove or update streams): a refresh, or one without offer, is
        answered with what we have; another while a proposal waits gets 491."""
        session, now = leg.session, leg.now()
        if body is None or (session.remote_sdp and not sdp.changes(session.remote_sdp, body)):
            leg.feed(session.answer_reinvite(session.local_sdp or b"", now))
            return
        try:
            sdp.parse(body)
        except sdp.SdpMismatch as exc:
            leg.feed(session.reject_reinvite(
                488, now, headers=[("Warning", warning_value(str(exc)))]))
            return
        leg.feed(session.reject_reinvite(491, now))

    def _pass_remote_answer(self, audio: AudioStream, body: bytes, *, early: bool) -> None:
        """The remote's answer (in a 183 or the 2xx) to our INVITE: to the worker."""
        try:
            audio.remote_answer(body, early=early)
        except sdp.SdpMismatch as exc:
            if not early:
                self.end_reason = f"unusable answer: {exc}"
                self.end()

    def _worker_answered(self, worker_answer: bytes) -> None:
        """The worker answered the remote's offer (incoming call): our 200 to the remote."""
        outside, audio = self.outside, self.audio
        assert audio is not None
        if outside is None or outside.session.terminated:
            audio.end_media(None)
            return
        try:
            answer = audio.outside_answer(self._remote_offer, worker_answer, self._local_lines)
        except sdp.SdpMismatch as exc:
            self.end_reason = str(exc)
            outside.feed(outside.session.reject(488, outside.now()))
            return
        self._accept(outside, answer)

    def _media_over(self, code: int | None, reason: str | None) -> None:
        """The worker's call ended: so does the outside call."""
        outside = self.outside
        if outside is None:
            if not self.terminated and self.direction == "outgoing":
                detail = " ".join(str(p) for p in (code, reason) if p is not None)
                self._fail(code or 500, f"the media engine ended the call "
                                        f"({detail or 'no reason'})")
            return
        if outside.session.terminated:
            return
        if self.end_reason is None:
            detail = " ".join(str(p) for p in (code, reason) if p is not None)
            self.end_reason = f"the media engine ended the call ({detail or 'no reason'})"
        if outside.session.role is Role.UAS and self._answer is not Answer.SENT:
            outside.feed(outside.session.reject(488 if code == 488 else 500, outside.now()))
        else:
            outside.feed(outside.session.end(outside.now()))

    # -- routing toward the remote party -------------------------------------------------------
    async def _outside_route(self, request: Request) -> Hop:
        """RFC 3261 §8.1.2 for in-dialog requests: the first Route, else the remote target,
        located (RFC 3263); the dialog's transport when the URI names none."""
        routes = request.routes
        uri = routes[0].uri if routes else request.uri
        if not isinstance(uri, SipUri):
            raise LocationError(str(uri), LocationError.BAD_URI, "not a sip: or sips: URI")
        targets = await self.context.locator.locate(with_transport(uri, self._transport))
        target: Target = targets[0]
        return target

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

