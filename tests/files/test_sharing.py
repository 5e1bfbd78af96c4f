"""The share folder for pulls, and the kept parts on disk."""

from __future__ import annotations

import hashlib
import os

import pytest
import trio

from sipd.files.resume import PartRecord
from sipd.files.selector import FileHash, FileSelector
from sipd.files.trio.parts import PartStore
from sipd.files.trio.sharing import SharingRefused, find_shared


def sha1(data: bytes) -> FileHash:
    return FileHash.sha1(hashlib.sha1(data).digest())


@pytest.fixture
def share(tmp_path):
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "report.pdf").write_bytes(b"pdf" * 100)
    (folder / "notes.txt").write_bytes(b"hello")
    (folder / "copy.txt").write_bytes(b"hello")
    (folder / ".hidden.txt").write_bytes(b"secret")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.txt").write_bytes(b"deep")
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (folder / "link.txt").symlink_to(tmp_path / "outside.txt")
    return folder


async def test_a_pull_finds_the_file_its_selector_names(share):
    path, found = await find_shared(share, FileSelector(name="report.pdf"))
    assert path == share / "report.pdf"
    assert found == FileSelector("report.pdf", "application/pdf", 300, sha1(b"pdf" * 100))
    path, found = await find_shared(share, FileSelector(hash=sha1(b"hello"), size=5))
    assert path.name == "copy.txt"  # the first by name of the two with that content
    assert (await find_shared(share, FileSelector(type="text/plain", name="notes.txt")))[0] \
        == share / "notes.txt"
    assert await find_shared(share, FileSelector(name="notes.txt", size=6)) is None


async def test_a_pull_never_gets_what_is_not_plainly_in_the_folder(share):
    for name in (".hidden.txt", "sub", "deep.txt", "link.txt", "outside.txt", "../outside.txt"):
        assert await find_shared(share, FileSelector(name=name)) is None, name
    assert await find_shared(share, FileSelector()) is None  # must say what it wants
    with pytest.raises(SharingRefused, match="files.share_dir is empty"):
        await find_shared("", FileSelector(name="notes.txt"))
    with pytest.raises(SharingRefused, match="cannot be read"):
        await find_shared(share / "missing", FileSelector(name="notes.txt"))


async def test_a_changed_file_is_hashed_again(share):
    _, before = await find_shared(share, FileSelector(name="notes.txt"))
    await trio.Path(share / "notes.txt").write_bytes(b"HELLO, again")
    _, after = await find_shared(share, FileSelector(name="notes.txt"))
    assert before.hash == sha1(b"hello") and after.hash == sha1(b"HELLO, again")


async def test_kept_parts_survive_a_restart_and_expire(tmp_path):
    path = tmp_path / "state" / "files" / "parts.json"
    store = PartStore(path)
    assert await store.load() == []
    selector = FileSelector("a.bin", "x/y", 1000, sha1(b"a"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    await trio.Path(downloads / "a.bin.part").write_bytes(b"x" * 400)
    await store.put(PartRecord(str(downloads), "a.bin.part", "a.bin", selector, 400, 1000.0))
    assert oct((await trio.Path(path).stat()).st_mode & 0o777) == "0o600"
    again = PartStore(path)
    assert await again.load() == []
    record = again.find(selector)
    assert record is not None and record.held == 400
    assert await again.expire(now=1000.0 + 8 * 86400) == 1
    assert not await trio.Path(downloads / "a.bin.part").exists()
    assert again.find(selector) is None
    await trio.Path(path).write_text("{damaged")
    assert (await PartStore(path).load())[0].startswith("the resume index is not JSON")


async def test_an_unwritable_index_does_not_stop_a_transfer(tmp_path):
    if os.geteuid() == 0:
        blocker = tmp_path / "file-not-dir"
        await trio.Path(blocker).write_text("x")
        store = PartStore(blocker / "parts.json")  # its folder is a file: cannot be made
    else:
        store = PartStore("/proc/parts.json")
    await store.put(PartRecord("/d", "p", "n", FileSelector("n", None, 1, sha1(b"")), 0, 0.0))
    assert store.find(FileSelector("n", None, 1, sha1(b""))) is not None
