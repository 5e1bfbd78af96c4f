"""The audio stream's media worker leg: the internal INVITE dialog between the daemon and
the pjsua2 worker that carries a session's audio, and the worker's control commands.

For an outgoing call (and an incoming INVITE without offer) the worker is asked to INVITE our
internal URI, tagged with X-Sipd-Session (`calls_us`), and `on_invite` takes that INVITE as
the session's media leg; for an incoming call with an offer we INVITE the worker with the
audio part of the offer (`invite`). The worker's events (call state, media, DTMF,
recordings) come through the supervisor to `on_worker_event`; `command` sends it play,
record, dtmf, hold... for this call; `lost` closes the leg when the worker dies.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

import trio

from sipd.media.protocol import SESSION_HEADER
from sipd.sip.builder import build_request
from sipd.sip.header_values import Address
from sipd.sip.message import Request
from sipd.sip.trio.handles import IncomingRequest
from sipd.sip.trio.transport import Source
from sipd.sip.uri import SipUri

from ...driver import Hop, LegDriver, OnEvent
from ...invite.session import InviteSession

if TYPE_CHECKING:  # pragma: no cover
    from ...context import SessionContext

log = logging.getLogger(__name__)

WORKER_INVITE_TIMEOUT = 10.0  # how long the worker may take to send the INVITE we asked for
SDP_TYPE = "application/sdp"


class WorkerLeg:
    """The worker side of one session. `on_event(leg, action)` hears the internal leg's
    events; `spawn(fn, *args)` starts a task of the session; `on_fed()` is told after each
    input of the leg."""

    def __init__(self, session_id: str, context: SessionContext, *, on_event: OnEvent,
                 spawn: Callable[..., None], on_fed: Callable[[], None], allow: str) -> None:
        self.id = session_id
        self.context = context
        self._on_event = on_event
        self._spawn = spawn
        self._on_fed = on_fed
        self._allow = allow
        self.leg: LegDriver | None = None
        self.worker: Any = None              # sipd.media.process.WorkerProcess
        self.call: int | None = None         # the worker's handle of its call
        self.source: Source | None = None    # where the worker's INVITE came from
        self.listener: Source | None = None  # the worker's SIP listener
        self.info: dict[str, Any] = {}       # its latest call.media event
        self.recording: str | None = None
        self.offer: bytes | None = None      # its offer, in the INVITE it sent us
        self.failure: str | None = None      # why its call ended before its INVITE came
        self._expecting = False              # we asked it to call us
        self._invite_came = trio.Event()

    @property
    def usable(self) -> bool:
        """Whether the leg is up for commands (a worker call, a leg not closed)."""
        return self.call is not None and self.leg is not None and not self.leg.closed

    @property
    def over(self) -> bool:
        leg = self.leg
        return leg is None or leg.closed or leg.session.terminated

    def _transport(self) -> str:
        return self.context.addresses.internal_transport

    async def allocate(self) -> None:
        self.worker = await self.context.media.allocate(self.id)

    def release(self) -> None:
        self.context.media.release(self.id)

    # -- the worker calls us ----------------------------------------------------------------------
    async def calls_us(self) -> None:
        """Has the worker INVITE us with its offer (`on_invite` takes it); bounded."""
        self._expecting = True
        reply = await self.context.media.request(
            self.id, "call", uri=str(self.context.addresses.internal_uri(self._transport())))
        self.call = reply.get("call")
        with trio.move_on_after(WORKER_INVITE_TIMEOUT):
            await self._invite_came.wait()

    def on_invite(self, incoming: IncomingRequest) -> bool:
        """The worker's INVITE that `calls_us` asked for; False when it is not expected
        (refused 482: one internal leg per session)."""
        if self.leg is not None or not self._expecting:
            incoming.respond_nowait(482, "Loop Detected")
            return False
        incoming.detach()
        self.source = incoming.source
        session = InviteSession(timers=self.context.timers)
        leg = self.leg = LegDriver("media", session, self.context.stack, route=self._route,
                                   on_event=self._on_event, on_fed=self._on_fed)
        self._spawn(leg.run)
        leg.uses(getattr(incoming.source, "connection", None))
        leg.feed(session.incoming(incoming.request, leg.now(),
                                  contact=self.context.addresses.internal_contact(
                                      incoming.transport),
                                  ref=incoming, reliable=incoming.transport != "udp"))
        self.context.register_dialog(session.call_id or "", session.local_tag or "", leg)
        self._spawn(_watch_cancel, leg, incoming)
        self._invite_came.set()
        return True

    # -- we call the worker -----------------------------------------------------------------------
    def invite(self, body: bytes) -> None:
        """Our INVITE to the worker with the audio part of the remote's offer."""
        transport = self._transport()
        addresses = self.context.addresses
        self.listener = self._listener(transport)
        worker_uri = SipUri("127.0.0.1", user="media", port=self.listener.port)
        if transport != "udp":
            worker_uri.params.set("transport", transport)
        invite = build_request(
            "INVITE", worker_uri, from_=Address(addresses.internal_uri(transport)),
            to=Address(worker_uri), contact=addresses.internal_contact(transport),
            headers=[(SESSION_HEADER, self.id), ("Allow", self._allow)],
            body=body, content_type=SDP_TYPE)
        session = InviteSession(timers=self.context.timers)
        leg = self.leg = LegDriver("media", session, self.context.stack, route=self._route,
                                   on_event=self._on_event, initial_target=self.listener,
                                   on_fed=self._on_fed)
        self._spawn(leg.run)
        assert invite.call_id is not None and invite.from_ is not None
        self.context.register_dialog(invite.call_id, invite.from_.tag or "", leg)
        leg.feed(session.start(invite, leg.now(), reliable=transport != "udp"))

    def _listener(self, transport: str) -> Source:
        address = (self.worker.ready.get("sip") or {}).get(transport, "")
        host, _, port = address.rpartition(":")
        return Source(transport, host or "127.0.0.1", int(port or 0))

    async def _route(self, request: Request) -> Hop:
        source = self.source
        if source is not None and (source.connection is None or not source.connection.closed):
            return source
        if self.listener is None:
            self.listener = self._listener(self._transport())
        return self.listener

    # -- control ----------------------------------------------------------------------------------
    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """A control command about this call to its worker (play, record, dtmf, hold...);
        the session checked the leg is `usable`."""
        reply: dict[str, Any] = await self.context.media.request(self.id, cmd, call=self.call,
                                                                 **fields)
        return reply

    async def rtp_counters(self) -> dict[str, Any] | None:
        """RTP packets and bytes each way so far (the worker's stream statistics): proof that
        media flows, silence included. None without a live stream or a worker to ask. From
        a worker that does not answer, the last counters it gave, with "stale": true."""
        if not self.usable:
            return None
        try:
            status = await self.context.media.request(self.id, "status")
        except Exception as exc:  # noqa: BLE001 - a view, not a command: say nothing
            log.debug("session %s: no worker status: %s", self.id, exc)
            return None
        for call in status.get("calls") or ():
            if call.get("call") == self.call:
                counters: dict[str, Any] | None = call.get("rtp")
                if counters is not None and status.get("stale"):
                    counters = {**counters, "stale": True}
                return counters
        return None

    def on_worker_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        call = event.get("call")
        if self.call is None and isinstance(call, int) and name in (
                "call.incoming", "call.state"):
            self.call = call
        if name == "call.state" and event.get("state") == "disconnected" \
                and self._expecting and not self._invite_came.is_set():
            # The worker's call failed before its INVITE reached us (TURN refused it...).
            self.failure = f"media unavailable: {event.get('reason') or 'no reason'}"
            self._invite_came.set()
        publish = self.context.publish
        if name == "call.media":
            self.info = dict(event)
        elif name == "call.dtmf":
            publish("session.dtmf", {"id": self.id, "digit": event.get("digit"),
                                     "method": event.get("method")})
        elif name == "record.done":
            if self.recording == event.get("file"):
                self.recording = None
            publish("session.recording", {"id": self.id, "path": event.get("file"),
                                          "complete": event.get("complete")})

    def lost(self) -> None:
        """The worker carrying this call is gone."""
        if self.leg is not None:
            self.leg.close()
        self.call = None

    def close(self) -> None:
        if self.leg is not None:
            self.leg.close()


async def _watch_cancel(leg: LegDriver, incoming: IncomingRequest) -> None:
    """A CANCEL of an INVITE we have not answered (the stack answered 200 and 487)."""
    await incoming.cancelled.wait()
    if not leg.closed:
        leg.feed(leg.session.cancelled(leg.now(), already_answered=True))
