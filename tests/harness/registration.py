"""A sipd daemon for the registration tests: its RPC client and its `account.registration`
events, kept per account so that tests with many accounts wait for each in any order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from sipctl.client import Client, connect
from tests.harness.events import Data, EventLog
from tests.harness.process import SipdProcess

EVENT_WAIT = 20  # seconds: generous, nothing here is a timing assertion


class Registrations:
    """The `account.registration` events of one event log, per account."""

    def __init__(self, events: EventLog) -> None:
        self.events = events

    def _of(self, account: str) -> list[Data]:
        return self.events.matching("account.registration", account=account)

    def states(self, account: str) -> list[str]:
        return [data["state"] for data in self._of(account)]

    def mark(self, account: str) -> int:
        """A position to wait from (`after=`): events before it are ignored."""
        return len(self._of(account))

    async def wait(self, account: str, state: str | tuple[str, ...], *,
                   timeout: float = EVENT_WAIT, after: int = 0) -> Data:
        """The first event of `account` with `state` (or one of several), from the
        `after`-th event of that account on."""
        wanted = (state,) if isinstance(state, str) else state

        def found() -> Data | None:
            for data in self._of(account)[after:]:
                if data["state"] in wanted:
                    return data
            return None

        return await self.events.wait_until(found, timeout=timeout,
                                            what=f"{state!r} event for {account}")


@asynccontextmanager
async def running_sipd(tmp_path: Path, settings: dict[str, Any] | None = None,
                       name: str = "sipd") -> AsyncIterator[tuple[SipdProcess, Client,
                                                                  Registrations]]:
    """A sipd daemon with `settings`, an RPC connection subscribed to account events."""
    daemon = SipdProcess(tmp_path, {"sip.listen_address": "127.0.0.1", **(settings or {})},
                         name=name)
    daemon.start()
    try:
        async with connect(daemon.endpoint) as client, trio.open_nursery() as nursery:
            events = EventLog()
            nursery.start_soon(events.collect, client)
            await client.call("events.subscribe", {"topics": ["accounts"]})
            yield daemon, client, Registrations(events)
            nursery.cancel_scope.cancel()
    except BaseException:
        print(daemon.log()[-20000:])
        raise
    finally:
        daemon.stop()


async def add_account(client: Client, **fields: Any) -> dict[str, Any]:
    return await client.call("accounts.add", fields)


def kamailio_registers(kamailio: Any) -> list[str]:
    """Lines of Kamailio's log for each REGISTER it received."""
    return [line for line in kamailio.log_text().splitlines() if "request REGISTER" in line]
