"""The history's trio side: one writer task, reads and deletions, pruning.

Bus events arrive through a synchronous subscription that only queues their statements (the
publisher never waits on the disk). The writer task takes everything queued at once and
applies it in one transaction in a worker thread: while a commit runs, the next batch builds
up. Reads and deletions first wait until everything published before them is committed, so
a client always finds what it was just told about. Every database call goes through one
thread at a time.

A database that cannot be opened or written turns the history off, never the daemon: the
reason is logged and shown in system.state; history methods answer that they are unavailable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from ...events import Event
from .. import queries
from ..database import HistoryBusy, HistoryDatabase, HistoryUnavailable
from ..recorder import TOPICS, Statement, statements_for

log = logging.getLogger(__name__)

T = TypeVar("T")

FILE_NAME = "history.db"
PRUNE_EVERY = 3600.0   # seconds between two prunings (and one at start, one per change)
KEEP_TIMEOUT = 5.0     # longest an acknowledgement waits for the history to store its event
MAX_PENDING = 100_000  # events waiting for a locked or stuck file before history gives up
CLOSE_TIMEOUT = 10.0   # longest the last flush may take when the daemon stops
BUSY_RETRY = 0.2       # seconds between two tries while another process locks the file
DAY = 86400.0


class History:
    def __init__(self, path: Path, keep_days: int = 0) -> None:
        self.path = path
        self.keep_days = keep_days
        self.problem: str | None = None  # why the history is off
        self._database: HistoryDatabase | None = None
        self._pending: list[Event] = []
        self._seen = 0        # seq of the newest event handed to us
        self._committed = 0   # seq up to which everything handed to us is committed
        self._wake = trio.Event()
        self._progress = trio.Event()   # set (and replaced) at each commit or failure
        self._prune_now = trio.Event()
        self._thread = trio.CapacityLimiter(1)
        self._busy_logged = False

    # -- state ----------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._database is not None and self.problem is None

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"enabled": self.enabled, "path": str(self.path),
                                 "keep_days": self.keep_days}
        if self.problem is not None:
            state["reason"] = self.problem
        elif self._database is None:
            state["reason"] = "not open"
        else:
            state["pending"] = len(self._pending)
        return state

    def _turn_off(self, reason: str) -> None:
        if self.problem is None:
            log.error("history is off: %s", reason)
        self.problem = reason
        self._pending = []
        self._signal_progress()

    def _signal_progress(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._thread)

    # -- life -----------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._database = await self._in_thread(HistoryDatabase.open, self.path, time.time())
        except HistoryUnavailable as exc:
            self._turn_off(str(exc))
            return
        log.info("history in %s (keep_days %d)", self.path, self.keep_days)

    async def close(self) -> None:
        """Commit what is still queued, then close the file."""
        if self._database is None:
            return
        if self.enabled:
            await self._commit_pending()
        database, self._database = self._database, None
        await self._in_thread(database.close)

    # -- writing --------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """The bus subscription: queue the event (its statements are made in the writer's
        thread, not in the publisher's call); never blocks."""
        if not self.enabled:
            return
        if len(self._pending) >= MAX_PENDING:
            self._turn_off(f"history database {self.path} has not taken a write for too long "
                           f"({MAX_PENDING} events waiting)")
            return
        self._pending.append(event)
        self._seen = event.seq
        self._wake.set()

    async def write_loop(self) -> None:
        while self.enabled:
            await self._wake.wait()
            self._wake = trio.Event()
            await self._commit_pending()

    async def _commit_pending(self) -> None:
        upto = self._seen
        while self._pending and self._database is not None:
            batch, self._pending = self._pending, []
            try:
                await self._in_thread(_record, self._database, batch)
                break
            except HistoryBusy as exc:
                # wait for the other process; what came meanwhile joins this batch
                self._pending = batch + self._pending
                upto = self._seen
                if not self._busy_logged:
                    log.warning("%s; history writes wait for it", exc)
                    self._busy_logged = True
                await trio.sleep(BUSY_RETRY)
            except HistoryUnavailable as exc:
                self._turn_off(str(exc))
                return
        self._busy_logged = False
        self._committed = max(self._committed, upto)
        self._signal_progress()

    async def _wait_committed(self, seq: int) -> None:
        while self.enabled and self._committed < seq:
            await self._progress.wait()

    async def keep(self, seq: int) -> None:
        """The bus keeper: returns once event `seq` is committed (at once when history is
        off; after KEEP_TIMEOUT at most, so a stuck disk cannot hold the SIP side)."""
        with trio.move_on_after(KEEP_TIMEOUT) as scope:
            await self._wait_committed(seq)
        if scope.cancelled_caught:
            log.warning("history: event %d not stored within %g s; acknowledged anyway", seq,
                        KEEP_TIMEOUT)

    async def caught_up(self) -> None:
        """Returns once everything published so far is committed (or KEEP_TIMEOUT passed)."""
        await self.keep(self._seen)

    # -- reading and deleting -------------------------------------------------------------

    def _ready(self) -> HistoryDatabase:
        if self.problem is not None or self._database is None:
            raise HistoryUnavailable(self.problem or "the history is not open")
        return self._database

    async def _select(self, statement: Statement) -> list[tuple[Any, ...]]:
        self._ready()
        await self.caught_up()
        try:
            return await self._in_thread(self._ready().select, statement)
        except HistoryBusy:
            raise
        except HistoryUnavailable as exc:
            self._turn_off(str(exc))
            raise

    async def sessions(self, flt: queries.Filter, limit: int) -> dict[str, Any]:
        rows = [queries.session_row(r) for r in
                await self._select(queries.sessions_page(flt, limit))]
        page, next_before = queries.page(rows, limit, "start")
        return {"sessions": page, "next": next_before}

    async def messages(self, flt: queries.Filter, limit: int,
                       search: str | None = None) -> dict[str, Any]:
        statement = queries.messages_page(flt, limit, search)  # EmptySearch before any I/O
        rows = [queries.message_row(r) for r in await self._select(statement)]
        page, next_before = queries.page(rows, limit, "time")
        return {"messages": page, "next": next_before}

    async def files(self, flt: queries.Filter, limit: int) -> dict[str, Any]:
        rows = [queries.file_row(r) for r in await self._select(queries.files_page(flt, limit))]
        page, next_before = queries.page(rows, limit, "start")
        return {"files": page, "next": next_before}

    async def _delete(self, statements: list[tuple[str, Statement]]) -> dict[str, int]:
        self._ready()
        await self.caught_up()
        try:
            return await self._in_thread(self._ready().delete, statements)
        except HistoryBusy:
            raise
        except HistoryUnavailable as exc:
            self._turn_off(str(exc))
            raise

    async def delete(self, flt: queries.Filter) -> dict[str, int]:
        counts = await self._delete(queries.deletions(flt))
        log.info("history: deleted %s", counts)
        return counts

    # -- retention ------------------------------------------------------------------------

    def set_keep_days(self, days: int) -> None:
        self.keep_days = days
        self._prune_now.set()

    async def prune(self) -> dict[str, int]:
        """Delete what is older than keep_days (nothing when it is 0: keep forever)."""
        if self.keep_days <= 0 or not self.enabled:
            return {}
        counts = await self._delete(queries.prune(time.time() - self.keep_days * DAY))
        if any(counts.values()):
            log.info("history: pruned rows older than %d days: %s", self.keep_days, counts)
        return counts

    async def prune_loop(self) -> None:
        while self.enabled:
            try:
                await self.prune()
            except HistoryBusy as exc:
                log.warning("%s; pruning waits for its next turn", exc)
            except HistoryUnavailable:
                return  # already turned off, and logged
            with trio.move_on_after(PRUNE_EVERY):
                await self._prune_now.wait()
            self._prune_now = trio.Event()


def _record(database: HistoryDatabase, events: list[Event]) -> None:
    database.write([statement for event in events for statement in statements_for(event)])


@asynccontextmanager
async def open_history(bus: Any, state_dir: Path, keep_days: int) -> AsyncIterator[History]:
    """The history of a daemon for as long as the block runs; what is queued when it ends
    is committed before the file closes."""
    history = History(state_dir / FILE_NAME, keep_days)
    await history.open()
    subscription = bus.subscribe(TOPICS, history.deliver)
    bus.add_keeper(history.keep)
    try:
        async with trio.open_nursery() as nursery:
            if history.enabled:
                nursery.start_soon(history.write_loop)
                nursery.start_soon(history.prune_loop)
            try:
                yield history
            finally:
                nursery.cancel_scope.cancel()
    finally:
        bus.remove_keeper(history.keep)
        bus.unsubscribe(subscription.id)
        with trio.move_on_after(CLOSE_TIMEOUT) as scope:
            scope.shield = True
            await history.close()
