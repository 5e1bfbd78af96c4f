"""File transfers between two real sipd daemons that go wrong: a file that changed after it
was offered (hash mismatch), a full disk (a real 1 MiB tmpfs as the folder), the receiving
daemon killed (kill -9) half way and the sending one killed half way (the connection cut):
the same file offered again resumes from the kept part, and the whole file's hash is checked."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.harness.files import FILE_TOPICS, TRANSFER_TIMEOUT, make_file, offer_file, sha1_of
from tests.harness.peer import DaemonPeer, daemon_settings, open_peer
from tests.harness.process import SipdProcess, running

BIG = 200 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
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


@pytest.fixture
def two(tmp_path: Path) -> Iterator[list[SipdProcess]]:
    with running(tmp_path / "daemons", daemon_settings()) as started:
        yield started


async def answered(a: DaemonPeer, b: DaemonPeer, source: Path, save: str | None = None
                   ) -> tuple[str, str]:
    started, new = await offer_file(a, b, source)
    await b.state(new["id"], "ringing")
    answer = {"path": save} if save is not None else {}
    await b.call("sessions.answer", id=new["id"], **answer)
    return started["id"], new["id"]


async def test_a_file_changed_after_its_offer_fails_on_its_hash(two, tmp_path):
    source = make_file(tmp_path / "changing.bin", 100_000)
    async with open_peer(two[0], FILE_TOPICS) as a, open_peer(two[1], FILE_TOPICS) as b:
        started, new = await offer_file(a, b, source)
        make_file(source, 100_000, seed=b"other")  # same size, other bytes
        await b.state(new["id"], "ringing")
        await b.call("sessions.answer", id=new["id"])
        failed = await b.state(new["id"], "failed")
        assert failed["reason"].startswith("hash mismatch")
        assert (await a.state(started["id"], "failed"))["reason"].startswith(
            "the receiver refused the file: 400 hash mismatch")
        downloads = two[1].state_dir / "downloads"
        assert list(downloads.iterdir()) == []  # the part is gone, nothing was kept
        row = (await b.call("history.files", session=new["id"]))["files"]
        assert [r["result"] for r in row] == ["failed"]


async def test_a_full_disk_fails_the_transfer_and_removes_the_part(two, tmp_path, small_disk):
    source = make_file(tmp_path / "too big.bin", 3 * 1024 * 1024)
    async with open_peer(two[0], FILE_TOPICS) as a, open_peer(two[1], FILE_TOPICS) as b:
        a_id, b_id = await answered(a, b, source, save=str(small_disk))
        failed = await b.state(b_id, "failed")
        assert failed["reason"].startswith("disk full"), failed
        assert "disk full" in (await a.state(a_id, "failed"))["reason"]
        assert list(small_disk.iterdir()) == []
        # the daemon goes on: a small file fits
        little = make_file(tmp_path / "little.txt", 1000)
        a2, b2 = await answered(a, b, little, save=str(small_disk))
        done = await b.events.wait("file.transfer", session=b2, state="completed")
        assert sha1_of(done["path"]) == sha1_of(little)


async def half_way(peer: DaemonPeer, session: str, size: int) -> None:
    """Once a quarter arrived, and the report after it (the part's record, saved with each
    report, is on disk then)."""
    first = await peer.wait("file.progress", lambda e: e["transferred"] >= size // 4,
                            session=session, timeout=TRANSFER_TIMEOUT)
    await peer.wait("file.progress", lambda e: e["transferred"] > first["transferred"],
                    session=session, timeout=TRANSFER_TIMEOUT)


async def resumed(a: DaemonPeer, b: DaemonPeer, source: Path) -> None:
    """The same file offered again arrives whole, sent from the kept part on."""
    a_id, b_id = await answered(a, b, source)
    start = await b.events.wait("file.transfer", session=b_id, state="started")
    assert 0 < start["offset"] < (await trio.Path(source).stat()).st_size
    sent = await a.events.wait("file.transfer", session=a_id, state="started")
    assert sent["offset"] == start["offset"]
    done = await b.events.wait("file.transfer", session=b_id, state="completed",
                               timeout=TRANSFER_TIMEOUT)
    assert done["hash"] == sha1_of(source) == sha1_of(done["path"])
    assert Path(done["path"]).name == source.name
    assert not list(Path(done["path"]).parent.glob("*.part"))


async def test_a_transfer_resumes_after_the_receiver_was_killed(two, tmp_path):
    source = make_file(tmp_path / "big.bin", BIG)
    receiver = two[1]
    async with open_peer(two[0], FILE_TOPICS) as a:
        async with open_peer(receiver, FILE_TOPICS) as b:
            a_id, b_id = await answered(a, b, source)
            await half_way(b, b_id, BIG)
            receiver.signal(signal.SIGKILL)
            receiver.wait()
        failed = await a.state(a_id, "failed")
        assert "peer gone" in failed["reason"] or "refused" not in failed["reason"]
        receiver.start()
        async with open_peer(receiver, FILE_TOPICS) as b:
            await resumed(a, b, source)


async def test_a_transfer_resumes_after_the_connection_was_cut(two, tmp_path):
    source = make_file(tmp_path / "cut.bin", BIG)
    sender = two[0]
    async with open_peer(two[1], FILE_TOPICS) as b:
        async with open_peer(sender, FILE_TOPICS) as a:
            a_id, b_id = await answered(a, b, source)
            await half_way(b, b_id, BIG)
            sender.signal(signal.SIGKILL)  # its MSRP connection drops without a BYE
            sender.wait()
        failed = await b.state(b_id, "failed")
        assert failed["reason"].startswith("peer gone"), failed
        cut = await b.events.wait("file.transfer", session=b_id, state="cancelled")
        assert cut["reason"]
        sender.start()
        async with open_peer(sender, FILE_TOPICS) as a:
            await resumed(a, b, source)


@pytest.mark.parametrize("who", ["sender", "receiver"])
async def test_a_cancelled_transfer_says_so_at_both_ends(two, tmp_path, who):
    source = make_file(tmp_path / "stopped.bin", BIG)
    async with open_peer(two[0], FILE_TOPICS) as a, open_peer(two[1], FILE_TOPICS) as b:
        a_id, b_id = await answered(a, b, source)
        await half_way(b, b_id, BIG)
        if who == "sender":
            await a.call("sessions.end", id=a_id)
        else:
            await b.call("sessions.end", id=b_id)
        # the session's end, not only the transfer's, says "cancelled" (not the hangup's
        # own reason), at the end that hung up and at the other
        assert (await a.state(a_id, "ended"))["reason"] == "cancelled"
        assert (await b.state(b_id, "ended"))["reason"] == "cancelled"
        for peer, sid in ((a, a_id), (b, b_id)):
            stopped = await peer.events.wait("file.transfer", session=sid, state="cancelled")
            assert stopped["reason"], stopped
            rows = (await peer.call("history.files", session=sid))["files"]
            assert [r["result"] for r in rows] == ["cancelled"]


@pytest.fixture
def sharing(tmp_path: Path) -> Iterator[tuple[list[SipdProcess], Path]]:
    """Two daemons sharing a folder holding a big file (files.share_dir)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    make_file(shared / "pulled big.bin", BIG)
    settings = {**daemon_settings(), "files.share_dir": str(shared)}
    with running(tmp_path / "daemons", settings) as started:
        yield started, shared / "pulled big.bin"


