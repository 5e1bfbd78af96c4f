"""One client's event subscriptions: live events into its outbox, replay at the writer's pace.

A subscription starts out catching up: it knows the last event it has (`since`, or the newest
one when it subscribed) and, once its subscribe reply has been written, the writer asks
`next_replayed()` for one frame at a time whenever it is ready to write. That frame is read
from the bus's replay buffer, so a replay of any length costs no queue space and cannot
overflow the client (replayed events never count against its queue). While catching up, live
events of the subscription are not queued: they are in the buffer, and the catch-up reaches
them; if the buffer lets some go before the client reads them, an `events.gap` says so. When
the catch-up finds nothing newer, the subscription is live: from then on the bus hands its
events to `deliver_live` as they are published.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..events import Event, EventBus, Gap, Resume
from .outbox import event_frame, notification


@dataclass(slots=True)
class _Subscription:
    id: int
    topics: frozenset[str]
    after: int  # the newest seq the client has, or has been told it missed
    catching_up: bool = True


class EventFeed:
    def __init__(self, bus: EventBus, deliver_live: Callable[[Event, int], None],
                 replay_ready: Callable[[], None]) -> None:
        self.bus = bus
        self._deliver_live = deliver_live
        self._replay_ready = replay_ready  # wakes the writer
        self._subscriptions: dict[int, _Subscription] = {}
        self._replaying: deque[int] = deque()

    def subscribe(self, topics: list[str] | None, since: int | None,
                  boot: str | None) -> tuple[int, Resume]:
        """A new subscription, catching up from `since` once `start_replay` is called."""
        client_sub = _Subscription(0, frozenset(), 0)

        def deliver(event: Event) -> None:
            if not client_sub.catching_up:
                self._deliver_live(event, client_sub.id)

        sub = self.bus.subscribe(topics, deliver)
        resume = self.bus.resume(since, sub.topics, boot)
        client_sub.id, client_sub.topics, client_sub.after = sub.id, sub.topics, resume.after
        self._subscriptions[sub.id] = client_sub
        return sub.id, resume

    def start_replay(self, sub_id: int) -> None:
        """The subscribe reply is written: the replay (and then live delivery) may begin."""
        if sub_id in self._subscriptions:
            self._replaying.append(sub_id)
            self._replay_ready()

    def unsubscribe(self, sub_id: int) -> bool:
        if self._subscriptions.pop(sub_id, None) is None:
            return False
        return self.bus.unsubscribe(sub_id)

    def close(self) -> None:
        for sub_id in list(self._subscriptions):
            self.unsubscribe(sub_id)

    @property
    def replaying(self) -> bool:
        return bool(self._replaying)

    def next_replayed(self) -> str | None:
        """The next replayed frame (an event or a gap marker) of the subscriptions catching
        up, taken in turn; None when none has anything left to replay."""
        while self._replaying:
            sub = self._subscriptions.get(self._replaying[0])
            if sub is None:
                self._replaying.popleft()
                continue
            found = self.bus.read_after(sub.after, sub.topics)
            if found is None:  # caught up: live from now on
                sub.catching_up = False
                self._replaying.popleft()
                continue
            self._replaying.rotate(-1)
            if isinstance(found, Gap):
                sub.after = found.last
                return notification("events.gap", {"subscription": sub.id, **found.as_dict()})
            sub.after = found.seq
            return event_frame(found, sub.id)
        return None
