"""An incoming file: MSRP chunks written into `<name>.part` in the download folder, the hash
checked over the whole file, then renamed to a name nothing else holds.

    receiver = await FileReceiver.create(folder, selector)          # or resume=record
    answer_range = receiver.range                                    # a=file-range to ask for
    async for event in connection.events:
        if isinstance(event, ChunkReceived):
            try:
                await receiver.write(event.start, event.data, event.total)
            except TransferRefused as refused:                       # disk full, a lying size
                connection.refuse_incoming(event.message_id, refused.status, refused.reason)
                ...                                                  # end the stream with it
            if receiver.complete:
                path = await receiver.finish()                       # TransferFailed: hash
    await receiver.abort(keep=True)        # cut: keep the part for a resume (its PartRecord)

Writes are gathered up to `flush_bytes` (1 MiB) and written by a worker thread (pwritev); the
caller waits for that write, which is the back-pressure: the MSRP connection stops reading
when its owner stops taking events. While the file arrives in order its hash is kept up to
date in the same thread, so the end needs no second pass; a resumed part is hashed from disk
first, and data out of order makes the end hash the whole part again.

A full disk (ENOSPC, EDQUOT, EFBIG) or any other write error removes the part and raises
TransferRefused with the reason; a hash mismatch or a file that is not whole at the end
removes the part and raises TransferFailed. The final name is taken with link() (it fails
when the name exists: a file that appeared meanwhile is not overwritten, the next free
`name (N).ext` is taken); file systems without hard links get a checked rename.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import time
from pathlib import Path

import trio

from ..naming import candidate_names, inside, part_name, safe_name
from ..receiving import IncomingFile, TransferRefused
from ..resume import PartRecord, needed_range
from ..sdp import FileRange
from ..selector import FileHash, FileSelector
from .hashing import hash_sync

FLUSH_BYTES = 1024 * 1024
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class TransferFailed(Exception):
    """The file arrived but is not the one offered (hash mismatch), or is not whole."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FileReceiver:
    def __init__(self, folder: str, name: str, fd: int, selector: FileSelector,
                 incoming: IncomingFile, range: FileRange) -> None:
        self.folder = folder
        self.name = name  # the final name it should get (another if that is taken by then)
        self.part = part_name(name)
        self.fd = fd
        self.selector = selector
        self.incoming = incoming
        self.range = range  # what we ask the sender for (a=file-range)
        self.flush_bytes = FLUSH_BYTES
        self.path: str | None = None  # the final path, once finished
        self.remote = ""  # the party a pull asked the file of (kept in its part's record)
        self._pending: list[bytes] = []
        self._pending_offset = 0
        self._pending_size = 0
        self._hasher: hashlib._Hash | None = None
        self._hashed = 0  # octets from the start of the file the hasher has seen
        self._closed = False

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    async def create(cls, folder: str | os.PathLike[str], selector: FileSelector, *,
                     resume: PartRecord | None = None) -> FileReceiver:
        """A receiver for the file `selector` describes (without a size: the whole file, as
        long as the message is), in `folder` (created if missing). With `resume` (a record of
        the same file), its part is kept and `range` asks only for the rest. OSError when the
        folder cannot be written."""
        size = selector.size
        folder = os.fspath(folder)
        if resume is not None and size is not None:
            opened = await trio.to_thread.run_sync(_open_part, folder, resume)
            if opened is not None:
                fd, held = opened
                incoming = IncomingFile(size, needed_range(held, size), held=held)
                receiver = cls(folder, resume.name, fd, selector, incoming, incoming.range)
                receiver.part = resume.part
                receiver.remote = resume.remote
                if held:
                    await receiver._hash_kept(held)
                return receiver
        name, fd = await trio.to_thread.run_sync(_create_part, folder, selector.name)
        incoming = IncomingFile(size)
        receiver = cls(folder, name, fd, selector, incoming, incoming.range)
        receiver._hasher = _new_hasher(selector.hash)
        return receiver

    async def _hash_kept(self, held: int) -> None:
        """Starts the hash with the kept octets, read from the part (the end then hashes only
        what arrives; a part that cannot be read is hashed whole at the end instead)."""
        hasher = _new_hasher(self.selector.hash)
        if hasher is None:
            return
        try:
            await trio.to_thread.run_sync(_feed_from_file, hasher,
                                          inside(self.folder, self.part), held)
        except OSError:
            return
        self._hasher, self._hashed = hasher, held

    # -- data ----------------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.incoming.complete and not self._pending

    @property
    def transferred(self) -> int:
        return self.incoming.transferred

    async def write(self, start: int, data: bytes, total: int | None) -> None:
        """One chunk (Byte-Range `start` and `total` as it came). TransferRefused when it
        cannot be taken (see the module's documentation); the part is gone then."""
        if self._closed:
            raise TransferRefused("the transfer is over")
        try:
            offset = self.incoming.place(start, len(data), total)
        except TransferRefused:
            await self._discard()
            raise
        if not data:
            return  # the one chunk of an empty file: nothing to write
        if self._pending and offset != self._pending_offset + self._pending_size:
            await self._flush()
        if not self._pending:
            self._pending_offset = offset
        self._pending.append(data)
        self._pending_size += len(data)
        self.incoming.add(offset, len(data))
        if self._pending_size >= self.flush_bytes or self.incoming.complete:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        pieces, offset = self._pending, self._pending_offset
        self._pending, self._pending_size = [], 0
        hasher = self._hasher if offset == self._hashed else None
        if hasher is None:
            self._hasher = None  # out of order or repeated: the end hashes the whole part
        try:
            await trio.to_thread.run_sync(_write_pieces, self.fd, pieces, offset, hasher)
        except OSError as exc:
            await self._discard()
            if exc.errno in _DISK_FULL:
                raise TransferRefused(f"disk full ({exc.strerror or exc}) writing "
                                      f"{self.name} in {self.folder}") from exc
            raise TransferRefused(f"cannot write {self.name} in {self.folder}: "
                                  f"{exc.strerror or exc}") from exc
        if hasher is not None:
            self._hashed = offset + sum(map(len, pieces))

    # -- the end -------------------------------------------------------------------------------

    async def finish(self) -> str:
        """Verifies the whole file and gives it its final name; returns its path.
        TransferFailed (part removed) when it is not whole or its hash is not the offered one."""
        await self._flush()
        if not self.incoming.complete:
            await self._discard()
            raise TransferFailed(f"incomplete file: {self.incoming.transferred} of "
                                 f"{self.incoming.size} bytes")
        expected = self.selector.hash
        if expected is not None and expected.known:
            if self._hasher is not None and self._hashed == self.incoming.size:
                got = FileHash(expected.algorithm, self._hasher.digest())
            else:
                part = inside(self.folder, self.part)
                got = await trio.to_thread.run_sync(
                    lambda: hash_sync(part, expected.algorithm, length=self.incoming.size))
            if got != expected:
                await self._discard()
                raise TransferFailed(f"hash mismatch: the file's {got} is not the offered "
                                     f"{expected}")
        await trio.to_thread.run_sync(os.close, self.fd)
        self._closed = True
        self.path = await trio.to_thread.run_sync(_publish, self.folder, self.part, self.name,
                                                  self.selector.name)
        return self.path

    async def abort(self, *, keep: bool = False) -> PartRecord | None:
        """The transfer stops (cut, cancelled). `keep`: what arrived stays for a resume, and
        its record is returned (None when nothing useful arrived, or there is no hash to prove
        a later offer is the same file: the part is removed then)."""
        if self._closed:
            return None
        with trio.CancelScope(shield=True):
            try:
                await self._flush()
            except TransferRefused:
                return None
            held = self.incoming.contiguous
            if keep and held and self.selector.hash is not None and self.selector.hash.known \
                    and self.selector.size is not None:  # sizeless: no resume (same_file)
                await trio.to_thread.run_sync(os.fsync, self.fd)
                await trio.to_thread.run_sync(os.close, self.fd)
                self._closed = True
                return self.record()
            await self._discard()
        return None

    @property
    def written(self) -> int:
        """Octets from the start of the file without a gap that are in the part (not waiting
        to be written): what a kept part is worth."""
        held = self.incoming.contiguous
        return min(held, self._pending_offset) if self._pending else held

    def record(self) -> PartRecord:
        """What a resume needs to know about this part."""
        return PartRecord(self.folder, self.part, self.name, self.selector, self.written,
                          time.time(), self.remote)

    async def _discard(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending, self._pending_size = [], 0
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_close_and_remove, self.fd,
                                          inside(self.folder, self.part))


