"""Reassembly of one incoming message from its chunks, in any order (RFC 4975 §7.1)."""

from __future__ import annotations

import bisect

from .errors import MsrpParseError
from .headers import Headers


class IncomingMessage:
    """The chunks of one Message-ID so far. `add` raises MsrpParseError (400, or 413 past
    `max_size`) when a chunk contradicts the others or the size limit."""

    def __init__(self, message_id: str, max_size: int | None, keep_data: bool = True) -> None:
        self.message_id = message_id
        self.max_size = max_size
        self.keep_data = keep_data
        self.total: int | None = None
        self.content_type: str | None = None
        self.headers = Headers()
        self._pieces: dict[int, bytes] = {}
        self._covered: list[list[int]] = []  # merged [first, last] byte positions, sorted
        self._last_position: int | None = None  # from the chunk flagged `$`

    @property
    def received(self) -> int:
        return sum(last - first + 1 for first, last in self._covered)

    def add(self, start: int, data: bytes, total: int | None, final: bool,
            content_type: str | None, headers: Headers) -> None:
        if total is not None:
            if self.total is not None and total != self.total:
                raise MsrpParseError(f"Byte-Range total {total} contradicts the earlier "
                                     f"{self.total} of message {self.message_id}")
            self.total = total
        end = start + len(data) - 1
        if self.total is not None and end > self.total:
            raise MsrpParseError(f"chunk ends at byte {end}, past the message's total "
                                 f"{self.total}")
        limit = self.max_size
        if limit is not None and max(end, self.total or 0) > limit:
            raise MsrpParseError(f"message larger than {limit} bytes", 413)
        if final:
            self._last_position = end
        if content_type is not None and (self.content_type is None or start == 1):
            self.content_type = content_type
            self.headers = headers
        if data:
            if self.keep_data and start not in self._pieces:
                self._pieces[start] = data
            self._cover(start, end)

    def _cover(self, first: int, last: int) -> None:
        covered = self._covered
        if covered and covered[-1][1] + 1 >= first and covered[-1][0] <= first:
            covered[-1][1] = max(covered[-1][1], last)  # the usual case: in order
            return
        index = bisect.bisect_left(covered, [first, last])
        covered.insert(index, [first, last])
        merged: list[list[int]] = []
        for interval in covered:
            if merged and interval[0] <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], interval[1])
            else:
                merged.append(interval)
        self._covered = merged

    @property
    def expected_size(self) -> int | None:
        return self.total if self.total is not None else self._last_position

    @property
    def complete(self) -> bool:
        size = self.expected_size
        if size is None:
            return False
        if size == 0:
            return True
        return bool(self._covered) and self._covered[0][0] == 1 and self._covered[0][1] >= size

    def body(self) -> bytes:
        size = self.expected_size or 0
        parts: list[bytes | memoryview] = []
        position = 1
        for start in sorted(self._pieces):
            if position > size:
                break
            data = self._pieces[start]
            if start + len(data) <= position:
                continue
            if position > start or start + len(data) - 1 > size:
                parts.append(memoryview(data)[position - start:size - start + 1])
            else:
                parts.append(data)
            position = start + len(data)
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]  # one chunk: no copy
        return b"".join(parts)
