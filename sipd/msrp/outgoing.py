"""One of our messages on its way out: cut into chunks, and what its chunks have heard back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .headers import Headers


class BodySource(Protocol):
    """A body read piece by piece (a file): `size` bytes, `read(n)` the next at most n."""

    size: int

    def read(self, n: int) -> bytes: ...


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self._bytes = data
        self._data = memoryview(data)
        self.size = len(data)
        self._offset = 0

    def read(self, n: int) -> bytes:
        return bytes(self.view(n))

    def view(self, n: int) -> bytes | memoryview:
        """The next at most n bytes without a copy (they are copied once, into the write)."""
        if self._offset == 0 and n >= self.size and isinstance(self._bytes, bytes):
            self._offset = self.size
            return self._bytes  # a message in one chunk goes as it is
        piece = self._data[self._offset:self._offset + n]
        self._offset += len(piece)
        return piece


@dataclass
class Chunk:
    start: int  # from 1
    data: bytes | memoryview
    last: bool


class OutgoingMessage:
    def __init__(self, message_id: str, source: BodySource, content_type: str | None,
                 success_report: bool, failure_report: str, headers: Headers) -> None:
        self.message_id = message_id
        self.source = source
        self.size = source.size
        self.content_type = content_type
        self.success_report = success_report
        self.failure_report = failure_report
        self.headers = headers
        self.next_start = 1
        self.outstanding = 0  # chunks waiting for their response
        self.aborted = False
        self.silent = False  # no outcome events (the empty SEND that binds a connection)
        self.finished = False  # the outcome was told
        self.delivered = False
        self.report_deadline: float | None = None
        self._reported: list[tuple[int, int]] = []
        # The header lines of its SENDs that do not change from chunk to chunk (after the
        # paths; Byte-Range follows), the extra ones of its first chunk, its Content-Type.
        head = f"Message-ID: {message_id}\r\n"
        if success_report:
            head += "Success-Report: yes\r\n"
        if failure_report != "yes":
            head += f"Failure-Report: {failure_report}\r\n"
        self.head_text = head
        self.extra_text = "".join(f"{name}: {value}\r\n" for name, value in headers)
        self.type_text = f"Content-Type: {content_type}\r\n" if content_type else ""
        values = f"{message_id}{content_type}"
        if "\r" in values or "\n" in values or (headers and any(
                "\r" in text or "\n" in text for pair in headers for text in pair)):
            raise ValueError(f"a header of message {message_id!r} holds a line break")

    @property
    def all_sent(self) -> bool:
        return self.next_start > self.size and (self.size > 0 or self.next_start > 1)

    def next_chunk(self, chunk_size: int) -> Chunk:
        start = self.next_start
        source = self.source
        data: bytes | memoryview = b""
        if self.size:
            data = source.view(chunk_size) if isinstance(source, BytesSource) \
                else source.read(chunk_size)
        if start + len(data) - 1 < self.size and not data:
            raise ValueError(f"body of message {self.message_id} ended early at byte {start}")
        self.next_start = start + max(len(data), 1) if not data else start + len(data)
        return Chunk(start, data, self.next_start > self.size)

    def add_success_range(self, first: int, last: int) -> bool:
        """A success REPORT covered first..last; True when the whole message is covered."""
        self._reported.append((first, last))
        self._reported.sort()
        position = 1
        for a, b in self._reported:
            if a > position:
                return False
            position = max(position, b + 1)
        return position > self.size
