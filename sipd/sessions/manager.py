"""The daemon's sessions: calls out and in, where their SIP requests go, and their media.

    manager = SessionManager(bus, stack, locator, accounts, nursery, media_address=...)
    async with open_media_supervisor(media_config(...), on_event=manager.on_media_event,
                                     on_worker_state=manager.on_worker_state) as media:
        manager.media = media
        ...  # useragent routes requests to on_request / on_invite; RPC calls start, answer...

Each session is a `Call` (sipd.sessions.b2bua): an outside leg to the remote party and an
internal leg to the media worker that carries its audio. Requests in a dialog are found by
(Call-ID, our tag); a worker's INVITE by its X-Sipd-Session header, on a Request-URI whose
user is this daemon's internal token (nobody outside knows it).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from typing import Any, Callable, Iterable

import trio

from sipd.accounts.model import AccountConfig
from sipd.media.codecs import DEFAULT_CODECS
from sipd.media.process import port_slices
from sipd.media.protocol import SESSION_HEADER
from sipd.media.supervisor import MediaSettings, MediaUnavailable, SupervisorConfig, TurnServer
from sipd.sip.uri import target_uri
from sipd.settings import addresses
from sipd.sip.header_values import Address
from sipd.sip.trio.handles import IncomingRequest
from sipd.sip.trio.transport import TargetLike
from sipd.sip.uri import SipUri, Uri

from .b2bua import Call
from .b2bua_transfer import find_replaced
from .streams import default_registry
from .commands import SessionCommands
from .driver import LegDriver
from .errors import InvalidSessionParam, SessionNotFound, SessionStateError
from .refer import ReferError, Replaces, parse_replaces

log = logging.getLogger(__name__)

__all__ = ["SessionManager", "SessionNotFound", "SessionStateError", "InvalidSessionParam",
           "media_config"]

STOP_WAIT = 3.0  # seconds the calls get to hang up when the daemon stops
_DIALOG_METHODS = frozenset({"BYE", "INFO", "INVITE", "UPDATE", "PRACK", "REFER", "NOTIFY"})


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
        ice=get("nat.ice"), stun_servers=tuple(get("nat.stun_servers")), turn=turn)
    return SupervisorConfig(media=media, max_workers=get("media.max_workers"))


class SessionManager(SessionCommands):
    def __init__(self, bus: Any, stack: Any, locator: Any, accounts: Any,
                 nursery: trio.Nursery, *, media_address: str) -> None:
        self.bus = bus
        self.stack = stack
        self.locator = locator
        self.accounts = accounts
        self.media: Any = None  # sipd.media.supervisor.MediaSupervisor, set once it runs
        self.media_problem = "it has not started yet"  # why there is no media engine
        self.media_address = media_address
        self.timers = stack.config.timers
        self.linger = self.timers.transaction_timeout
        self._nursery = nursery
        self._calls: dict[str, Call] = {}
        self.streams = default_registry()  # the stream kinds sessions carry
        self._dialogs: dict[tuple[str, str], LegDriver] = {}
        self._token = "sipd-" + secrets.token_hex(8)  # the user part of our internal URI
        # Who follows a session's states besides the clients (a transfer, a replacing call).
        self._watchers: dict[str, Callable[[dict[str, Any]], None]] = {}

    # -- views ----------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        return [call.view() for call in self._calls.values()]

    def get(self, session_id: str) -> Call:
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

    def calls(self) -> list[Call]:
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

    # -- addresses -------------------------------------------------------------------------------
    @property
    def internal_transport(self) -> str:
        """How we talk SIP with the workers: TCP when we listen on it (DESIGN.md §2)."""
        return "tcp" if "tcp" in self.stack.ports else "udp"

    def internal_uri(self, transport: str) -> SipUri:
        host, port = self.stack.local_contact(transport, _Loopback(transport), learned=False)
        uri = SipUri(host or "127.0.0.1", user=self._token, port=port)
        if transport != "udp":
            uri.params.set("transport", transport)
        return uri

    def internal_contact(self, transport: str) -> Address:
        return Address(self.internal_uri(transport))

    def is_internal_uri(self, uri: Uri) -> bool:
        return isinstance(uri, SipUri) and uri.user == self._token

    def sender(self, account: AccountConfig, target: TargetLike) -> Address:
        """Our From: the account's AOR; for the local account our own address, so that the
        remote party can call back."""
        uri = account.aor_uri
        if account.is_local:
            host, port = self.stack.local_contact(target.transport, target, learned=False)
            uri = SipUri(host, user=uri.user, port=port)
            if target.transport != "udp":
                uri.params.set("transport", target.transport)
        return Address(uri, account.display_name or None)

    def contact(self, account: AccountConfig, transport: str, toward: Any) -> Address:
        """Our Contact toward the remote party: the user part is the account id (how requests
        in the dialog find the account, like the contact we register)."""
        host, port = self.stack.local_contact(transport, toward)
        uri = SipUri(host, user=account.id, port=port)
        if transport != "udp":
            uri.params.set("transport", transport)
        return Address(uri)

    # -- calls -----------------------------------------------------------------------------------
    def _new_id(self) -> str:
        while True:
            session_id = secrets.token_hex(6)
            if session_id not in self._calls:
                return session_id

    async def _open(self, account: AccountConfig, direction: str, remote: str,
                    extra: dict[str, Any] | None = None,
                    watch: Callable[[dict[str, Any]], None] | None = None) -> Call:
        call = Call(self, self._new_id(), account, direction, remote)
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

    async def start(self, account: AccountConfig, to: str, streams: list[str], *,
                    extra_headers: Iterable[tuple[str, str]] = (),
                    extra: dict[str, Any] | None = None,
                    watch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """An outgoing call; its progress comes as session.state events. A transfer adds
        headers to its INVITE (Referred-By, Replaces), fields to its session.new and a
        watcher of its states."""
        if self.media is None:
            raise MediaUnavailable(f"the media engine is not running: {self.media_problem}")
        wanted = list(dict.fromkeys(streams))
        unknown = [name for name in wanted if name not in self.streams]
        if unknown or wanted != ["audio"]:
            raise InvalidSessionParam("streams", f"only [\"audio\"] is supported so far, not "
                                                 f"{streams!r}")
        try:
            uri = target_uri(to)
        except ValueError as exc:
            raise InvalidSessionParam("to", str(exc)) from None
        call = await self._open(account, "outgoing", str(uri), extra, watch)
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
        extra = {"replaces": replaced.id} if replaced is not None else None
        call = await self._open(account, "incoming", remote, extra)
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

    def _replaced(self, replaces: Replaces) -> Call:
        call, status, reason = find_replaced(self, replaces)
        if call is None:
            raise ReferError(status, reason)
        return call

    def _replacing(self, call: Call, replaced: Call, data: dict[str, Any]) -> None:
        """The call that replaces another is up: the other ends (BYE, or CANCEL)."""
        if data.get("state") == "established" and not replaced.terminated:
            replaced.end(f"replaced by session {call.id}")

    async def _auto_answer(self, call: Call) -> None:
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
        self._dialogs[(call_id, local_tag)] = leg

    def forget(self, call: Call) -> None:
        if self._calls.get(call.id) is call:
            del self._calls[call.id]
        for key, leg in list(self._dialogs.items()):
            if leg is call.outside or leg is call.media:
                del self._dialogs[key]
        self.release_media(call)

    async def stop_all(self, wait: float = STOP_WAIT) -> None:
        """Hang up every call (the daemon stops), waiting a little for the BYEs to go."""
        calls = [call for call in self._calls.values() if not call.terminated]
        for call in calls:
            call.end("sipd is stopping")
        with trio.move_on_after(wait):
            for call in calls:
                while not call.terminated:
                    await trio.sleep(0.05)

    # -- SIP in ----------------------------------------------------------------------------------
    async def on_request(self, incoming: IncomingRequest) -> bool:
        """Requests in our dialogs and the media workers' INVITEs; False for the others."""
        request = incoming.request
        method = request.method
        if method == "MESSAGE":
            return False  # pager mode, in a call's dialog too (RFC 3428 §4): the pager's
        to = request.to
        if to is not None and to.tag:
            leg = self._dialogs.get((request.call_id or "", to.tag))
            if leg is not None:
                leg.on_request(incoming)
                return True
            if method == "ACK":
                return True  # for a call long gone: nothing to do
            if method in _DIALOG_METHODS:
                await incoming.respond(481)
                return True
            return False
        if method == "INVITE" and self.is_internal_uri(request.uri):
            await self._worker_invite(incoming)
            return True
        if method in ("BYE", "INFO", "PRACK", "UPDATE", "NOTIFY"):
            await incoming.respond(481)  # NOTIFY: we subscribe to nothing outside a call
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

    def on_stray_response(self, response: Any, source: Any) -> None:
        from_ = response.from_
        if from_ is None or not from_.tag:
            return
        leg = self._dialogs.get((response.call_id or "", from_.tag))
        if leg is not None:
            leg.on_stray_response(response)

    # -- media -----------------------------------------------------------------------------------
    def audio_codecs(self) -> tuple[str, ...]:
        """The codec names the workers are configured with (none known: no check)."""
        if self.media is None:
            return ()
        return tuple(self.media.config.media.audio_codecs)

    async def allocate_media(self, call: Call) -> Any:
        if self.media is None:
            raise MediaUnavailable(f"the media engine is not running: {self.media_problem}")
        return await self.media.allocate(call.id)

    def release_media(self, call: Call) -> None:
        if self.media is not None:
            self.media.release(call.id)

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
            worker = getattr(call.worker, "id", None)
            if call.recording is not None and worker == data.get("worker"):
                self.publish("session.recording", {"id": call.id, "path": call.recording,
                                                   "complete": False, "reason": reason})
                call.recording = None


class _Loopback:
    """The target the workers are, for the stack's choice of a local address."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.host = self.address = "127.0.0.1"
        self.port = 0


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
