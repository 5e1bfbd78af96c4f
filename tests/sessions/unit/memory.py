"""An in-memory SIP network for driving a Session without sockets, daemons or pjsua2.

Each party has a `MemoryStack` (the part of SipStack a LegDriver uses) on a port of a shared
`MemoryNet`; messages are serialised and parsed again on the way (as on a wire) and delivered
by the net's task in order, one per scheduler turn, so that messages cross as they would
between real hosts. `net.pause()` holds everything sent until `net.resume()`: what both
sides send meanwhile crosses (glare, a CANCEL crossing a 200).

Parties:
- `Remote`: the far user agent, an InviteSession under a LegDriver on its own stack; the test
  drives it (`remote.feed(remote.session.accept(...))`) and reads `remote.events`.
- `FakeWorker`: a scripted media worker. It answers the internal INVITE at once with its
  audio, calls our internal URI when asked (`request("call")`), and can be told to fail.
- `Harness`: a Session with its SessionContext over these, as the manager would make it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import trio
import trio.lowlevel

from sipd.accounts.model import AccountConfig
from sipd.media.process import MediaWorkerError
from sipd.sessions.context import Addresses, SessionContext
from sipd.sessions.driver import LegDriver
from sipd.sessions.invite.events import OfferReceived, RemoteSdp, SessionState, StateChanged
from sipd.sessions.invite.session import InviteSession
from sipd.sessions.session import Session
from sipd.sessions.streams import StreamRegistry, default_registry
from sipd.sip.builder import build_request, build_response, new_via
from sipd.sip.header_values import Address, parse_via
from sipd.sip.message import Request, Response, parse_datagram
from sipd.sip.timers import DEFAULT_TIMERS
from sipd.sip.trio.handles import IncomingRequest
from sipd.sip.trio.locator import Target
from sipd.sip.uri import SipUri

HOST = "127.0.0.1"
SESSION_PORT, REMOTE_PORT, WORKER_PORT = 5060, 5070, 5080


def wire(message: Any) -> Any:
    return parse_datagram(message.to_bytes())


def audio_sdp(name: str, version: int = 1, port: int = 4000, direction: str = "sendrecv",
              extra: str = "") -> bytes:
    return (f"v=0\r\no={name} 100 {version} IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\n"
            f"t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
            f"{extra}").encode()


class MemoryNet:
    def __init__(self) -> None:
        self.stacks: dict[int, MemoryStack] = {}
        self._queue: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._wake = trio.Event()
        self._paused = False
        self.log: list[str] = []  # "INVITE 5070->5060", "200 INVITE"...
        self.pause_at: str | None = None  # pause once this is logged (before it is sent)

    def note(self, entry: str) -> None:
        self.log.append(entry)
        if self.pause_at is not None and entry == self.pause_at:
            self.pause_at = None
            self._paused = True

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        self._queue.append((fn, args))
        self._wake.set()

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    async def run(self) -> None:
        while True:
            while self._queue and not self._paused:
                fn, args = self._queue.popleft()
                fn(*args)
                await trio.lowlevel.checkpoint()
            self._wake = trio.Event()
            await self._wake.wait()


class ClientHandle:
    """A client transaction as LegDriver sees it (ClientTransactionHandle)."""

    def __init__(self, request: Request, target: Any) -> None:
        self.request = request
        self.target = target
        self.hop = SimpleNamespace(connection=None)
        self._listener: Callable[[Response], None] | None = None
        self._buffer: list[Response] = []
        self._final = trio.Event()
        self.cancel_sent = False

    def listen(self, listener: Callable[[Response], None]) -> None:
        self._listener = listener
        buffered, self._buffer = self._buffer, []
        for response in buffered:
            listener(response)

    def deliver(self, response: Response) -> None:
        if self._listener is not None:
            self._listener(response)
        elif not self._final.is_set():
            self._buffer.append(response)
        if response.status >= 200:
            self._final.set()

    def stop(self) -> None:
        self._listener = None

    def close(self) -> None:
        pass

    def __aiter__(self) -> ClientHandle:
        return self

    async def __anext__(self) -> Response:
        await self._final.wait()
        raise StopAsyncIteration


class Incoming(IncomingRequest):
    """A request as the stack hands it up (IncomingRequest): answered through the net."""

    method = property(lambda self: self.request.method)  # type: ignore[assignment]
    transport = property(lambda self: "udp")  # type: ignore[assignment]
    answered = property(lambda self: self._answered)  # type: ignore[assignment]

    def __init__(self, net: MemoryNet, request: Request, handle: ClientHandle | None,
                 sender: int) -> None:
        self.net = net
        self.request = request
        self.source = SimpleNamespace(connection=None, address=HOST, port=sender,
                                      transport="udp")
        self.handle = handle
        self.sender = sender
        self.transaction: object | None = object() if handle is not None else None
        self._answered = False
        self.cancelled = trio.Event()

    def detach(self) -> None:
        pass

    def respond_nowait(self, status: int, reason: str | None = None, *,
                       headers: Any = (), body: bytes | None = None,
                       content_type: str | None = None, to_tag: str | None = None) -> None:
        if self.transaction is None or self.handle is None:
            return
        response = build_response(self.request, status, reason, to_tag=to_tag,
                                  headers=list(headers), body=body or b"",
                                  content_type=content_type)
        if status >= 200:
            self._answered = True
            self.transaction = None
        self.net.note(f"{status} {self.request.method} {self.sender}")
        self.net.post(self.handle.deliver, wire(response))

    async def respond(self, status: int, reason: str | None = None, **kwargs: Any) -> None:
        self.respond_nowait(status, reason, **kwargs)


class MemoryStack:
    """The part of SipStack that LegDriver and the session use."""

    def __init__(self, net: MemoryNet, port: int,
                 on_request: Callable[[Incoming], None]) -> None:
        self.net = net
        self.port = port
        self.ports = {"udp": port}
        self.on_request = on_request
        self.config = SimpleNamespace(timers=DEFAULT_TIMERS, listen_address=HOST)
        self._invites: dict[str, Incoming] = {}  # our INVITEs' server sides, by branch
        net.stacks[port] = self

    def local_contact(self, transport: str, toward: Any, learned: bool = True
                      ) -> tuple[str, int]:
        return HOST, self.port

    def keep_connection(self, connection: Any) -> None:
        pass

    def release_connection(self, connection: Any) -> None:
        pass

    def _stamp(self, request: Request) -> Request:
        values = request.headers.values("Via")
        branch = parse_via(values[0]).branch if values else None
        via = str(new_via("UDP", HOST, self.port, branch=branch))
        if values:
            request.headers.replace_first_value("Via", via)
        else:
            request.headers.add_first("Via", via)
        return request

    def _deliver(self, request: Request, target: Any, handle: ClientHandle | None) -> None:
        peer = self.net.stacks[target.port]
        incoming = Incoming(self.net, wire(self._stamp(request)), handle, self.port)
        if handle is not None and request.method == "INVITE":
            self._invites[_branch(request)] = incoming
        self.net.note(f"{request.method} {self.port}->{target.port}")
        self.net.post(peer.on_request, incoming)

    async def start_client_transaction(self, request: Request, target: Any) -> ClientHandle:
        handle = ClientHandle(request, target)
        self._deliver(request, target, handle)
        return handle

    async def send_stateless(self, request: Request, target: Any) -> None:
        self._deliver(request, target, None)

    def cancel(self, handle: ClientHandle) -> None:
        """Our CANCEL: the other side's stack answers it, and 487s the INVITE unless it has
        answered already (then the CANCEL does nothing: it crossed the final response)."""
        incoming = self._invites.get(_branch(handle.request))
        self.net.note(f"CANCEL {self.port}->{handle.target.port}")

        def arrive() -> None:
            if incoming is None or incoming.answered:
                return
            incoming.respond_nowait(487)
            incoming.cancelled.set()

        self.net.post(arrive)


def _branch(request: Request) -> str:
    return parse_via(request.headers.values("Via")[0]).branch or ""


def target(port: int) -> Target:
    return Target("udp", HOST, HOST, port, HOST)


class Locator:
    def __init__(self, *ports: int) -> None:
        self.ports = ports
        self.failed: list[Target] = []

    async def locate(self, uri: Any) -> list[Target]:
        return [target(port) for port in self.ports]

    def mark_failed(self, t: Target) -> None:
        self.failed.append(t)

    def mark_succeeded(self, t: Target) -> None:
        pass


@dataclass
class Party:
    """One INVITE dialog of a peer (the remote UA, or the worker's call)."""

    leg: LegDriver
    events: list[Any] = field(default_factory=list)

    @property
    def session(self) -> InviteSession:
        return self.leg.session

    def feed(self, actions: list[Any]) -> None:
        self.leg.feed(actions)

    def states(self) -> list[str]:
        return [e.state.value for e in self.events if isinstance(e, StateChanged)]

    def offers(self) -> list[bytes | None]:
        return [e.sdp for e in self.events if isinstance(e, OfferReceived)]


class Peer:
    """A user agent on its own stack: INVITE dialogs under LegDrivers, driven by the test
    (or by the subclass's script)."""

    def __init__(self, net: MemoryNet, port: int, nursery: trio.Nursery, name: str) -> None:
        self.name = name
        self.nursery = nursery
        self.stack = MemoryStack(net, port, self.on_request)
        self.parties: list[Party] = []
        self._dialogs: dict[tuple[str, str], LegDriver] = {}
        self.changed = trio.Event()

    def _party(self, **kwargs: Any) -> Party:
        party: Party

        def on_event(leg: LegDriver, action: Any) -> None:
            party.events.append(action)
            self.on_event(party, action)
            self.changed.set()
            self.changed = trio.Event()

        leg = LegDriver(self.name, InviteSession(), self.stack, route=self._route,
                        on_event=on_event, **kwargs)
        party = Party(leg)
        self.parties.append(party)
        self.nursery.start_soon(leg.run)
        return party

    async def _route(self, request: Request) -> Target:
        uri = request.uri
        assert isinstance(uri, SipUri) and uri.port is not None
        return target(uri.port)

    def on_event(self, party: Party, action: Any) -> None:
        """The script of a subclass."""

    def on_request(self, incoming: Incoming) -> None:
        request = incoming.request
        to = request.to
        if to is not None and to.tag:
            leg = self._dialogs.get((request.call_id or "", to.tag))
            if leg is not None:
                leg.on_request(incoming)
            elif incoming.method != "ACK":
                incoming.respond_nowait(481)
            return
        if incoming.method != "INVITE":
            incoming.respond_nowait(405)
            return
        party = self._party()
        contact = Address(SipUri(HOST, user=self.name, port=self.stack.port))
        party.feed(party.session.incoming(request, party.leg.now(), contact=contact,
                                          ref=incoming))
        self._dialogs[(party.session.call_id or "", party.session.local_tag or "")] = party.leg
        self.nursery.start_soon(self._watch_cancel, party, incoming)
        self.on_invite(party)

    async def _watch_cancel(self, party: Party, incoming: Incoming) -> None:
        await incoming.cancelled.wait()
        if not party.leg.closed:
            party.feed(party.session.cancelled(party.leg.now(), already_answered=True))

    def on_invite(self, party: Party) -> None:
        """A new INVITE came (the subclass's script)."""

    def invite(self, to: SipUri, body: bytes | None,
               headers: list[tuple[str, str]] | None = None) -> Party:
        contact = Address(SipUri(HOST, user=self.name, port=self.stack.port))
        request = build_request("INVITE", to, from_=contact, to=Address(to), contact=contact,
                                headers=headers or [], body=body or b"",
                                content_type="application/sdp" if body else None)
        party = self._party(initial_target=target(to.port or 5060))
        assert request.call_id is not None and request.from_ is not None
        self._dialogs[(request.call_id, request.from_.tag or "")] = party.leg
        party.feed(party.session.start(request, party.leg.now()))
        return party

    async def wait(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self.changed.wait()


class Remote(Peer):
    """The far user agent; the test drives it. Offers in re-INVITEs are answered at once
    (recvonly to a sendonly offer, as a phone does)."""

    version = 1

    def on_event(self, party: Party, action: Any) -> None:
        if isinstance(action, OfferReceived) and action.sdp:
            self.version += 1
            direction = "recvonly" if b"a=sendonly" in action.sdp else "sendrecv"
            party.feed(party.session.answer_reinvite(
                audio_sdp("remote", self.version, direction=direction), party.leg.now()))

    @property
    def call(self) -> Party:
        return self.parties[-1]


class FakeWorker(Peer):
    """A scripted media worker: the supervisor's requests and events, and SIP like pjsua's
    (auto answer with its audio; re-INVITEs answered with the same description)."""

    def __init__(self, net: MemoryNet, nursery: trio.Nursery) -> None:
        super().__init__(net, WORKER_PORT, nursery, "media")
        self.session_id = ""
        self.on_session_event: Callable[[dict[str, Any]], None] = lambda event: None
        self.refuse_call: str | None = None  # the "call" command fails with this
        self.drop_call = False  # asked to call, it never does (and says it disconnected)
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.version = 1
        self.ready = {"sip": {"udp": f"{HOST}:{WORKER_PORT}"}}
        self.id = "w1"

    # the supervisor's side (MediaWorkers)
    async def allocate(self, session_id: str) -> Any:
        self.session_id = session_id
        return self

    def release(self, session_id: str) -> None:
        pass

    def audio_codecs(self) -> tuple[str, ...]:
        return ("PCMU/8000",)

    async def request(self, session_id: str, cmd: str, /, **fields: Any) -> dict[str, Any]:
        self.commands.append((cmd, fields))
        if cmd == "call":
            if self.refuse_call:
                raise MediaWorkerError(self.refuse_call)
            if self.drop_call:
                self.on_session_event({"event": "call.state", "call": 1,
                                       "state": "disconnected", "reason": "TURN refused",
                                       "session": session_id})
                return {"call": 1}
            uri = fields["uri"]
            party = self.invite(_parse_sip(uri), self.sdp(),
                                headers=[("X-Sipd-Session", session_id)])
            assert party is not None
            return {"call": 1}
        if cmd in ("hold", "unhold"):
            party = self.parties[-1]
            self.version += 1
            direction = "sendonly" if cmd == "hold" else "sendrecv"
            party.feed(party.session.reinvite(self.sdp(direction), party.leg.now()))
            return {}
        if cmd == "status":
            return {"calls": [{"call": 1, "rtp": {"sent": 1}}]}
        return {}

    def sdp(self, direction: str = "sendrecv") -> bytes:
        return audio_sdp("pjmedia", self.version, port=40000, direction=direction)

    def on_invite(self, party: Party) -> None:
        self.on_session_event({"event": "call.incoming", "call": 1,
                               "session": self.session_id})
        party.feed(party.session.accept(self.sdp(), party.leg.now()))

    def on_event(self, party: Party, action: Any) -> None:
        if isinstance(action, OfferReceived):
            party.feed(party.session.answer_reinvite(self.sdp(), party.leg.now()))
        elif isinstance(action, RemoteSdp) and action.kind == "offer" and False:
            pass


def _parse_sip(text: str) -> SipUri:
    from sipd.sip.uri import parse_uri
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


class Harness:
    """A Session in a SessionContext over the memory net, with a remote UA and a worker."""

    def __init__(self, nursery: trio.Nursery, *, streams: StreamRegistry | None = None,
                 remote_ports: tuple[int, ...] = (REMOTE_PORT,)) -> None:
        self.nursery = nursery
        self.net = MemoryNet()
        nursery.start_soon(self.net.run)
        self.stack = MemoryStack(self.net, SESSION_PORT, self.on_request)
        self.remote = Remote(self.net, REMOTE_PORT, nursery, "remote")
        self.worker = FakeWorker(self.net, nursery)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.changed = trio.Event()
        self.dialogs: dict[tuple[str, str], LegDriver] = {}
        self.locator = Locator(*remote_ports)
        self.forgotten = trio.Event()
        self.addresses = Addresses(self.stack, HOST)
        self.context = SessionContext(
            stack=self.stack, timers=DEFAULT_TIMERS, locator=self.locator, linger=0.0,
            publish=self.publish, spawn=nursery.start_soon, addresses=self.addresses,
            media=self.worker, streams=streams or default_registry(),  # type: ignore[arg-type]
            register_dialog=self.register_dialog, forget=lambda s: self.forgotten.set(),
            start_session=None)  # type: ignore[arg-type]
        self.session: Session | None = None

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, data))
        self.changed.set()
        self.changed = trio.Event()

    def states(self) -> list[str]:
        return [data["state"] for name, data in self.events if name == "session.state"]

    def register_dialog(self, call_id: str, tag: str, leg: LegDriver) -> None:
        self.dialogs[(call_id, tag)] = leg

    def open(self, direction: str, streams: list[str] | None = None) -> Session:
        account = AccountConfig(id="alice", aor="sip:alice@127.0.0.1", register=False)
        session = self.session = Session(self.context, "s1", account, direction, "remote",
                                         streams or ["audio"])
        self.worker.session_id = session.id
        self.worker.on_session_event = session.on_worker_event
        self.nursery.start_soon(session.run)
        return session

    def on_request(self, incoming: Incoming) -> None:
        """What the manager does with a request for us (sipd.sessions.manager.on_request)."""
        request = incoming.request
        to = request.to
        assert self.session is not None
        if to is not None and to.tag:
            leg = self.dialogs.get((request.call_id or "", to.tag))
            if leg is not None:
                leg.on_request(incoming)
            elif incoming.method != "ACK":
                incoming.respond_nowait(481)
            return
        if self.addresses.is_internal_uri(request.uri):
            self.session.on_worker_invite(incoming)  # type: ignore[arg-type]
        else:
            self.session.receive(incoming)  # type: ignore[arg-type]

    async def wait(self, predicate: Callable[[], bool]) -> None:
        with trio.fail_after(30):
            while not predicate():
                changed = [self.changed, self.remote.changed, self.worker.changed]
                async with trio.open_nursery() as nursery:
                    for event in changed:
                        nursery.start_soon(_wait_then_cancel, event, nursery.cancel_scope)

    async def wait_state(self, state: str) -> None:
        await self.wait(lambda: state in self.states())


async def _wait_then_cancel(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


__all__ = ["Harness", "MemoryNet", "Remote", "FakeWorker", "audio_sdp", "SessionState",
           "REMOTE_PORT", "SESSION_PORT", "WORKER_PORT"]
