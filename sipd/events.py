"""The daemon's event bus: domain code publishes, subscribers (RPC clients) receive.

Every event gets the next sequence number and lands in a replay buffer bounded in events and in
bytes, so a client that reconnects can ask for what it missed since a sequence number. Numbers
keep rising across runs of the daemon (the first number of a run comes from a reservation kept
on disk, see event_seq.py), so a `since` from an earlier run always falls before this run's
buffer and is reported as a gap, never taken for a point in this run. `boot` names the run.

Delivery to a live subscriber is a synchronous, non-blocking call: a subscriber that cannot
keep up decides for itself what to do (the RPC layer warns and then drops a slow client); the
bus never waits. A subscriber catching up reads the buffer at its own pace with `read_after`.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Event name prefix -> topic (a plural noun). docs/design.md §4.
TOPICS: dict[str, str] = {
    "account": "accounts",
    "contact": "contacts",
    "session": "sessions",
    "message": "messages",
    "chat": "chat",
    "presence": "presence",
    "file": "files",
    "xcap": "xcap",
    "settings": "settings",
    "media": "media",
    "system": "system",
}
ALL_TOPICS = frozenset(TOPICS.values())


def topic_of(name: str) -> str:
    """The topic an event name belongs to (`account.registration` -> `accounts`)."""
    prefix = name.split(".", 1)[0]
    try:
        return TOPICS[prefix]
    except KeyError:
        raise ValueError(f"event {name!r} has no topic; known prefixes: {sorted(TOPICS)}") from None


@dataclass(frozen=True)
class Event:
    seq: int
    time: float
    topic: str
    name: str
    data: dict[str, Any]

    def as_params(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "topic": self.topic, "name": self.name,
                "data": self.data}

    @functools.cached_property
    def params_json(self) -> str:
        """The params as JSON, made once however many clients receive the event."""
        return json.dumps(self.as_params(), separators=(",", ":"), ensure_ascii=False)

    @functools.cached_property
    def size(self) -> int:
        """About the memory the event holds, in bytes (its JSON text dominates)."""
        return sys.getsizeof(self.params_json) + 200


@dataclass(frozen=True, slots=True)
class Gap:
    """Events first..last (sequence numbers) that can no longer be replayed."""
    first: int
    last: int

    def as_dict(self) -> dict[str, int]:
        return {"first": self.first, "last": self.last}


Deliver = Callable[[Event], None]
# Returns once the event with this seq is durable (or the keeper gave up on it).
Keeper = Callable[[int], Awaitable[None]]
# Given the number about to be handed out, reserve more and return the new highest allowed.
Reserve = Callable[[int], int]


@dataclass(slots=True)
class Subscription:
    id: int
    topics: frozenset[str]
    deliver: Deliver

    def wants(self, event: Event) -> bool:
        return event.topic in self.topics


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a subscriber that asked for `since` starts reading (`after`), and what it can
    already be told: the gap, if some events are gone, and how many are buffered for it."""
    after: int
    gap: Gap | None
    buffered: int


