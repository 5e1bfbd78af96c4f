"""The connection's event queue (sipd/msrp/trio/queue.py): order, a full queue holding its
putter until the owner takes an event, close handing out what is queued then the end."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from sipd.msrp.trio.queue import EventQueue


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        EventQueue[int](0)


async def test_a_full_queue_holds_the_putter_until_an_item_is_taken():
    queue = EventQueue[int](2)
    assert queue.put_nowait(1) and queue.put_nowait(2)
    assert not queue.put_nowait(3)  # full
    put_done = trio.Event()

    async def put_three() -> None:
        await queue.put(3)
        put_done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(put_three)
        await trio.testing.wait_all_tasks_blocked()
        assert not put_done.is_set()
        assert await queue.receive() == 1
        await put_done.wait()
    assert [await queue.receive(), await queue.receive()] == [2, 3]


async def test_a_waiting_receiver_gets_the_next_put():
    queue = EventQueue[str](4)
    got: list[str] = []

    async def take() -> None:
        got.append(await queue.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.put_nowait("event")
    assert got == ["event"]


async def test_close_hands_out_what_is_queued_then_ends():
    queue = EventQueue[int](4)
    queue.put_nowait(1)
    queue.put_nowait(2)
    queue.close()
    assert queue.put_nowait(3)  # dropped: nobody reads it any more
    assert [item async for item in queue] == [1, 2]
    with pytest.raises(trio.EndOfChannel):
        await queue.receive()


async def test_close_wakes_a_waiting_receiver_and_a_waiting_putter():
    queue = EventQueue[int](1)
    queue.put_nowait(1)
    ended: list[str] = []

    async def put() -> None:
        await queue.put(2)
        ended.append("put")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(put)
        await trio.testing.wait_all_tasks_blocked()
        queue.close()
    assert ended == ["put"]
    assert [item async for item in queue] == [1]
    receiver = EventQueue[int](1)

    async def receive() -> None:
        with pytest.raises(trio.EndOfChannel):
            await receiver.receive()
        ended.append("receive")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        receiver.close()
    assert ended == ["put", "receive"]


async def test_a_cancelled_receiver_leaves_the_queue_usable():
    queue = EventQueue[int](2)
    with trio.CancelScope() as scope:
        scope.cancel()
        await queue.receive()
    assert scope.cancelled_caught
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.receive)
        await trio.testing.wait_all_tasks_blocked()  # parked, then cancelled: taken off the
        nursery.cancel_scope.cancel()  # waiting list, so the next put wakes nobody gone
    queue.put_nowait(7)
    assert await queue.receive() == 7



async def test_an_empty_queue_asks_its_refill_twice_at_most_then_waits():
    calls: list[str] = []
    queue = EventQueue[str](4, refill=lambda: calls.append("refill"))

    async def put_later() -> None:  # once the owner waits
        await trio.testing.wait_all_tasks_blocked()
        calls.append("put")
        queue.put_nowait("late")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(put_later)
        assert await queue.receive() == "late"
    assert calls == ["refill", "refill", "put"], calls


async def test_what_the_refill_puts_is_received_without_waiting():
    queue = EventQueue[int](4)
    calls: list[int] = []

    def refill() -> None:
        calls.append(1)
        queue.put_nowait(7)

    queue.refill = refill
    assert await queue.receive() == 7
    async for item in queue:
        assert item == 7
        break
    assert len(calls) == 2  # once per empty receive: the first pass brought the item
    queue.put_nowait(1)  # an item waiting: no refill
    assert await queue.receive() == 1 and len(calls) == 2
