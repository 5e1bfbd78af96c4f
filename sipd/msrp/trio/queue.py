"""The events of one MSRP connection on their way to its owner: a bounded first-in first-out
queue between the connection's tasks (which put) and the owner (which receives).

    queue = EventQueue[Event](256)
    queue.put_nowait(event)            # False when full: then `await queue.put(event)`
    event = await queue.receive()      # or: async for event in queue
    queue.close()                      # the owner gets what is queued, then the end

It stands where a trio memory channel would, for its cost on the chat path: `receive` returns
an event that is already waiting without a schedule point (a memory channel takes one per
event, a task switch for each MSRP event: docs/decisions.md, MSRP), and a put that wakes a
waiting owner reschedules it directly. Receive still is a cancellation point, and it waits
(a schedule point) whenever the queue is empty, which the owner of a busy connection reaches
at least once per `capacity` events. With a `refill` (the connection's read of its own socket,
docs/decisions.md, MSRP), a receive that finds the queue empty first lets the other tasks run
once (a schedule point) and calls it, twice at most, and waits only if it put nothing. After
`close`, receive hands out what was queued and then raises trio.EndOfChannel (`async for`
ends); a put after close is dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")

REFILL_PASSES = 2


class EventQueue(Generic[T]):
    def __init__(self, capacity: int, refill: Callable[[], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        # Called when the owner finds the queue empty, after letting the other tasks run
        # once: the producer may put what it can make at once (a read of a socket that is
        # ready) before the owner waits for a wake-up.
        self.refill = refill
        self._items: deque[T] = deque()
        self._receivers: deque[trio.lowlevel.Task] = deque()  # waiting for an item
        self._putters: deque[trio.lowlevel.Task] = deque()  # waiting for room
        self._closed = False

    # -- the producing side ---------------------------------------------------------------------

    def put_nowait(self, item: T) -> bool:
        """Queues `item` if there is room (True); False when the queue is full. Dropped (True)
        after close: nobody will read it."""
        if self._closed:
            return True
        if len(self._items) >= self.capacity:
            return False
        self._items.append(item)
        if self._receivers:
            trio.lowlevel.reschedule(self._receivers.popleft())
        return True

    async def put(self, item: T) -> None:
        """Queues `item`, waiting for room while the queue is full."""
        while not self.put_nowait(item):
            await self._park(self._putters)

    def close(self) -> None:
        """No more items: receivers get what is queued, then trio.EndOfChannel."""
        self._closed = True
        for waiting in (self._receivers, self._putters):
            while waiting:
                trio.lowlevel.reschedule(waiting.popleft())

    def __len__(self) -> int:
        return len(self._items)

    # -- the owner's side -----------------------------------------------------------------------

    async def receive(self) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._items and self.refill is not None and not self._closed:
            await self._refill()
        while not self._items:
            if self._closed:
                raise trio.EndOfChannel
            await self._park(self._receivers)
        item = self._items.popleft()
        if self._putters:
            trio.lowlevel.reschedule(self._putters.popleft())
        return item

    def __aiter__(self) -> EventQueue[T]:
        return self

    async def __anext__(self) -> T:
        # `receive` written out: a coroutine less per event
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._items and self.refill is not None and not self._closed:
            await self._refill()
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            await self._park(self._receivers)
        item = self._items.popleft()
        if self._putters:
            trio.lowlevel.reschedule(self._putters.popleft())
        return item

    async def _refill(self) -> None:
        """Lets the other tasks run and calls `refill`, twice at most, until an item came: an
        answer made while the other tasks run once (the scheduler's next pass: a peer in the
        same process, a fast one on the same host) is in our socket by the pass after."""
        assert self.refill is not None
        for _ in range(REFILL_PASSES):
            await trio.lowlevel.cancel_shielded_checkpoint()
            self.refill()
            if self._items or self._closed:
                return

    @staticmethod
    async def _park(waiting: deque[trio.lowlevel.Task]) -> None:
        task = trio.lowlevel.current_task()
        waiting.append(task)

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            waiting.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
