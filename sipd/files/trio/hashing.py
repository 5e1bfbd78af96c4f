"""A file's hash computed in a worker thread, so that hashing 200 MB does not stop the event
loop; cancelling the caller stops the thread at its next block.

    file_hash = await hash_file(path)                        # sha-1 of the whole file
    file_hash = await hash_file(path, progress=on_progress)  # on_progress(done) per MiB
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import trio

from ..selector import FileHash

BLOCK = 1024 * 1024


class HashCancelled(Exception):
    pass


def hash_sync(path: str | os.PathLike[str], algorithm: str = "sha-1", *, length: int | None = None,
              stop: threading.Event | None = None,
              progress: Callable[[int], None] | None = None) -> FileHash:
    """The hash of the first `length` octets of `path` (all of it: None), blocking."""
    hasher = FileHash(algorithm, b"").new()
    done = 0
    with open(path, "rb", buffering=0) as file:
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        while length is None or done < length:
            if stop is not None and stop.is_set():
                raise HashCancelled()
            want = BLOCK if length is None else min(BLOCK, length - done)
            count = file.readinto(view[:want])
            if not count:
                break
            hasher.update(view[:count])
            done += count
            if progress is not None:
                progress(done)
    if length is not None and done < length:
        raise OSError(f"{path} has only {done} of {length} bytes")
    return FileHash(algorithm, hasher.digest())


async def hash_file(path: str | os.PathLike[str], algorithm: str = "sha-1", *,
                    length: int | None = None,
                    progress: Callable[[int], None] | None = None) -> FileHash:
    """hash_sync in a worker thread. `progress(done)` is called in the event loop's thread."""
    stop = threading.Event()
    token = trio.lowlevel.current_trio_token()

    def report(done: int) -> None:
        if progress is not None:
            try:
                trio.from_thread.run_sync(progress, done, trio_token=token)
            except trio.RunFinishedError:
                stop.set()

    try:
        return await trio.to_thread.run_sync(
            lambda: hash_sync(path, algorithm, length=length, stop=stop,
                              progress=report if progress is not None else None),
            abandon_on_cancel=True)
    finally:
        stop.set()  # a cancelled caller: the abandoned thread stops at its next block
