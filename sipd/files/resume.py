"""What a receiver keeps of a cut transfer, and what it asks for when the file comes again.

    index = ResumeIndex.from_json(text)               # the daemon keeps it in its state dir
    record = index.find(offered_selector)             # same hash, size and name
    record = index.find_wanted(asked, remote)         # a pull asked again of the same party
    held = record.usable(actual_part_size)            # what the part is worth now
    answer_range = needed_range(held, size)           # a=file-range of the answer

A part is resumed only for the same file: equal hash (one we can compute), size and name
(FileSelector.same_file) — a part from another file with the same name is never continued.
`held` counts octets from the start of the file without a gap, as flushed to the part; after
a crash the part on disk may be shorter than the record (the record is trusted only as far as
the file reaches) or longer (the extra octets are fetched again). The hash is always checked
over the whole file at the end, so a part that was corrupted on disk fails the transfer
rather than delivering a bad file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import FileAttributeError
from .sdp import FileRange
from .selector import FileSelector, parse_file_selector

MAX_AGE = 7 * 24 * 3600.0  # seconds a part is kept for a resume


def needed_range(held: int, size: int) -> FileRange:
    """The a=file-range that asks for what is missing after `held` octets. A part that looks
    complete (killed before it was verified) still asks for its last octet, so the transfer
    runs and ends with the hash check."""
    if size <= 0:
        return FileRange()
    held = max(0, min(held, size - 1))
    return FileRange(held + 1, size)


@dataclass
class PartRecord:
    """A kept `.part`: in `folder`, named `part`, becoming `name` once verified."""

    folder: str
    part: str
    name: str
    selector: FileSelector
    held: int
    updated: float  # time.time() of the last flush
    remote: str = ""  # the party a pull asked it of ("" for a file pushed to us)

    def usable(self, part_size: int) -> int:
        """Octets of the part to keep, given its size on disk now."""
        return max(0, min(self.held, part_size))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "folder": self.folder, "part": self.part, "name": self.name,
            "selector": self.selector.value(), "held": self.held, "updated": self.updated}
        if self.remote:
            data["remote"] = self.remote
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartRecord:
        """ValueError (or FileAttributeError) when an entry is not one we wrote."""
        fields: dict[str, type | tuple[type, ...]] = {
            "folder": str, "part": str, "name": str, "selector": str, "held": int,
            "updated": (int, float)}
        for key, kind in fields.items():
            if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
                raise ValueError(f"resume entry without a valid {key}")
        selector = parse_file_selector(data["selector"])
        if selector.hash is None or selector.size is None or selector.name is None:
            raise ValueError("resume entry without hash, size and name")
        remote = data.get("remote", "")
        if not isinstance(remote, str):
            raise ValueError("resume entry without a valid remote")
        return cls(data["folder"], data["part"], data["name"], selector,
                   max(0, data["held"]), float(data["updated"]), remote)


class ResumeIndex:
    """The kept parts, found by the file they are of."""

    def __init__(self, records: list[PartRecord] | None = None) -> None:
        self.records: list[PartRecord] = list(records or [])

    def find(self, selector: FileSelector) -> PartRecord | None:
        for record in reversed(self.records):  # the newest first
            if record.selector.same_file(selector):
                return record
        return None

    def find_wanted(self, wanted: FileSelector, remote: str) -> PartRecord | None:
        """The kept part of a pull from `remote` that `wanted` (a pull's selector, often only
        a name) asks for again: its full selector (with the hash) is then offered, with the
        missing range (RFC 5547 §8, the file receiver offers a=file-range)."""
        if wanted.empty or not remote:
            return None
        for record in reversed(self.records):
            if record.remote == remote and wanted.matches(record.selector):
                return record
        return None

    def put(self, record: PartRecord) -> None:
        """Adds or replaces the record of that part."""
        self.remove(record.folder, record.part)
        self.records.append(record)

    def remove(self, folder: str, part: str) -> PartRecord | None:
        for record in self.records:
            if record.folder == folder and record.part == part:
                self.records.remove(record)
                return record
        return None

    def expired(self, now: float, max_age: float = MAX_AGE) -> list[PartRecord]:
        """Removes and returns the records older than `max_age` (their parts can go)."""
        old = [r for r in self.records if now - r.updated > max_age]
        self.records = [r for r in self.records if r not in old]
        return old

    def to_json(self) -> str:
        return json.dumps({"version": 1, "parts": [r.to_dict() for r in self.records]},
                          indent=1)

    @classmethod
    def from_json(cls, text: str) -> tuple[ResumeIndex, list[str]]:
        """The index and what was dropped from it (a damaged file loses its bad entries, or
        everything, never the daemon)."""
        problems: list[str] = []
        try:
            data = json.loads(text)
        except ValueError as exc:
            return cls(), [f"the resume index is not JSON ({exc})"]
        parts = data.get("parts") if isinstance(data, dict) else None
        if not isinstance(parts, list):
            return cls(), ["the resume index has no list of parts"]
        records = []
        for entry in parts:
            try:
                if not isinstance(entry, dict):
                    raise ValueError("resume entry is not an object")
                records.append(PartRecord.from_dict(entry))
            except (ValueError, FileAttributeError) as exc:
                problems.append(str(exc))
        return cls(records), problems
