"""The upload store on a real folder: written under a temporary name and renamed, nothing left
of a refused or cut upload, one upload for one send, deleted when its session ends or when
nobody sent it in time, and a former run's uploads removed at start."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from sipd.events import EventBus
from sipd.files.trio.uploads import UnknownUpload, UploadStore, UploadTooLarge


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def store(folder: Path, clock: Clock, live: set[str] | None = None) -> UploadStore:
    made = UploadStore(folder, keep=lambda: 60, live=lambda s: s in (live or set()),
                       clock=clock)
    await made.start()
    return made


async def test_upload_is_renamed_whole_and_named_safely(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"from before a restart")
    uploads = await store(tmp_path, Clock())
    assert os.listdir(tmp_path) == []
    upload = await uploads.receive(body(b"abc", b"", b"def"), "../../x/.hidden\x00.txt", 100)
    assert upload.name == "hidden.txt" and upload.size == 6
    assert os.listdir(tmp_path) == [upload.id]
    assert upload.path.read_bytes() == b"abcdef"
    assert upload.path.stat().st_mode & 0o777 == 0o600
    assert uploads.state() == {"count": 1, "bytes": 6}


async def test_refused_and_cut_uploads_leave_nothing(tmp_path: Path) -> None:
    uploads = await store(tmp_path, Clock())
    with pytest.raises(UploadTooLarge):
        await uploads.receive(body(b"x" * 60, b"x" * 60), "big", 100)

    async def cut() -> AsyncIterator[bytes]:
        yield b"part"
        raise ConnectionError("client gone")
    with pytest.raises(ConnectionError):
        await uploads.receive(cut(), "cut", 100)
    with trio.move_on_after(0.05):
        async def endless() -> AsyncIterator[bytes]:
            while True:
                yield b"y"
                await trio.sleep(0.01)
        await uploads.receive(endless(), "cancelled", 1000)
    assert os.listdir(tmp_path) == [] and uploads.state()["count"] == 0


async def test_one_send_per_upload_deleted_when_the_session_ends(tmp_path: Path) -> None:
    uploads = await store(tmp_path, Clock(), live={"s1"})
    bus = EventBus()
    bus.subscribe(["sessions"], uploads.session_state)
    upload = await uploads.receive(body(b"data"), "a.txt", 100)
    uploads.take(upload.id)
    with pytest.raises(UnknownUpload):
        uploads.take(upload.id)
    uploads.release(upload.id)      # the send did not start: it may be sent again
    uploads.take(upload.id)
    uploads.bind(upload.id, "s1")
    bus.publish("session.state", {"id": "s2", "state": "ended"})
    assert upload.path.exists()
    bus.publish("session.state", {"id": "s1", "state": "established"})
    assert upload.path.exists()
    bus.publish("session.state", {"id": "s1", "state": "failed"})
    assert not upload.path.exists()
    with pytest.raises(UnknownUpload):
        uploads.take(upload.id)


async def test_sweep_forgets_unsent_and_orphaned_uploads(tmp_path: Path) -> None:
    clock = Clock()
    live = {"s1"}
    uploads = await store(tmp_path, clock, live)
    unsent = await uploads.receive(body(b"1"), "unsent", 10)
    taken = await uploads.receive(body(b"2"), "taken", 10)
    sending = await uploads.receive(body(b"3"), "sending", 10)
    uploads.take(taken.id)            # a files.send hashing it: not swept
    uploads.take(sending.id)
    uploads.bind(sending.id, "s1")
    clock.now += 61
    uploads.sweep()
    assert not unsent.path.exists() and taken.path.exists() and sending.path.exists()
    live.clear()                      # its end event was missed: the sweep still finds it
    uploads.sweep()
    assert not sending.path.exists() and taken.path.exists()
