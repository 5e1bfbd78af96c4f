"""The bound on new REGISTER attempts out at once (registrar_client.paced): a place is held
until the REGISTER is answered, or for a while at most, so a registrar that never answers
cannot stall every other account."""

from __future__ import annotations

import trio
import trio.testing

from sipd.accounts.registrar_client import paced


def test_an_unanswered_attempt_gives_its_place_back_after_the_hold():
    async def main() -> tuple[float, int]:
        limiter = trio.CapacityLimiter(1)
        answered_at: list[float] = []

        async def never_answered() -> None:
            await trio.sleep_forever()

        async def answered() -> int:
            answered_at.append(trio.current_time())
            return 7

        async with trio.open_nursery() as nursery:
            nursery.start_soon(paced, limiter, 2.0, never_answered)
            await trio.testing.wait_all_tasks_blocked()
            result = await paced(limiter, 2.0, answered)
            assert limiter.borrowed_tokens == 0  # the stalled one no longer holds it
            nursery.cancel_scope.cancel()
        return answered_at[0], result

    answered_at, result = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert answered_at == 2.0 and result == 7


def test_places_come_back_when_answered_or_cancelled():
    async def main() -> None:
        limiter = trio.CapacityLimiter(2)

        async def quick() -> None:
            await trio.sleep(0.01)

        for _ in range(10):  # more than there are places: each gives its place back
            await paced(limiter, 2.0, quick)
        with trio.move_on_after(0.5):
            await paced(limiter, 2.0, trio.sleep_forever)
        assert limiter.borrowed_tokens == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_what_the_work_raises_comes_out_as_it_is():
    async def main() -> None:
        limiter = trio.CapacityLimiter(1)

        async def refused() -> None:
            raise ConnectionRefusedError("refused")

        try:
            await paced(limiter, 2.0, refused)
        except ConnectionRefusedError as error:
            assert str(error) == "refused"
        else:
            raise AssertionError("nothing raised")
        assert limiter.borrowed_tokens == 0

    trio.run(main)


def test_work_no_longer_wanted_when_its_turn_comes_is_not_done():
    async def main() -> list[str]:
        limiter = trio.CapacityLimiter(1)
        done: list[str] = []
        wanted = {"refresh": True}

        async def work(name: str) -> str:
            await trio.sleep(1)
            done.append(name)
            return name

        async with trio.open_nursery() as nursery:
            nursery.start_soon(paced, limiter, 2.0, lambda: work("first"))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(lambda: paced(limiter, 2.0, lambda: work("refresh"),
                                             still_wanted=lambda: wanted["refresh"]))
            await trio.testing.wait_all_tasks_blocked()
            wanted["refresh"] = False  # e.g. the account was stopped meanwhile
        assert limiter.borrowed_tokens == 0
        return done

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == ["first"]


def test_a_limiter_nobody_uses_any_more_is_not_kept_alive_by_the_pacing():
    import gc
    import weakref

    async def main() -> weakref.ref[trio.CapacityLimiter]:
        limiter = trio.CapacityLimiter(1)

        async def answered() -> int:
            return 1

        assert await paced(limiter, 2.0, answered) == 1
        await trio.testing.wait_all_tasks_blocked()  # the keeper task has ended
        return weakref.ref(limiter)

    gone = trio.run(main)
    gc.collect()
    assert gone() is None
