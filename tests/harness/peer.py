"""One sipd daemon as a test sees it: its RPC client, its event log and its SIP ports, with an
account when it has one registered at a server.

`open_peer` connects to a running daemon; `registered_user` starts a daemon of its own and
registers one account at Kamailio. `call_and_answer` is the call every call test starts with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from sipctl.client import Client, connect
from tests.harness.events import Data, EventLog
from tests.harness.process import SipdProcess
from tests.harness.waits import EVENT_TIMEOUT
from tests.peers.fixtures import PEER_USERS
from tests.peers.ports import rtp_port_range

T = TypeVar("T")
P = TypeVar("P", bound="DaemonPeer")

CALL_TOPICS = ("sessions", "media", "messages")


def daemon_settings() -> dict[str, Any]:
    """Media workers on loopback, on a free RTP port range; two workers, PCMU and PCMA."""
    return {"rtp.media_address": "127.0.0.1", "rtp.port_range": rtp_port_range(),
            "media.max_workers": 2, "rtp.audio_codecs": ["PCMU", "PCMA"]}


class DaemonPeer:
    def __init__(self, daemon: SipdProcess, rpc: Client, events: EventLog,
                 ports: dict[str, int], account: dict[str, Any] | None = None,
                 transport: str = "udp") -> None:
        self.daemon = daemon
        self.rpc = rpc
        self.events = events
        self.ports = ports
        self.account = account
        self.transport = transport

    @property
    def id(self) -> str:
        """The registered account's id (the built-in one is "local")."""
        return self.account["id"] if self.account else "local"

    def uri(self, transport: str = "udp", user: str = "local") -> str:
        """The built-in `local` account's URI (or `user`'s) on this daemon's `transport` port."""
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"sip:{user}@127.0.0.1:{self.ports[transport]}{suffix}"

    async def call(self, method: str, **params: Any) -> Any:
        return await self.rpc.call(method, params)

    async def wait(self, name: str, predicate: Callable[[Data], Any] | None = None, *,
                   timeout: float = EVENT_TIMEOUT, since: int = 0, **match: Any) -> Data:
        return await self.events.wait(name, predicate, timeout=timeout, since=since, **match)

    async def wait_until(self, predicate: Callable[[], T], *, timeout: float = EVENT_TIMEOUT,
                         what: str = "a condition") -> T:
        return await self.events.wait_until(predicate, timeout=timeout, what=what)

    async def state(self, session: str, state: str, **match: Any) -> Data:
        return await self.events.wait("session.state", id=session, state=state, **match)

    # -- pager mode, for the registered account ------------------------------------------------

    async def send(self, to: str, content: str, **params: Any) -> dict[str, Any]:
        return await self.call("messages.send", account=self.id, to=to, content=content,
                               **params)

    async def composing(self, to: str, state: str) -> dict[str, Any]:
        return await self.call("messages.composing", account=self.id, to=to, state=state)

    async def event(self, name: str, **match: Any) -> Data:
        """The next `name` event matching, after the one this returned last."""
        return await self.events.next(name, **match)


@asynccontextmanager
async def open_peer(daemon: SipdProcess, topics: Sequence[str] = CALL_TOPICS,
                    peer_class: type[P] = DaemonPeer,  # type: ignore[assignment]
                    ) -> AsyncIterator[P]:
    """An RPC connection to `daemon`, subscribed to `topics`, as a `peer_class` (a DaemonPeer);
    the daemon's log of the test is printed at the end (pytest shows it when the test
    failed)."""
    log_start = len(daemon.log())
    try:
        async with connect(daemon.endpoint) as rpc, trio.open_nursery() as nursery:
            events = EventLog()
            nursery.start_soon(events.collect, rpc)
            await rpc.call("events.subscribe", {"topics": list(topics)})
            state = await rpc.call("system.state")
            yield peer_class(daemon, rpc, events, state["sip"]["ports"])
            nursery.cancel_scope.cancel()
    finally:
        print(f"--- sipd {daemon.base.name} during the test ---\n{daemon.log()[log_start:]}")


def account_fields(kamailio: Any, user: str, transport: str) -> dict[str, Any]:
    """Over UDP the account names Kamailio as its registrar (requests go there directly);
    over TCP as its outbound proxy (a pre-loaded Route; the registrar is the AOR's domain)."""
    fields = {"aor": kamailio.aor(user), "password": PEER_USERS[user]}
    if transport == "udp":
        fields["registrar"] = kamailio.proxy_uri("udp").replace(";transport=udp", "")
    else:
        fields["outbound_proxy"] = kamailio.proxy_uri(transport)
    return fields


@asynccontextmanager
async def registered_user(tmp_path: Path, kamailio: Any, user: str, transport: str = "udp", *,
                          settings: dict[str, Any] | None = None,
                          topics: Sequence[str] = ("sessions", "media", "accounts")
                          ) -> AsyncIterator[DaemonPeer]:
    """A daemon of its own (with `settings`) and `user` registered at Kamailio over
    `transport`; fails unless the registration succeeds."""
    daemon = SipdProcess(tmp_path, settings, name=f"sipd-{user}")
    try:
        daemon.start()
        async with open_peer(daemon, topics) as peer:
            peer.account = await peer.call("accounts.add",
                                           **account_fields(kamailio, user, transport))
            peer.transport = transport
            registration = await peer.events.next(
                "account.registration",
                lambda data: data["state"] in ("registered", "failed"), account=peer.id)
            assert registration["state"] == "registered", registration
            yield peer
    finally:
        daemon.stop()
        print(f"--- {daemon.base.name} ---\n{daemon.log()}")  # shown on failure


async def call_and_answer(a: DaemonPeer, b: DaemonPeer, transport: str = "udp"
                          ) -> tuple[str, str]:
    """A calls B's `local` account, B answers: both established. (A's session id, B's)"""
    mark = b.events.mark()
    started = await a.call("sessions.start", account="local", to=b.uri(transport),
                           streams=["audio"])
    a_id = started["id"]
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    b_id = new["id"]
    assert new["account"] == "local" and new["streams"] == ["audio"]
    await b.state(b_id, "ringing")
    await a.state(a_id, "ringing")
    await b.call("sessions.answer", id=b_id)
    await a.state(a_id, "established")
    await b.state(b_id, "established")
    return a_id, b_id
