"""Hashing a file in a worker thread: the digest, progress, a short file, cancellation."""

from __future__ import annotations

import hashlib
import os

import pytest
import trio

from sipd.files.selector import FileHash
from sipd.files.trio.hashing import BLOCK, hash_file


async def test_hash_with_progress(tmp_path):
    data = os.urandom(3 * BLOCK + 5)
    path = tmp_path / "f"
    await trio.Path(path).write_bytes(data)
    seen: list[int] = []
    got = await hash_file(path, progress=seen.append)
    assert got == FileHash.sha1(hashlib.sha1(data).digest())
    assert seen == [BLOCK, 2 * BLOCK, 3 * BLOCK, 3 * BLOCK + 5]
    assert await hash_file(path, "sha-256", length=10) == FileHash(
        "sha-256", hashlib.sha256(data[:10]).digest())
    with pytest.raises(OSError, match="has only"):
        await hash_file(path, length=len(data) + 1)


async def test_a_cancelled_hash_returns_at_once(tmp_path):
    path = tmp_path / "big"
    await trio.Path(path).write_bytes(os.urandom(BLOCK) * 64)
    with trio.move_on_after(0.001) as scope:
        await hash_file(path)
    assert scope.cancelled_caught
