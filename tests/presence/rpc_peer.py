"""A sipd daemon as the presence tests drive it: an RPC connection subscribed to its events,
with the events read past kept for later (the order of events of different names is not
what these tests check)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sipctl.client import Client, connect
from tests.harness.process import SipdProcess


class Peer:
    def __init__(self, daemon: SipdProcess, rpc: Client, ports: dict[str, int],
                 account: str = "local") -> None:
        self.daemon = daemon
        self.rpc = rpc
        self.ports = ports
        self.account = account
        self.unread: list[dict[str, Any]] = []

    def uri(self, transport: str = "udp") -> str:
        """The local account's address on this daemon."""
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"sip:local@127.0.0.1:{self.ports[transport]}{suffix}"

    async def call(self, method: str, **params: Any) -> Any:
        return await self.rpc.call(method, {"account": self.account, **params})

    async def event(self, name: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The first event `name` not returned before whose data has the `match` values."""
        def fits(params: dict[str, Any]) -> bool:
            return params["name"] == name and all(params["data"].get(k) == v
                                                  for k, v in match.items())
        for params in self.unread:
            if fits(params):
                self.unread.remove(params)
                return params["data"]
        while True:
            params = await self.rpc.next_event(timeout=timeout)
            if fits(params):
                return params["data"]
            self.unread.append(params)


@asynccontextmanager
async def open_peer(daemon: SipdProcess, topics: tuple[str, ...] = ("presence",),
                    accounts: tuple[dict[str, Any], ...] = ()) -> AsyncIterator[Peer]:
    """An RPC connection to `daemon`; `accounts` are added and must register first."""
    log_start = len(daemon.log())
    try:
        async with connect(daemon.endpoint) as rpc:
            await rpc.call("events.subscribe", {"topics": [*topics, "accounts"]})
            peer = Peer(daemon, rpc, (await rpc.call("system.state"))["sip"]["ports"])
            for fields in accounts:
                added = await rpc.call("accounts.add", fields)
                state = await peer.event("account.registration", account=added["id"],
                                         state="registered")
                assert state["state"] == "registered", state
                peer.account = added["id"]
            yield peer
    finally:  # pytest shows it when the test failed
        print(f"--- sipd {daemon.base.name} during the test ---\n{daemon.log()[log_start:]}")
