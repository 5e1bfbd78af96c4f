"""The internal leg of a back-to-back call (sipd.sessions.b2bua): the media worker's side.

For an outgoing call (and an incoming INVITE without offer) the worker is asked to INVITE our
internal URI, tagged with X-Sipd-Session, and `on_worker_invite` takes that INVITE as the
call's media leg; its events (call state, media, DTMF, recordings) come through the
supervisor to `on_worker_event`; `command` sends it play, record, dtmf, hold... for this
call; `media_lost` ends the call when the worker dies.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from sipd.sip.message import Request
from sipd.sip.trio.handles import IncomingRequest
from sipd.sip.trio.transport import Source, TargetLike

from .driver import LegDriver
from .errors import SessionStateError
from .invite.session import InviteSession

log = logging.getLogger(__name__)

WORKER_INVITE_TIMEOUT = 10.0  # how long the worker may take to send the INVITE we asked for


class WorkerLeg:
    """The part of a Call that deals with its media worker (it uses the Call's `end`,
    `start_soon`, `_spawn`, `_check_done`, `_end_media`, `_media_event` and `_watch_cancel`)."""

    id: str
    manager: Any
    state: str
    media: LegDriver | None
    worker: Any
    worker_call: int | None
    worker_source: Source | None
    worker_listener: Source | None
    media_info: dict[str, Any]
    recording: str | None
    end_failed: bool
    _expect_worker_invite: bool
    _worker_invite: trio.Event
    _worker_failure: str | None
    _cancelled: bool
    _nursery: trio.Nursery | None
    start_soon: Any
    _placing: Any

    def _internal_transport(self) -> str:
        return self.manager.internal_transport

    async def _worker_calls_us(self) -> None:
        """Has the worker INVITE us with its offer (`on_worker_invite` takes it); bounded."""
        self._expect_worker_invite = True
        reply = await self.manager.media.request(
            self.id, "call", uri=str(self.manager.internal_uri(self._internal_transport())))
        self.worker_call = reply.get("call")
        with trio.move_on_after(WORKER_INVITE_TIMEOUT):
            await self._worker_invite.wait()

    def on_worker_invite(self, incoming: IncomingRequest) -> None:
        """The worker's INVITE that `place` asked for (the internal leg, worker as UAC)."""
        if self.media is not None or not self._expect_worker_invite:
            incoming.respond_nowait(482, "Loop Detected")  # one internal leg per session
            return
        incoming.detach()
        self.worker_source = incoming.source
        session = InviteSession(timers=self.manager.timers)
        leg = self.media = LegDriver("media", session, self.manager.stack,
                                     route=self._worker_route, on_event=self._media_event)
        self._spawn(leg)
        leg.uses(getattr(incoming.source, "connection", None))
        leg.feed(session.incoming(incoming.request, leg.now(),
                                  contact=self.manager.internal_contact(incoming.transport),
                                  ref=incoming, reliable=incoming.transport != "udp"))
        self.manager.register_dialog(session.call_id or "", session.local_tag or "", leg)
        self.start_soon(self._watch_cancel, leg, incoming)
        if self.terminated or self._cancelled:
            self._end_media(487)
        self._worker_invite.set()
        if self._placing is not None:
            self._placing()  # our INVITE to the remote party, from this task (b2bua.place)

    def _listener(self, transport: str) -> Source:
        address = (self.worker.ready.get("sip") or {}).get(transport, "")
        host, _, port = address.rpartition(":")
        return Source(transport, host or "127.0.0.1", int(port or 0))

    async def _worker_route(self, request: Request) -> TargetLike:
        source = self.worker_source
        if source is not None and (source.connection is None or not source.connection.closed):
            return source
        if self.worker_listener is None:
            self.worker_listener = self._listener(self._internal_transport())
        return self.worker_listener

    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """A control command about this call to its worker (play, record, dtmf, hold...)."""
        if self.terminated or self.worker_call is None or self.media is None \
                or self.media.closed:
            raise SessionStateError(f"the call is {self.state} and has no media to "
                                    f"{cmd.replace('_', ' ')}")
        return await self.manager.media.request(self.id, cmd, call=self.worker_call, **fields)

    async def rtp_counters(self) -> dict[str, int] | None:
        """RTP packets and bytes each way so far (the worker's stream statistics): proof that
        media flows, silence included. None without a live stream or a worker to ask."""
        if self.worker_call is None or self.media is None or self.media.closed:
            return None
        try:
            status = await self.manager.media.request(self.id, "status")
        except Exception as exc:  # noqa: BLE001 - a view, not a command: say nothing
            log.debug("session %s: no worker status: %s", self.id, exc)
            return None
        for call in status.get("calls") or ():
            if call.get("call") == self.worker_call:
                return call.get("rtp")
        return None

    def on_worker_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        call = event.get("call")
        if self.worker_call is None and isinstance(call, int) and name in (
                "call.incoming", "call.state"):
            self.worker_call = call
        if name == "call.state" and event.get("state") == "disconnected" \
                and self._expect_worker_invite and not self._worker_invite.is_set():
            # The worker's call failed before its INVITE reached us (TURN refused it...).
            self._worker_failure = f"media unavailable: {event.get('reason') or 'no reason'}"
            self._worker_invite.set()
        if name == "call.rtp_timeout":  # the remote party's media stopped: it is gone
            if self.state == "established":
                self.end_failed = True
                self.end("no media from the remote party")
        elif name == "call.media":
            self.media_info = dict(event)
        elif name == "call.dtmf":
            self.manager.publish("session.dtmf", {"id": self.id, "digit": event.get("digit"),
                                                  "method": event.get("method")})
        elif name == "record.done":
            if self.recording == event.get("file"):
                self.recording = None
            self.manager.publish("session.recording", {"id": self.id, "path": event.get("file"),
                                                       "complete": event.get("complete")})

    def media_lost(self, reason: str) -> None:
        """The worker carrying this call is gone: end the outside call with its reason."""
        log.warning("session %s: %s", self.id, reason)
        if self.media is not None:
            self.media.close()
        self.worker_call = None
        if self.terminated:
            self._check_done()
            return
        self.end_failed = True
        self.end(reason)
        self._check_done()
