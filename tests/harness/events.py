"""The event log of one RPC connection: every `event` notification, in order, and waits on it.

A test waits for a condition the events reveal, never for a time: `wait(name, predicate)` for
the first matching event, `wait_until(predicate)` for any condition re-checked as each event
arrives, `next(name, ...)` for events one after the other (each call past the last one found),
`take(name, ...)` for the first matching event no `take` returned before, wherever it is (for
tests that do not check the order of events of different names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

from sipctl.client import Client
from tests.harness.waits import EVENT_TIMEOUT

T = TypeVar("T")
Data = dict[str, Any]


class EventLog:
    def __init__(self) -> None:
        self.seen: list[Data] = []  # each event's params: {"name": ..., "data": {...}}
        self._changed = trio.Event()
        self._cursor = 0
        self._taken: set[int] = set()

    async def collect(self, rpc: Client) -> None:
        async for message in rpc.events:
            if message.get("method") == "event":
                self.seen.append(message["params"])
                self._changed.set()
                self._changed = trio.Event()

    def mark(self) -> int:
        """A position: `wait(..., since=mark)` looks only at later events."""
        return len(self.seen)

    def _found(self, name: str, since: int, predicate: Callable[[Data], Any] | None,
               match: dict[str, Any]) -> list[tuple[int, Data]]:
        return [(i, e["data"]) for i, e in enumerate(self.seen[since:], since)
                if e["name"] == name
                and all(e["data"].get(k) == v for k, v in match.items())
                and (predicate is None or predicate(e["data"]))]

    def matching(self, name: str, since: int = 0, predicate: Callable[[Data], Any] | None = None,
                 **match: Any) -> list[Data]:
        """The data of every `name` event from `since` whose fields equal `match` and which
        `predicate` accepts."""
        return [data for _, data in self._found(name, since, predicate, match)]

    async def wait_until(self, predicate: Callable[[], T], *, timeout: float = EVENT_TIMEOUT,
                         what: str = "a condition") -> T:
        """`predicate()` once it is truthy, re-checked each time an event arrives."""
        with trio.move_on_after(timeout):
            while True:
                result = predicate()
                if result:
                    return result
                await self._changed.wait()
        raise AssertionError(f"no {what} within {timeout} s; saw "
                             f"{[(e['name'], e['data']) for e in self.seen]}")

    async def wait(self, name: str, predicate: Callable[[Data], Any] | None = None, *,
                   timeout: float = EVENT_TIMEOUT, since: int = 0, **match: Any) -> Data:
        """The first `name` event from `since` on that matches (see `matching`)."""
        def first() -> list[tuple[int, Data]]:
            return self._found(name, since, predicate, match)

        what = f"{name} {match}" + (" and predicate" if predicate else "")
        return (await self.wait_until(first, timeout=timeout, what=what))[0][1]

    async def next(self, name: str, predicate: Callable[[Data], Any] | None = None, *,
                   timeout: float = EVENT_TIMEOUT, **match: Any) -> Data:
        """The first matching `name` event after the one the last `next` returned."""
        def first() -> list[tuple[int, Data]]:
            return self._found(name, self._cursor, predicate, match)

        found = await self.wait_until(first, timeout=timeout, what=f"next {name} {match}")
        index, data = found[0]
        self._cursor = index + 1
        return data

    async def take(self, name: str, predicate: Callable[[Data], Any] | None = None, *,
                   timeout: float = EVENT_TIMEOUT, **match: Any) -> Data:
        """The first matching `name` event that no `take` returned before, however far back."""
        def first() -> list[tuple[int, Data]]:
            return [(i, data) for i, data in self._found(name, 0, predicate, match)
                    if i not in self._taken]

        found = await self.wait_until(first, timeout=timeout, what=f"{name} {match} (not taken)")
        index, data = found[0]
        self._taken.add(index)
        return data