def _new_hasher(file_hash: FileHash | None) -> hashlib._Hash | None:
    return file_hash.new() if file_hash is not None and file_hash.known else None


# -- blocking helpers (worker threads) -----------------------------------------------------------

def _create_part(folder: str, offered_name: str | None) -> tuple[str, int]:
    """The first free name (no file and no part of that name) and its new, empty part."""
    os.makedirs(folder, exist_ok=True)
    for candidate in candidate_names(safe_name(offered_name)):
        if os.path.lexists(inside(folder, candidate)):
            continue
        try:
            fd = os.open(inside(folder, part_name(candidate)),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o666)
        except FileExistsError:
            continue  # another transfer of a file with this name is under way
        return candidate, fd
    raise AssertionError("candidate_names never ends")


def _open_part(folder: str, record: PartRecord) -> tuple[int, int] | None:
    """The kept part (descriptor, usable octets), or None when it is gone or unusable."""
    try:
        fd = os.open(inside(folder, record.part), os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (OSError, ValueError):
        return None
    size = os.fstat(fd).st_size
    return fd, record.usable(size)


def _feed_from_file(hasher: hashlib._Hash, path: str, length: int) -> None:
    with open(path, "rb", buffering=0) as file:
        buffer = bytearray(1024 * 1024)
        view = memoryview(buffer)
        done = 0
        while done < length:
            count = file.readinto(view[:min(len(buffer), length - done)])
            if not count:
                raise OSError(f"{path} has only {done} of {length} bytes")
            hasher.update(view[:count])
            done += count


def _write_pieces(fd: int, pieces: list[bytes], offset: int,
                  hasher: hashlib._Hash | None) -> None:
    views = [memoryview(piece) for piece in pieces]
    while views:
        written = os.pwritev(fd, views, offset)
        if written == 0:
            raise OSError(errno.EIO, "nothing written")
        offset += written
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]
    if hasher is not None:
        for piece in pieces:
            hasher.update(piece)


def _publish(folder: str, part: str, preferred: str, offered: str | None) -> str:
    """Gives the verified part a final name that nothing holds: `preferred` (the name chosen
    at the start), else the next free `name (N).ext` of the offered name whose part is not
    another transfer's. Returns the path."""
    source = inside(folder, part)
    base = safe_name(offered)
    candidates = itertools.chain([preferred], (
        c for c in candidate_names(base)
        if c != preferred and not os.path.lexists(inside(folder, part_name(c)))))
    for candidate in candidates:
        target = inside(folder, candidate)
        try:
            os.link(source, target)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (vfat, some FUSE): rename if the name is free
            if os.path.lexists(target):
                continue
            os.rename(source, target)
            return target
        os.unlink(source)
        return target
    raise AssertionError("candidate_names never ends")


def _close_and_remove(fd: int, path: str) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass
