"""Files over a real MSRP connection pair on 127.0.0.1 (TCP and TLS): read piece by piece by
the sender, written to a .part, verified and renamed by the receiver; a full disk (a real
1 MiB tmpfs), a hash mismatch, a resume after a cut connection."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import trio

from sipd.files.receiving import TransferRefused
from sipd.files.selector import FileHash, FileSelector
from sipd.files.trio.hashing import hash_file
from sipd.files.trio.receiver import FileReceiver, TransferFailed
from sipd.files.trio.sender import FileRangeSource, describe_file, guess_type
from sipd.msrp.events import ChunkReceived, MessageDelivered, MessageFailed
from sipd.msrp.trio.connection import MsrpConnection
from sipd.msrp.trio.endpoint import DIRECT_CHUNK_SIZE
from tests.msrp.pairs import connection_pair


class CountingSource(FileRangeSource):
    """Remembers the largest read the MSRP session asked for."""

    largest = 0

    def read(self, n: int) -> bytes:
        data = super().read(n)
        CountingSource.largest = max(CountingSource.largest, len(data))
        return data




async def receive(connection: MsrpConnection, receiver: FileReceiver, *,
                  stop_after: int | None = None) -> str | None:
    """Writes incoming chunks until the file is whole and verified (its final path; the
    sender gets its success REPORT then) or `stop_after` octets arrived (None)."""
    if receiver.complete and receiver.incoming.size:  # resumed whole; an empty file waits
        return await receiver.finish()           # for its one chunk, to confirm it
    async for event in connection.events:
        if isinstance(event, ChunkReceived):
            await receiver.write(event.start, event.data, event.total)
            if receiver.complete:
                path = await receiver.finish()
                connection.confirm_incoming(event.message_id)
                return path
            if stop_after is not None and receiver.transferred >= stop_after:
                return None
    raise AssertionError("the connection ended before the file was whole")


async def outcome(connection: MsrpConnection, message_id: str):
    async for event in connection.events:
        if isinstance(event, (MessageDelivered, MessageFailed)) and \
                event.message_id == message_id:
            return event
    raise AssertionError("no outcome")


def make_file(path: Path, size: int) -> Path:
    with open(path, "wb") as file:
        left = size
        block = os.urandom(min(size, 1024 * 1024))
        while left:
            file.write(block[:left])
            left -= min(left, len(block))
    return path


@pytest.mark.parametrize("transport", ["tcp", "tls"])
@pytest.mark.parametrize("size", [0, 1, 10 * 1024 * 1024])
async def test_a_file_arrives_whole_and_verified(tmp_path, transport, size):
    source_path = make_file(tmp_path / "the file.bin", size)
    selector = await describe_file(source_path)
    assert selector.hash == FileHash.sha1(hashlib.sha1(source_path.read_bytes()).digest())
    assert selector.size == size and selector.name == "the file.bin"
    downloads = tmp_path / "downloads"
    async with trio.open_nursery() as nursery:
        sender, connection = await connection_pair(nursery, tmp_path, transport)
        receiver = await FileReceiver.create(downloads, selector)
        assert receiver.range.start == 1
        assert sorted(os.listdir(downloads)) == ["the file.bin.part"]
        CountingSource.largest = 0
        source = CountingSource.open(source_path)
        # an empty file is an empty SEND with a Content-Type: a message, with its REPORT
        message_id = sender.send_message(source, selector.type, success_report=True)
        with trio.fail_after(60):
            path = await receive(connection, receiver)
            delivered = await outcome(sender, message_id)
        source.close()
        assert isinstance(delivered, MessageDelivered)
        nursery.cancel_scope.cancel()
    assert path == str(downloads / "the file.bin")
    assert sorted(os.listdir(downloads)) == ["the file.bin"]
    got = await hash_file(path)
    assert got == selector.hash and (await trio.Path(path).stat()).st_size == size
    assert CountingSource.largest <= DIRECT_CHUNK_SIZE  # the file went piece by piece


async def test_a_taken_name_is_not_overwritten(tmp_path):
    source_path = make_file(tmp_path / "a.txt", 1000)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "a.txt").write_bytes(b"mine")
    (downloads / "a (1).txt.part").write_bytes(b"another transfer's")
    selector = await describe_file(source_path)
    async with trio.open_nursery() as nursery:
        sender, connection = await connection_pair(nursery, tmp_path, "tcp")
        receiver = await FileReceiver.create(downloads, selector)
        assert receiver.name == "a (2).txt"
        (downloads / "a (2).txt").write_bytes(b"appeared meanwhile")
        sender.send_message(FileRangeSource.open(source_path), selector.type)
        with trio.fail_after(20):
            path = await receive(connection, receiver)
        nursery.cancel_scope.cancel()
    assert path == str(downloads / "a (3).txt")
    assert await trio.Path(downloads / "a.txt").read_bytes() == b"mine"
    assert await trio.Path(downloads / "a (2).txt").read_bytes() == b"appeared meanwhile"
    assert await trio.Path(path).read_bytes() == await trio.Path(source_path).read_bytes()


async def test_a_hostile_name_lands_inside_the_folder(tmp_path):
    source_path = make_file(tmp_path / "x", 10)
    selector = FileSelector(name="../../escape\x00.sh", size=10,
                            hash=(await describe_file(source_path)).hash)
    downloads = tmp_path / "deep" / "downloads"
    async with trio.open_nursery() as nursery:
        sender, connection = await connection_pair(nursery, tmp_path, "tcp")
        receiver = await FileReceiver.create(downloads, selector)
        sender.send_message(FileRangeSource.open(source_path), "application/x-sh")
        with trio.fail_after(20):
            path = await receive(connection, receiver)
        nursery.cancel_scope.cancel()
    assert path == str(downloads / "escape.sh")
    assert sorted(p.name for p in tmp_path.rglob("*escape*")) == ["escape.sh"]


async def test_a_hash_mismatch_fails_and_leaves_nothing(tmp_path):
    source_path = make_file(tmp_path / "f.bin", 200_000)
    selector = FileSelector(name="f.bin", size=200_000, hash=FileHash.sha1(bytes(20)))
    downloads = tmp_path / "downloads"
    async with trio.open_nursery() as nursery:
        sender, connection = await connection_pair(nursery, tmp_path, "tls")
        receiver = await FileReceiver.create(downloads, selector)
        sender.send_message(FileRangeSource.open(source_path), "application/octet-stream")
        with trio.fail_after(20), pytest.raises(TransferFailed, match="hash mismatch"):
            await receive(connection, receiver)
        nursery.cancel_scope.cancel()
    assert os.listdir(downloads) == []


async def test_more_bytes_than_the_selector_said_are_refused(tmp_path):
    source_path = make_file(tmp_path / "f.bin", 300_000)
    selector = await describe_file(source_path)
    lying = FileSelector(name="f.bin", size=100_000, hash=selector.hash)
    downloads = tmp_path / "downloads"
    async with trio.open_nursery() as nursery:
        sender, connection = await connection_pair(nursery, tmp_path, "tcp")
        receiver = await FileReceiver.create(downloads, lying)
        message_id = sender.send_message(FileRangeSource.open(source_path), selector.type,
                                         success_report=True)
        with trio.fail_after(20):
            with pytest.raises(TransferRefused, match="more than the 100000 bytes") as refused:
                await receive(connection, receiver)
            connection.refuse_incoming(message_id, refused.value.status, refused.value.reason)
            failed = await outcome(sender, message_id)
        nursery.cancel_scope.cancel()
    assert isinstance(failed, MessageFailed) and failed.code == 413
    assert os.listdir(downloads) == []


async def test_a_cut_transfer_resumes_with_only_the_missing_range(tmp_path):
    size = 3 * 1024 * 1024 + 123
    source_path = make_file(tmp_path / "big.bin", size)
    selector = await describe_file(source_path)
    downloads = tmp_path / "downloads"
    async with trio.open_nursery() as nursery:
        sender, connection = await connection_pair(nursery, tmp_path / "1", "tcp")
        receiver = await FileReceiver.create(downloads, selector)
        sender.send_message(FileRangeSource.open(source_path), selector.type)
        with trio.fail_after(20):
            assert await receive(connection, receiver, stop_after=size // 2) is None
        await sender.close("cut")
        record = await receiver.abort(keep=True)
        nursery.cancel_scope.cancel()
    assert record is not None and record.held >= size // 2 and record.held < size
    assert os.listdir(downloads) == ["big.bin.part"]

    async with trio.open_nursery() as nursery:
        sender, connection = await connection_pair(nursery, tmp_path / "2", "tls")
        receiver = await FileReceiver.create(downloads, selector, resume=record)
        assert receiver.range.start == record.held + 1 and receiver.range.stop == size
        source = FileRangeSource.open(source_path, receiver.range)
        assert source.size == size - record.held
        sender.send_message(source, selector.type)
        with trio.fail_after(20):
            path = await receive(connection, receiver)
        nursery.cancel_scope.cancel()
    assert path == str(downloads / "big.bin")
    assert await hash_file(path) == selector.hash
    assert os.listdir(downloads) == ["big.bin"]


async def test_a_kept_part_without_a_hash_is_not_kept(tmp_path):
    downloads = tmp_path / "downloads"
    receiver = await FileReceiver.create(downloads, FileSelector(name="n", size=10))
    await receiver.write(1, b"12345", 10)
    assert await receiver.abort(keep=True) is None
    assert os.listdir(downloads) == []


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB tmpfs (root may mount one; skipped, saying why, when it cannot)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                             str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk test: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_a_full_disk_refuses_the_transfer_and_removes_the_part(tmp_path, small_disk):
    source_path = make_file(tmp_path / "too big.bin", 3 * 1024 * 1024)
    selector = await describe_file(source_path)
    async with trio.open_nursery() as nursery:
        sender, connection = await connection_pair(nursery, tmp_path, "tcp")
        receiver = await FileReceiver.create(small_disk, selector)
        message_id = sender.send_message(FileRangeSource.open(source_path), selector.type,
                                         success_report=True)
        with trio.fail_after(20):
            with pytest.raises(TransferRefused, match="disk full") as refused:
                await receive(connection, receiver)
            connection.refuse_incoming(message_id, refused.value.status, refused.value.reason)
            failed = await outcome(sender, message_id)
        nursery.cancel_scope.cancel()
    assert isinstance(failed, MessageFailed) and failed.code == 413
    assert "disk full" in failed.reason
    assert os.listdir(small_disk) == []


def test_guess_type():
    assert guess_type("a.pdf") == "application/pdf"
    assert guess_type("a.tar.gz") == "application/gzip"
    assert guess_type("noextension") == "application/octet-stream"


async def test_a_record_counts_only_what_is_written(tmp_path):
    receiver = await FileReceiver.create(tmp_path, FileSelector(name="n", size=3 * 1024 * 1024,
                                                                hash=FileHash.sha1(bytes(20))))
    await receiver.write(1, b"a" * 1000, None)
    assert receiver.incoming.contiguous == 1000 and receiver.record().held == 0
    await receiver.write(1001, b"b" * (1024 * 1024), None)  # past 1 MiB: written out
    assert receiver.record().held == 1000 + 1024 * 1024
    record = await receiver.abort(keep=True)
    assert record is not None and record.held == 1000 + 1024 * 1024