class EventBus:
    def __init__(self, replay_size: int = 1000, replay_bytes: int = 16 * 1024 * 1024, *,
                 first_seq: int = 1, reserve: Reserve | None = None,
                 boot: str | None = None) -> None:
        self.replay_size = replay_size
        self.replay_bytes = replay_bytes
        self.boot = boot or secrets.token_hex(8)
        self.first_seq = first_seq
        self._seq = first_seq - 1
        self._ceiling = self._seq if reserve else sys.maxsize
        self._reserve = reserve
        # The replay buffer: consecutive events, oldest at _start (a list and an offset rather
        # than a deque, so a catching-up reader finds its place by index in O(1)).
        self._buffer: list[Event] = []
        self._start = 0
        self._buffered_bytes = 0
        self._subscriptions: dict[int, Subscription] = {}
        self._ids = itertools.count(1)
        self._keepers: list[Keeper] = []

    @property
    def seq(self) -> int:
        """The sequence number of the newest event (first_seq - 1 before the first)."""
        return self._seq

    @property
    def oldest(self) -> int:
        """The sequence number of the oldest buffered event (seq + 1 when none is)."""
        return self._buffer[self._start].seq if self._start < len(self._buffer) else self._seq + 1

    def resize(self, replay_size: int | None = None, replay_bytes: int | None = None) -> None:
        if replay_size is not None:
            self.replay_size = replay_size
        if replay_bytes is not None:
            self.replay_bytes = replay_bytes
        self._trim()

    def publish(self, name: str, data: dict[str, Any] | None = None) -> Event:
        if self._seq >= self._ceiling:
            self._ceiling = self._reserve(self._seq + 1)  # type: ignore[misc]
        self._seq += 1
        event = Event(self._seq, time.time(), topic_of(name), name, data or {})
        self._buffer.append(event)
        self._buffered_bytes += event.size
        self._trim()
        for sub in list(self._subscriptions.values()):
            if sub.wants(event):
                try:
                    sub.deliver(event)
                except Exception:  # one broken subscriber must not stop the others
                    log.exception("event subscriber %d failed on %s", sub.id, name)
        return event

    def _trim(self) -> None:
        buffer = self._buffer
        while self._start < len(buffer) and (
                len(buffer) - self._start > self.replay_size
                or self._buffered_bytes > self.replay_bytes):
            self._buffered_bytes -= buffer[self._start].size
            buffer[self._start] = None  # type: ignore[call-overload]  # let it go now
            self._start += 1
        if self._start > 1024 and self._start * 2 > len(buffer):
            del buffer[:self._start]
            self._start = 0

    def subscribe(self, topics: Iterable[str] | None, deliver: Deliver) -> Subscription:
        """Subscribe to topics (None or empty: all)."""
        wanted = frozenset(topics) if topics else ALL_TOPICS
        unknown = wanted - ALL_TOPICS
        if unknown:
            raise ValueError(f"unknown topics {sorted(unknown)}; known: {sorted(ALL_TOPICS)}")
        sub = Subscription(next(self._ids), wanted, deliver)
        self._subscriptions[sub.id] = sub
        return sub

    def unsubscribe(self, sub_id: int) -> bool:
        return self._subscriptions.pop(sub_id, None) is not None

    def add_keeper(self, keeper: Keeper) -> None:
        """A part that makes events durable (the history) and can say when it has."""
        self._keepers.append(keeper)

    def remove_keeper(self, keeper: Keeper) -> None:
        if keeper in self._keepers:
            self._keepers.remove(keeper)

    async def kept(self, event: Event) -> None:
        """Returns once every keeper has stored `event` (or given up on it): what a part
        awaits before it acknowledges something to the outside, such as the 200 to a MESSAGE,
        so that nothing acknowledged is lost if the daemon is killed right after."""
        for keeper in list(self._keepers):
            await keeper(event.seq)

    def resume(self, since: int | None, topics: frozenset[str],
               boot: str | None = None) -> Resume:
        """Where a subscriber resuming after `since` starts. A `since` of another run (a
        different `boot`, or a number this run has not reached) resumes before this run's
        first event, so what it missed is a gap."""
        if since is None:
            return Resume(self._seq, None, 0)
        if (boot is not None and boot != self.boot) or since > self._seq:
            since = min(since, self.first_seq - 2)
        oldest = self.oldest
        gap = Gap(since + 1, oldest - 1) if since + 1 < oldest else None
        start = max(since + 1, oldest)
        buffered = sum(1 for e in self._events_from(start) if e.topic in topics)
        return Resume(since, gap, buffered)

    def read_after(self, after: int, topics: frozenset[str]) -> Event | Gap | None:
        """For a subscriber that has everything up to `after`: the gap if what follows is no
        longer buffered, else the next buffered event of its topics, else None (caught up)."""
        oldest = self.oldest
        if after + 1 < oldest:
            return Gap(after + 1, oldest - 1)
        for event in self._events_from(after + 1):
            if event.topic in topics:
                return event
        return None

    def _events_from(self, seq: int) -> Iterator[Event]:
        buffer = self._buffer
        for index in range(self._start + max(0, seq - self.oldest), len(buffer)):
            yield buffer[index]
