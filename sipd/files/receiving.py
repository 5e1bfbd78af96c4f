"""Where the chunks of an incoming file go, and when the file is whole (sans-I/O).

    incoming = IncomingFile(size=52114, range=FileRange(20001, 52114), held=20000)
    offset = incoming.place(byte_range.start, len(data), byte_range.total)  # 0-based, in file
    write(offset, data); incoming.add(offset, len(data))
    incoming.complete          # every octet of the file is there (then check the hash)

The MSRP message carries the agreed range of the file (a=file-range, the whole file without
one). RFC 5547 counts its Byte-Range within the message; some senders count within the file
(python-sipsimple resumes so). Both are taken: a chunk whose Byte-Range total is the file's
size is placed by file position, one whose total is the range's length (or unknown) by message
position. Octets that would land past the file's size — a sender whose message is longer than
its a=file-selector said — are refused (TransferRefused, MSRP status 413), as is a total that
fits neither reading.
"""

from __future__ import annotations

import bisect

from .sdp import FileRange
from .selector import MAX_SIZE


class TransferRefused(Exception):
    """The incoming data cannot be taken; `status` is the MSRP code to answer or report with,
    the message says why (for the peer's REPORT and the session's end)."""

    def __init__(self, reason: str, status: int = 413) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class IncomingFile:
    def __init__(self, size: int | None, range: FileRange | None = None,
                 held: int = 0) -> None:
        """`size`: the file's size from its a=file-selector (None: it gave none; the whole
        file is asked for, and the message's total, once a chunk says it, is the size; a
        full disk is the bound until then); `range`: the agreed a=file-range (None: the
        whole file); `held`: octets 1..held already in a kept part."""
        self._spans: list[list[int]] = []
        if size is None:
            if held or (range is not None and not range.whole):
                raise ValueError("a file of unknown size is received whole")
            self.size: int | None = None
            self.range = FileRange()
            self.message_size: int | None = None
            return
        if size < 0:
            raise ValueError("a file size is not negative")
        self.size = size
        self.range = (range or FileRange()).resolve(size)
        assert self.range.stop is not None
        self.message_size = self.range.stop - self.range.start + 1
        if held:
            self.add(0, min(held, size))

    def place(self, start: int, length: int, total: int | None) -> int:
        """The 0-based file offset of a chunk at Byte-Range `start` (from 1) with `length`
        octets and Byte-Range `total` (None for `*`)."""
        if self.size is None:
            if total is None:
                if start - 1 + length > MAX_SIZE:
                    raise TransferRefused(f"a chunk reaches byte {start - 1 + length}")
                return start - 1
            held = self._spans[-1][1] if self._spans else 0
            if held > total:  # chunks with a `*` total already went past it
                raise TransferRefused(
                    f"Byte-Range total {total} is less than the {held} bytes already sent")
            self.size = self.message_size = total  # known now: what passes it is refused
            self.range = FileRange(1, total)
        if total is not None and total == self.size and total != self.message_size:
            offset = start - 1  # counted within the file
        elif total is None or total == self.message_size:
            offset = self.range.start - 1 + start - 1
        elif total > self.size:
            raise TransferRefused(
                f"the sender sends more than the {self.size} bytes its file-selector said "
                f"(Byte-Range total {total})")
        else:
            raise TransferRefused(
                f"Byte-Range total {total} is neither the file's size {self.size} nor the "
                f"transferred range's {self.message_size}")
        if offset + length > self.size:
            raise TransferRefused(
                f"the sender sends more than the {self.size} bytes its file-selector said "
                f"(a chunk reaches byte {offset + length})")
        return offset

    def add(self, offset: int, length: int) -> None:
        """Octets offset..offset+length-1 (0-based) are written."""
        if length <= 0:
            return
        spans = self._spans
        end = offset + length
        if spans and spans[-1][0] <= offset <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)  # in order: the usual case
            return
        bisect.insort(spans, [offset, end])
        merged: list[list[int]] = []
        for first, last in spans:
            if merged and first <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self._spans = merged

    @property
    def contiguous(self) -> int:
        """Octets held from the start of the file without a gap (what a kept part is worth)."""
        if self._spans and self._spans[0][0] == 0:
            return self._spans[0][1]
        return 0

    @property
    def transferred(self) -> int:
        """Octets of the file held, wherever they are."""
        return sum(end - first for first, end in self._spans)

    @property
    def complete(self) -> bool:
        return self.size is not None and self.contiguous >= self.size
