"""A range of a file as the body of an MSRP message, read piece by piece as the connection
sends it (MsrpSession asks its BodySource for one chunk at a time), so a 200 MB file is never
in memory.

    selector = await describe_file(path)                   # name, type, size, sha-1 (thread)
    source = FileRangeSource.open(path, FileRange(1001, None))
    connection.send_message(source, selector.type or "application/octet-stream")
    ... source.sent    # octets handed to the connection so far
    source.close()     # after the message's outcome

Reads are os.pread of one chunk (256 KiB direct, 2 KiB through a relay) in the event loop's
thread: from the page cache that is microseconds, and the hash computed before the offer has
just read the file. A file that shrinks while it is sent is padded with zeros to the size the
offer promised (the session cannot be told mid-message) and `changed` says why: the receiver's
hash check then fails the transfer, and the owner should abort the message.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

import trio

from ..sdp import FileRange
from ..selector import FileSelector
from .hashing import hash_file

DEFAULT_TYPE = "application/octet-stream"


def guess_type(name: str) -> str:
    """The media type a file's name suggests (application/octet-stream when none)."""
    media_type, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        return {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
                "xz": "application/x-xz", "compress": "application/x-compress"}.get(
                    encoding, DEFAULT_TYPE)
    return media_type or DEFAULT_TYPE


async def describe_file(path: str | os.PathLike[str], *, with_hash: bool = True) -> FileSelector:
    """The a=file-selector of a local file: its base name, guessed type, size and (computed in
    a worker thread) sha-1. OSError when it cannot be read or is not a regular file."""
    path = Path(path)
    info = await trio.to_thread.run_sync(path.stat)
    if not path.is_file():
        raise IsADirectoryError(f"{path} is not a regular file")
    file_hash = await hash_file(path, length=info.st_size) if with_hash else None
    return FileSelector(name=path.name, type=guess_type(path.name), size=info.st_size,
                        hash=file_hash)


class FileRangeSource:
    """An MSRP BodySource: octets `offset` .. `offset + size - 1` (0-based) of an open file."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self.fd = fd
        self.offset = offset
        self.size = size
        self.sent = 0
        self.changed: str | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], range: FileRange | None = None) -> FileRangeSource:
        """The agreed range (None: the whole file) of `path`. OSError when it cannot be read,
        FileAttributeError when the range passes its end."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            resolved = (range or FileRange()).resolve(size)
            assert resolved.stop is not None
            return cls(fd, resolved.start - 1, resolved.stop - resolved.start + 1)
        except BaseException:
            os.close(fd)
            raise

    def read(self, n: int) -> bytes:
        want = min(n, self.size - self.sent)
        if want <= 0:
            return b""
        try:
            data = os.pread(self.fd, want, self.offset + self.sent)
        except OSError as exc:  # never into the connection's writer: the receiver's hash says
            self.changed = f"cannot read the file: {exc.strerror or exc}"
            data = b""
        if len(data) < want and self.changed is None:
            self.changed = (f"the file shrank while it was sent (at byte "
                            f"{self.offset + self.sent + len(data)})")
        if len(data) < want:
            data += bytes(want - len(data))
        self.sent += len(data)
        return data

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
