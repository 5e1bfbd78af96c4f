"""What waits to be written to one client, in order: replies, notifications and live events.

Bounded in frames and in bytes (memory). Nothing here waits or decides: the connection asks
whether a frame fits and chooses what to do when it does not (a reply waits for room, an event
that does not fit means the client is too slow). A frame always fits an empty outbox, however
large: a reply or event bigger than the byte bound must still be deliverable.

Live events are queued as (event, subscription id) and turned into text only when written:
the event's JSON is made once and shared by every client, so a slow client holds a reference,
not a copy. Replayed events are not queued here at all: a catching-up subscription reads the
event bus's buffer when the writer is ready for it (see feed.py).
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..events import Event


@dataclass(slots=True)
class Frame:
    """One queued frame: text, or an event for a subscription; `on_written` runs once the
    writer has taken it (a subscribe reply starts the subscription's replay then)."""
    text: str | None = None
    event: Event | None = None
    subscription: int = 0
    on_written: list[Callable[[], None]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.event.size if self.event is not None else sys.getsizeof(self.text)

    def render(self) -> str:
        if self.event is None:
            assert self.text is not None
            return self.text
        return event_frame(self.event, self.subscription)


def notification(method: str, params: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params},
                      separators=(",", ":"), ensure_ascii=False)


def event_frame(event: Event, subscription: int) -> str:
    # The event's JSON is shared by every client; only the subscription id is theirs.
    return (f'{{"jsonrpc":"2.0","method":"event","params":{event.params_json[:-1]},'
            f'"subscription":{subscription}}}}}')


class Outbox:
    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[tuple[Frame, int]] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    def fits(self, size: int) -> bool:
        """Whether a frame of `size` bytes may be added without passing a bound."""
        return not self._frames or (len(self._frames) < self.max_frames
                                    and self.bytes + size <= self.max_bytes)

    def has_room(self) -> bool:
        """Whether a reply may be added now (it may then pass the byte bound once)."""
        return not self._frames or (len(self._frames) < self.max_frames
                                    and self.bytes < self.max_bytes)

    def filled(self) -> float:
        """How full, as the larger of the two fractions."""
        return max(len(self._frames) / self.max_frames, self.bytes / self.max_bytes)

    def push(self, frame: Frame) -> None:
        size = frame.size
        self._frames.append((frame, size))
        self.bytes += size

    def pop(self) -> Frame | None:
        if not self._frames:
            return None
        frame, size = self._frames.popleft()
        self.bytes -= size
        return frame
