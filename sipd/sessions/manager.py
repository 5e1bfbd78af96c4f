"""The daemon's sessions: calls out and in, where their SIP requests go, and their media.

    manager = SessionManager(bus, stack, locator, accounts, nursery, media_address=...)
    async with open_media_supervisor(media_config(...), on_event=manager.on_media_event,
                                     on_worker_state=manager.on_worker_state) as media:
        manager.media = media
        ...  # useragent routes requests to on_request / on_invite; RPC calls start, answer...

Each session is a `Session` (sipd.sessions.session): an outside leg to the remote party and
the streams it carries (the audio stream's worker leg to the media worker). Sessions get a
narrow `SessionContext` (sipd.sessions.context), not the manager. Requests in a dialog are found by
(Call-ID, our tag); a worker's INVITE by its X-Sipd-Session header, on a Request-URI whose
user is this daemon's internal token (nobody outside knows it).
"""

from __future__ import annotations

import builtins
import ipaddress
import logging
import secrets
from typing import Any, Callable, Iterable

import trio

from sipd.accounts.model import AccountConfig
from sipd.dialogs import DialogTable
from sipd.media.codecs import DEFAULT_CODECS
from sipd.media.process import port_slices
from sipd.media.protocol import SESSION_HEADER
from sipd.media.supervisor import MediaSettings, MediaUnavailable, SupervisorConfig, TurnServer
from sipd.settings import addresses
from sipd.sip.trio.handles import IncomingRequest
from sipd.sip.uri import Uri, target_uri

from .admission import IncomingAdmission
from .context import Addresses, MediaWorkers, SessionContext
from .driver import LegDriver
from .errors import InvalidSessionParam, SessionNotFound, SessionStateError, StreamUnavailable
from .invite.content import BodyError, sdp_of
from .policy import SessionPolicy
from .refer import ReferError, Replaces, parse_replaces
from .sdp import SDPError, parse_sdp
from .session import Session
from .streams import announced, answers_itself, default_registry, offered_kinds
from .transfer import find_replaced

log = logging.getLogger(__name__)

__all__ = ["SessionManager", "SessionNotFound", "SessionStateError", "InvalidSessionParam",
           "media_config"]

STOP_WAIT = 3.0  # seconds the calls get to hang up when the daemon stops

def media_config(settings: Any, media_address: str) -> SupervisorConfig:
    """The media workers' configuration from the rtp.*, nat.* and media.* settings
    (ValueError saying what to change when they do not fit together)."""
    get = settings.get
    port_range = addresses.parse_port_range(get("rtp.port_range"))
    port_slices(port_range.low, port_range.high, get("media.max_workers"))  # room for each
    turn_server = get("nat.turn.server")
    turn = TurnServer(turn_server, get("nat.turn.username"), get("nat.turn.password")) \
        if turn_server else None
    media = MediaSettings(
        media_address=media_address, rtp_port_range=(port_range.low, port_range.high),
        audio_codecs=tuple(get("rtp.audio_codecs") or DEFAULT_CODECS), srtp=get("rtp.srtp"),
        ice=get("nat.ice"), stun_servers=tuple(get("nat.stun_servers")), turn=turn,
        rtp_timeout=get("rtp.inactivity_timeout"))
    return SupervisorConfig(media=media, max_workers=get("media.max_workers"),
                            heartbeat_interval=get("media.heartbeat_interval"),
                            unresponsive_grace=get("media.unresponsive_grace"),
                            zygote=get("media.zygote"))


