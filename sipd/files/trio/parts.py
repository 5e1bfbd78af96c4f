"""The kept parts of cut transfers, on disk (a ResumeIndex as JSON, replaced atomically), so a
transfer cut by a dropped connection or a stopped (even killed) daemon resumes when the same
file is offered again.

    store = PartStore(state_dir / "files" / "parts.json")
    await store.load()                       # problems: damaged entries dropped, logged
    record = store.find(offered_selector)    # -> FileReceiver.create(..., resume=record)
    await store.put(receiver.record())       # as the transfer goes (with its progress reports)
    await store.remove(record.folder, record.part)    # finished, failed, or cancelled
    await store.expire()                     # parts older than a week go, with their files

Writes are serialised and run in a worker thread (temp file, fsync, rename: a crash leaves the
old index or the new one).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import trio

from sipd.settings.atomic import write_private_file
from sipd.settings.errors import PersistError

from ..naming import inside
from ..resume import MAX_AGE, PartRecord, ResumeIndex
from ..selector import FileSelector

log = logging.getLogger(__name__)


class PartStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.index = ResumeIndex()
        self._lock = trio.Lock()

    async def load(self) -> list[str]:
        """Reads the index (none yet: empty). Returns what was dropped from it, and why."""
        try:
            text = await trio.to_thread.run_sync(self.path.read_text)
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            return [f"cannot read {self.path}: {exc}"]
        self.index, problems = ResumeIndex.from_json(text)
        for problem in problems:
            log.warning("resume index %s: %s (dropped)", self.path, problem)
        return problems

    def find(self, selector: FileSelector) -> PartRecord | None:
        return self.index.find(selector)

    def find_wanted(self, wanted: FileSelector, remote: str) -> PartRecord | None:
        return self.index.find_wanted(wanted, remote)

    async def put(self, record: PartRecord) -> None:
        self.index.put(record)
        await self._save()

    async def remove(self, folder: str, part: str) -> None:
        if self.index.remove(folder, part) is not None:
            await self._save()

    async def expire(self, now: float | None = None, max_age: float = MAX_AGE) -> int:
        """Forgets the parts older than `max_age` and deletes their files; how many."""
        old = self.index.expired(time.time() if now is None else now, max_age)
        for record in old:
            try:
                await trio.Path(inside(record.folder, record.part)).unlink(missing_ok=True)
            except (OSError, ValueError) as exc:
                log.warning("cannot remove the old part %s: %s", record.part, exc)
        if old:
            await self._save()
        return len(old)

    async def _save(self) -> None:
        async with self._lock:  # the text of the index as it is when this write's turn comes
            await trio.to_thread.run_sync(self._write, self.index.to_json())

    def _write(self, text: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private_file(self.path, text)
        except (OSError, PersistError) as exc:  # a resume is a convenience: the transfer goes on
            log.warning("cannot keep the resume index %s: %s", self.path, exc)