async def pull(a: DaemonPeer, b: DaemonPeer, name: str) -> str:
    started = await a.call("files.request", account=a.id, to=b.uri("tcp"), name=name)
    return started["id"]


async def pull_resumed(a: DaemonPeer, b: DaemonPeer, source: Path) -> None:
    """The same file asked for again arrives whole, only the missing range sent: the offer
    carries the kept part's hash and a=file-range, the sharer sends from there."""
    mark = b.events.mark()
    a_id = await pull(a, b, source.name)
    start = await a.events.wait("file.transfer", session=a_id, state="started")
    size = (await trio.Path(source).stat()).st_size
    assert 0 < start["offset"] < size
    sent = await b.events.wait("file.transfer", direction="outgoing", state="started",
                               since=mark)
    assert sent["offset"] == start["offset"]
    done = await a.events.wait("file.transfer", session=a_id, state="completed",
                               timeout=TRANSFER_TIMEOUT)
    assert done["hash"] == sha1_of(source) == sha1_of(done["path"])
    assert Path(done["path"]).name == source.name
    assert not list(Path(done["path"]).parent.glob("*.part"))
    assert (await a.state(a_id, "ended"))["reason"] == "completed"


async def test_a_pull_resumes_after_the_receiver_was_killed(sharing):
    (puller, sharer), source = sharing
    async with open_peer(sharer, FILE_TOPICS) as b:
        async with open_peer(puller, FILE_TOPICS) as a:
            a_id = await pull(a, b, source.name)
            await half_way(a, a_id, BIG)
            puller.signal(signal.SIGKILL)
            puller.wait()
        puller.start()
        async with open_peer(puller, FILE_TOPICS) as a:
            await pull_resumed(a, b, source)


async def test_a_pull_resumes_after_the_connection_was_cut(sharing):
    (puller, sharer), source = sharing
    async with open_peer(puller, FILE_TOPICS) as a:
        async with open_peer(sharer, FILE_TOPICS) as b:
            a_id = await pull(a, b, source.name)
            await half_way(a, a_id, BIG)
            sharer.signal(signal.SIGKILL)  # the MSRP connection drops without a BYE
            sharer.wait()
        failed = await a.state(a_id, "failed")
        assert failed["reason"].startswith("peer gone"), failed
        sharer.start()
        async with open_peer(sharer, FILE_TOPICS) as b:
            await pull_resumed(a, b, source)