class SessionManager:
    def __init__(self, bus: Any, stack: Any, locator: Any, accounts: Any,
                 nursery: trio.Nursery, *, media_address: str, dialogs: DialogTable,
                 policy: SessionPolicy | None = None) -> None:
        self.bus = bus
        self.stack = stack
        self.locator = locator
        self.accounts = accounts
        self.workers = MediaWorkers()
        self.addresses = Addresses(stack, media_address)
        self._nursery = nursery
        self._calls: dict[str, Session] = {}
        self.dialogs = dialogs  # the user agent's: our legs register their dialogs in it
        # Who follows a session's states besides the clients (a transfer, a replacing call).
        self._watchers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.context = SessionContext(
            stack=stack, timers=stack.config.timers, locator=locator,
            linger=stack.config.timers.transaction_timeout, publish=self.publish,
            spawn=self.spawn, addresses=self.addresses, media=self.workers,
            streams=default_registry(), register_dialog=self.register_dialog,
            forget=self.forget, start_session=self.start,
            policy=policy if policy is not None else SessionPolicy())
        self.admission = IncomingAdmission(self.context.policy)

    # -- the media supervisor (set by the user agent once it runs) -------------------------------
    @property
    def media(self) -> Any:
        return self.workers.supervisor

    @media.setter
    def media(self, supervisor: Any) -> None:
        self.workers.supervisor = supervisor

    @property
    def media_problem(self) -> str:
        return self.workers.problem

    @media_problem.setter
    def media_problem(self, problem: str) -> None:
        self.workers.problem = problem

    # -- views ----------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        return [call.view() for call in self._calls.values()]

    def get(self, session_id: str) -> Session:
        call = self._calls.get(session_id)
        if call is None:
            raise SessionNotFound(session_id)
        return call

    def media_state(self) -> dict[str, Any]:
        """The running media workers and the sessions each carries (system.state)."""
        workers = []
        for process in (self.media.workers if self.media is not None else []):
            workers.append({"id": process.id, "pid": process.pid, "sip": process.uri,
                            "sessions": [call.id for call in self._calls.values()
                                         if self.media.worker_of(call.id) is process]})
        return {"workers": workers}

    def calls(self) -> builtins.list[Session]:
        return list(self._calls.values())

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self.bus.publish(name, data)
        if name == "session.state":
            watcher = self._watchers.get(data.get("id", ""))
            if watcher is not None:
                if data.get("state") in ("ended", "failed"):
                    del self._watchers[data["id"]]
                try:
                    watcher(data)
                except Exception:  # noqa: BLE001 - a watcher's bug must not stop the call
                    log.exception("session %s: state watcher failed", data.get("id"))

    def watch(self, session_id: str, watcher: Callable[[dict[str, Any]], None]) -> None:
        """Calls `watcher(data)` with each later session.state of the session, up to its end."""
        self._watchers[session_id] = watcher

    def spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        """A task of the sessions (it ends when the daemon stops)."""
        self._nursery.start_soon(fn, *args)

    def is_internal_uri(self, uri: Uri) -> bool:
        return self.addresses.is_internal_uri(uri)

    # -- commands ------------------------------------------------------------------------------
    async def play(self, session_id: str, path: str, loop: bool) -> None:
        await self.get(session_id).play(path, loop)

    async def record(self, session_id: str, path: str) -> None:
        await self.get(session_id).record(path)

    async def send_dtmf(self, session_id: str, digits: str) -> None:
        await self.get(session_id).send_dtmf(digits)

    async def hold(self, session_id: str, held: bool) -> None:
        await self.get(session_id).hold(held)

    async def transfer(self, session_id: str, to: str | None = None,
                       replaces: str | None = None) -> dict[str, Any]:
        """sessions.transfer: to `to` (blind) or to the remote party of our session
        `replaces` (attended)."""
        call = self.get(session_id)
        if (to is None) == (replaces is None):
            raise InvalidSessionParam("to", "give either to (blind transfer) or replaces "
                                            "(attended transfer), not both or neither")
        call.check_established("transferred")
        if call.transfers.busy:
            raise SessionStateError("a transfer of this call is already in progress")
        if replaces is not None:
            if replaces == session_id:
                raise InvalidSessionParam("replaces", "replaces must name another session "
                                                      "than the one transferred")
            return call.transfer(replaces=self.get(replaces))
        try:
            uri = target_uri(to or "")
        except ValueError as exc:
            raise InvalidSessionParam("to", str(exc)) from None
        return call.transfer(uri)

    # -- calls -----------------------------------------------------------------------------------
    def _new_id(self) -> str:
        while True:
            session_id = secrets.token_hex(6)
            if session_id not in self._calls:
                return session_id

    async def _open(self, account: AccountConfig, direction: str, remote: str,
                    extra: dict[str, Any] | None = None,
                    watch: Callable[[dict[str, Any]], None] | None = None,
                    streams: Iterable[str] = ("audio",)) -> Session:
        call = Session(self.context, self._new_id(), account, direction, remote, list(streams))
        self._calls[call.id] = call
        if watch is not None:
            self.watch(call.id, watch)
        # Not `await nursery.start(call.run)`: that waits for the task to run first, a trip
        # through the scheduler before the call's first message (call.start_soon queues).
        self._nursery.start_soon(call.run)
        self.publish("session.new", {"id": call.id, "account": account.id,
                                     "direction": direction, "remote": remote,
                                     "streams": list(call.streams), **(extra or {})})
        self.publish("session.state", {"id": call.id, "state": "calling"})
        return call

    async def start(self, account: AccountConfig, to: str, streams: builtins.list[str], *,
                    extra_headers: Iterable[tuple[str, str]] = (),
                    extra: dict[str, Any] | None = None,
                    watch: Callable[[dict[str, Any]], None] | None = None,
                    options: dict[str, Any] | None = None) -> dict[str, Any]:
        """An outgoing call; its progress comes as session.state events. A transfer adds
        headers to its INVITE (Referred-By, Replaces), fields to its session.new and a
        watcher of its states; `options` (by kind) what the user asked of its streams."""
        wanted: builtins.list[str] = [*dict.fromkeys(streams)]
        unknown = [name for name in wanted if name not in self.context.streams]
        if unknown or not wanted:
            known = ", ".join(self.context.streams.names())
            raise InvalidSessionParam("streams", f"no stream kind {', '.join(unknown)} (known: "
                                                 f"{known})" if unknown else
                                                 f"name at least one stream ({known})")
        if self.media is None and any(self.context.streams.get(name).uses_media_worker
                                      for name in wanted):
            raise MediaUnavailable(f"the media engine is not running: {self.media_problem}")
        for name in wanted:
            problem = self.context.streams.get(name).unavailable(self.context.resources)
            if problem is not None:
                raise StreamUnavailable(f"no {name} stream: {problem}")
        try:
            uri = target_uri(to)
        except ValueError as exc:
            raise InvalidSessionParam("to", str(exc)) from None
        call = await self._open(account, "outgoing", str(uri), extra, watch, wanted)
        call.stream_options.update(options or {})
        call.extra_headers = list(extra_headers)
        call.start_soon(call.place, uri)
        return call.view()

    async def on_invite(self, incoming: IncomingRequest, account: AccountConfig) -> None:
        """A new INVITE for one of our accounts; one with Replaces (RFC 3891) takes over
        the call it names: it is answered at once and that call ends once it is up."""
        from_ = incoming.request.from_
        remote = str(from_.uri) if from_ is not None else ""
        replaced = None
        replaces_values = incoming.request.headers.values("Replaces")
        if replaces_values:
            try:
                if len(replaces_values) != 1:
                    raise ReferError(400, "more than one Replaces header")
                replaced = self._replaced(parse_replaces(replaces_values[0]))
            except ReferError as exc:
                await incoming.respond(exc.status, exc.reason)
                return
        refusal = None if replaced is not None else self.admission.refusal(
            (call.account.id for call in self._calls.values()
             if call.direction == "incoming" and not call.terminated), account.id,
            trio.current_time())
        if refusal is not None:  # past a cap on incoming calls (sipd.sessions.admission)
            await incoming.respond(refusal.status, refusal.reason, headers=refusal.headers)
            return
        offer = self._offer(incoming)
        extra = announced(offer, self.context.streams) if offer is not None else {}
        if replaced is not None:
            extra["replaces"] = replaced.id
        call = await self._open(account, "incoming", remote, extra,
                                streams=self._offered(incoming))
        if replaced is not None:
            self.watch(call.id, lambda data: self._replacing(call, replaced, data))
        # An account with auto_answer answers at once, without a 180 first, and from this
        # task: no ring to build and send, no hop through the scheduler before the worker's
        # INVITE leaves (call setup latency, docs/performance.md). A call that replaces
        # another still rings first (its transferee may show it).
        call.receive(incoming, ring=not account.auto_answer or replaced is not None)
        if account.auto_answer and replaced is None:
            await self._auto_answer(call)
        elif replaced is not None:
            call.start_soon(self._auto_answer, call)
        elif offer is not None and not call.terminated and await answers_itself(
                offer, self.context.streams, call.stream_context()):
            call.start_soon(self._auto_answer, call)  # a pull of a shared file...

    def _offer(self, incoming: IncomingRequest) -> Any:
        """The INVITE's offer, parsed (None: none, or unreadable: refused when received)."""
        try:
            body = sdp_of(incoming.request)
            return parse_sdp(body) if body else None
        except (BodyError, SDPError):
            return None

    def _offered(self, incoming: IncomingRequest) -> builtins.list[str]:
        """The kinds of the streams an INVITE offers (an offerless one gets audio)."""
        try:
            body = sdp_of(incoming.request)
            return offered_kinds(parse_sdp(body), self.context.streams) if body else ["audio"]
        except (BodyError, SDPError):
            return []  # refused when it is received

    def _replaced(self, replaces: Replaces) -> Session:
        call, status, reason = find_replaced(self._calls.values(), replaces)
        if call is None:
            raise ReferError(status, reason)
        return call

    def _replacing(self, call: Session, replaced: Session, data: dict[str, Any]) -> None:
        """The call that replaces another is up: the other ends (BYE, or CANCEL)."""
        if data.get("state") == "established" and not replaced.terminated:
            replaced.end(f"replaced by session {call.id}")

    async def _auto_answer(self, call: Session) -> None:
        """The account answers its calls itself: as sessions.answer would, at once (a call
        refused meanwhile, 488 say, is left as it is)."""
        leg = call.outside
        if call.terminated or leg is None or leg.session.terminated:
            return
        try:
            await call.answer()
        except Exception as exc:  # the call ends (503...) and says why in session.state
            log.warning("session %s: auto answer failed: %s", call.id, exc)

    def register_dialog(self, call_id: str, local_tag: str, leg: LegDriver) -> None:
        self.dialogs.register(call_id, local_tag, leg)

    def forget(self, call: Session) -> None:
        if self._calls.get(call.id) is call:
            del self._calls[call.id]
        for leg in (call.outside, call.media):
            if leg is not None:
                self.dialogs.release_owner(leg)
        self.workers.release(call.id)

    async def stop_all(self, wait: float = STOP_WAIT) -> None:
        """Hang up every call (the daemon stops), waiting a little for the BYEs to go."""
        calls = [call for call in self._calls.values() if not call.terminated]
        for call in calls:
            call.end("sipd is stopping")
        with trio.move_on_after(wait):
            for call in calls:
                await call.wait_terminated()

    # -- SIP in ----------------------------------------------------------------------------------
    async def on_request(self, incoming: IncomingRequest) -> bool:
        """Requests outside any dialog that are ours (the media workers' INVITEs) or that only
        make sense in a call's dialog; False for the others. Requests in a dialog never come
        here: the user agent routes them through its dialog table."""
        request = incoming.request
        method = request.method
        if method == "INVITE" and self.is_internal_uri(request.uri):
            await self._worker_invite(incoming)
            return True
        if method in ("BYE", "INFO", "PRACK", "UPDATE", "NOTIFY"):
            await incoming.respond(481)  # NOTIFY: no subscription of ours lacks a dialog tag
            return True
        if method == "REFER":  # a transfer is asked for within the call it transfers
            await incoming.respond(403, "Forbidden: REFER is only taken within a call")
            return True
        return False

    async def _worker_invite(self, incoming: IncomingRequest) -> None:
        session_id = incoming.request.headers.get(SESSION_HEADER) or ""
        call = self._calls.get(session_id)
        source = incoming.source.address
        local = _is_loopback(source) or source == self.stack.config.listen_address
        if not local or call is None:
            await incoming.respond(404)
            return
        call.on_worker_invite(incoming)

    # -- media -----------------------------------------------------------------------------------
    def on_media_event(self, worker_id: str, event: dict[str, Any]) -> None:
        session_id = event.get("session")
        call = self._calls.get(session_id) if isinstance(session_id, str) else None
        if call is not None:
            call.on_worker_event(event)

    def on_worker_state(self, data: dict[str, Any]) -> None:
        self.publish("media.worker", data)
        if data.get("state") not in ("crashed", "stopped"):
            return
        reason = data.get("reason") or f"media engine {data.get('state')}"
        if not reason.startswith("media engine"):
            reason = f"media engine {data.get('state')}: {reason}"
        for session_id in data.get("sessions") or ():
            call = self._calls.get(session_id)
            if call is not None:
                call.media_lost(reason)
        for call in list(self._calls.values()):
            # A recording the worker was still closing (its call just ended): it never will.
            worker = call.audio.worker_id if call.audio is not None else None
            if call.recording is not None and worker == data.get("worker"):
                self.publish("session.recording", {"id": call.id, "path": call.recording,
                                                   "complete": False, "reason": reason})
                call.recording = None


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
