"""Waiting for a condition instead of sleeping: every wait is bounded and says what it waited
for when it gives up.

`wait_until` blocks (peer drivers and plain tests use it); `eventually` is its trio twin, for a
condition only polling can see (a file, a process table); `off_loop` runs a blocking wait in a
thread from a trio test. A condition an RPC event reveals is waited for on the peer's event log
instead (`DaemonPeer.wait`, `DaemonPeer.wait_until`), which wakes on each event.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")

# Generous bounds, never assertions on speed: the machines are shared and noisy.
EVENT_TIMEOUT = 30.0


def wait_until(
    check: Callable[[], T], *, timeout: float = EVENT_TIMEOUT, what: str = "a condition",
    interval: float = 0.05,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Call `check` until it returns something truthy, and return that; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = on_timeout() if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}" +
                               (f"\n{detail}" if detail else ""))
        time.sleep(interval)


async def eventually(check: Callable[[], T | Awaitable[T]], *, timeout: float = EVENT_TIMEOUT,
                     what: str, interval: float = 0.05) -> T:
    """`wait_until` for trio: `check` (a function or a coroutine function) until truthy."""
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            last = check()
            if inspect.isawaitable(last):
                last = await last
            if last:
                return last
            await trio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}; last: {last!r}")


async def off_loop(function: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run a blocking driver call (a wait_* method) in a thread, from a trio test.

    The drivers block while they wait; when the sipd under test runs in the test's own trio
    loop, waiting on the loop would stall it.
    """
    return await trio.to_thread.run_sync(functools.partial(function, *args, **kwargs))
