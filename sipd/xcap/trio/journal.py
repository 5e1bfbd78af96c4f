"""The offline journal: edits waiting for the XCAP server, on disk, in order.

An append-only file of JSON lines, each written with one write() and fsynced before the edit
counts as accepted:
    {"seq": 7, "op": {...}}      an edit (an operation's to_json)
    {"done": 7}                  edit 7 landed, or the server refused it for good
A process killed at any point leaves at worst a torn last line, which is ignored when the file
is read back (its edit had not been acknowledged to anyone). When nothing is pending and the
file has grown past `compact_after` bytes it is replaced by an empty one (atomically).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import trio

from sipd.settings.atomic import fsync_directory
from sipd.xcap.errors import XcapEditError
from sipd.xcap.operations import _Operation, operation_from_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    op: _Operation


class Journal:
    def __init__(self, path: Path, *, compact_after: int = 256 * 1024) -> None:
        self.path = Path(path)
        self.compact_after = compact_after
        self._pending: list[JournalEntry] = []
        self._next_seq = 1
        #: edits found in the file that are no longer understood (reported by the caller)
        self.unreadable: list[str] = []
        self._writing = trio.Lock()
        self._load()

    @property
    def pending(self) -> list[JournalEntry]:
        return list(self._pending)

    def __len__(self) -> int:
        return len(self._pending)

    def append(self, op: _Operation) -> JournalEntry:
        entry = JournalEntry(self._next_seq, op)
        self._write_line({"seq": entry.seq, "op": op.to_json()})
        self._next_seq += 1
        self._pending.append(entry)
        return entry

    def done(self, seq: int) -> None:
        if not any(entry.seq == seq for entry in self._pending):
            return
        self._pending = [entry for entry in self._pending if entry.seq != seq]
        self._write_line({"done": seq})
        if not self._pending and self.path.stat().st_size >= self.compact_after:
            self._truncate()

    # The daemon's way: the same records, written and fsynced in a worker thread (an fsync
    # takes milliseconds, longer on a busy disk, and the event loop serves calls and SIP
    # meanwhile), one at a time and in order, shielded: a record on disk is also in memory.

    async def append_durably(self, op: _Operation) -> JournalEntry:
        with trio.CancelScope(shield=True):
            async with self._writing:
                entry = JournalEntry(self._next_seq, op)
                self._next_seq += 1
                record = {"seq": entry.seq, "op": op.to_json()}
                await trio.to_thread.run_sync(self._write_line, record)
                self._pending.append(entry)
        return entry

    async def done_durably(self, seq: int) -> None:
        if not any(entry.seq == seq for entry in self._pending):
            return
        self._pending = [entry for entry in self._pending if entry.seq != seq]
        with trio.CancelScope(shield=True):
            async with self._writing:
                done: dict[str, object] = {"done": seq}
                await trio.to_thread.run_sync(self._write_line, done)
                if not self._pending and self.path.stat().st_size >= self.compact_after:
                    await trio.to_thread.run_sync(self._truncate)

    # -- file ----------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        entries: dict[int, JournalEntry] = {}
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                if "done" in record:
                    entries.pop(int(record["done"]), None)
                    continue
                seq = int(record["seq"])
                self._next_seq = max(self._next_seq, seq + 1)
                entries[seq] = JournalEntry(seq, operation_from_json(record["op"]))
            except XcapEditError as exc:
                self.unreadable.append(f"line {number}: {exc}")
            except (ValueError, KeyError, TypeError):
                if number == len(lines):  # a torn last line: killed while writing it
                    log.info("ignoring the torn last line of %s", self.path)
                else:
                    self.unreadable.append(f"line {number}: not a journal record")
        self._pending = [entries[seq] for seq in sorted(entries)]
        if data and not data.endswith(b"\n"):
            # Finish the torn line so the next record starts on a line of its own.
            self._write_raw(b"\n")

    def _write_line(self, record: dict[str, object]) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
        self._write_raw(line)

    def _write_raw(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_directory(self.path.parent)

    def _truncate(self) -> None:
        temp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, self.path)
        fsync_directory(self.path.parent)
