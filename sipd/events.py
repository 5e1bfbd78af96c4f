"""The daemon's event bus: domain code publishes, subscribers (RPC clients) receive.

Every event gets the next daemon-wide sequence number and lands in a bounded replay buffer, so
a client that reconnects can ask for what it missed since a sequence number. Delivery to a
subscriber is a synchronous, non-blocking call: a subscriber that cannot keep up decides for
itself what to do (the RPC layer warns and then drops a slow client); the bus never waits.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

# Event name prefix -> topic (a plural noun). DESIGN.md §4.
TOPICS: dict[str, str] = {
    "account": "accounts",
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


Deliver = Callable[[Event], None]


@dataclass(slots=True)
class Subscription:
    id: int
    topics: frozenset[str]
    deliver: Deliver

    def wants(self, event: Event) -> bool:
        return event.topic in self.topics


@dataclass(frozen=True, slots=True)
class Replay:
    """What a subscriber missed: the events still buffered and, if older ones are gone, the gap."""
    events: list[Event]
    gap: tuple[int, int] | None  # first and last missed seq that can no longer be replayed


@dataclass
class EventBus:
    replay_size: int = 1000
    _seq: int = 0
    _buffer: deque[Event] = field(default_factory=deque)
    _subscriptions: dict[int, Subscription] = field(default_factory=dict)
    _ids: Iterable[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def seq(self) -> int:
        """The sequence number of the newest event (0 before the first)."""
        return self._seq

    def resize(self, replay_size: int) -> None:
        self.replay_size = replay_size
        while len(self._buffer) > replay_size:
            self._buffer.popleft()

    def publish(self, name: str, data: dict[str, Any] | None = None) -> Event:
        self._seq += 1
        event = Event(self._seq, time.time(), topic_of(name), name, data or {})
        self._buffer.append(event)
        if len(self._buffer) > self.replay_size:
            self._buffer.popleft()
        for sub in list(self._subscriptions.values()):
            if sub.wants(event):
                try:
                    sub.deliver(event)
                except Exception:  # one broken subscriber must not stop the others
                    log.exception("event subscriber %d failed on %s", sub.id, name)
        return event

    def subscribe(self, topics: Iterable[str] | None, deliver: Deliver,
                  since: int | None = None) -> tuple[Subscription, Replay]:
        """Subscribe to topics (None or empty: all). With `since`, also return what was
        published after that sequence number and is still buffered."""
        wanted = frozenset(topics) if topics else ALL_TOPICS
        unknown = wanted - ALL_TOPICS
        if unknown:
            raise ValueError(f"unknown topics {sorted(unknown)}; known: {sorted(ALL_TOPICS)}")
        sub = Subscription(next(self._ids), wanted, deliver)  # type: ignore[call-overload]
        self._subscriptions[sub.id] = sub
        return sub, self.replay(since, wanted)

    def replay(self, since: int | None, topics: frozenset[str]) -> Replay:
        if since is None or since >= self._seq:
            return Replay([], None)
        oldest = self._buffer[0].seq if self._buffer else self._seq + 1
        gap = (since + 1, oldest - 1) if since + 1 < oldest else None
        events = [e for e in self._buffer if e.seq > since and e.topic in topics]
        return Replay(events, gap)

    def unsubscribe(self, sub_id: int) -> bool:
        return self._subscriptions.pop(sub_id, None) is not None
