"""A sipd daemon as the presence tests drive it: the harness's DaemonPeer (tests/harness),
whose calls name its account unless they name one, and whose `event` takes the first matching
event not taken before, wherever it is in the log (the order of events of different names is
not what these tests check)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.harness.events import Data
from tests.harness.peer import DaemonPeer
from tests.harness.peer import open_peer as open_daemon_peer
from tests.harness.process import SipdProcess
from tests.harness.waits import EVENT_TIMEOUT


class Peer(DaemonPeer):
    async def call(self, method: str, **params: Any) -> Any:
        return await self.rpc.call(method, {"account": self.id, **params})

    async def event(self, name: str, timeout: float = EVENT_TIMEOUT, **match: Any) -> Data:
        return await self.events.take(name, timeout=timeout, **match)


@asynccontextmanager
async def open_peer(daemon: SipdProcess, topics: tuple[str, ...] = ("presence",),
                    accounts: tuple[dict[str, Any], ...] = ()) -> AsyncIterator[Peer]:
    """An RPC connection to `daemon`; `accounts` are added and must register first (the peer
    then acts for the last)."""
    async with open_daemon_peer(daemon, (*topics, "accounts"), peer_class=Peer) as peer:
        for fields in accounts:
            added = await peer.rpc.call("accounts.add", fields)
            state = await peer.event("account.registration", account=added["id"],
                                     state="registered")
            assert state["state"] == "registered", state
            peer.account = added
        yield peer
