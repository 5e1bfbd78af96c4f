"""Incoming chunks placed in the file, resume bookkeeping, progress at a bounded rate."""

from __future__ import annotations

import hashlib
import json

import pytest

from sipd.files.progress import ProgressMeter
from sipd.files.receiving import IncomingFile, TransferRefused
from sipd.files.resume import PartRecord, ResumeIndex, needed_range
from sipd.files.sdp import FileRange
from sipd.files.selector import FileHash, FileSelector


def test_a_whole_file_in_order():
    incoming = IncomingFile(10)
    for start in (1, 5, 9):
        length = min(4, 10 - start + 1)
        offset = incoming.place(start, length, 10)
        assert offset == start - 1
        incoming.add(offset, length)
        assert incoming.complete is (start == 9)
    assert incoming.transferred == 10 == incoming.contiguous


def test_chunks_out_of_order_and_repeated():
    incoming = IncomingFile(10)
    incoming.add(incoming.place(6, 5, None), 5)
    assert incoming.contiguous == 0 and incoming.transferred == 5
    incoming.add(incoming.place(6, 5, 10), 5)  # again: no double count
    assert incoming.transferred == 5
    incoming.add(incoming.place(1, 5, 10), 5)
    assert incoming.complete


def test_a_resumed_range_by_message_or_by_file_position():
    # held 1..400 of 1000; the range 401-1000 is a message of 600 bytes
    by_message = IncomingFile(1000, FileRange(401, None), held=400)
    assert by_message.contiguous == 400 and not by_message.complete
    assert by_message.place(1, 100, 600) == 400  # RFC 5547: counted within the message
    assert by_message.place(101, 100, None) == 500
    assert by_message.place(401, 100, 1000) == 400  # python-sipsimple: within the file
    by_message.add(400, 600)
    assert by_message.complete


def test_data_past_the_selectors_size_is_refused():
    incoming = IncomingFile(10)
    with pytest.raises(TransferRefused, match="more than the 10 bytes") as refused:
        incoming.place(8, 4, None)
    assert refused.value.status == 413
    with pytest.raises(TransferRefused, match="more than the 10 bytes"):
        incoming.place(1, 4, 11)
    with pytest.raises(TransferRefused, match="neither"):
        IncomingFile(10, FileRange(3, None)).place(1, 4, 9)
    empty = IncomingFile(0)
    assert empty.complete
    with pytest.raises(TransferRefused):
        empty.place(1, 1, None)


def test_a_file_offered_without_size_takes_its_size_from_the_message():
    """doubango offers no size: chunks with a `*` total go where they say until one gives
    the total; then the file is that long, and more is refused."""
    incoming = IncomingFile(None)
    assert incoming.size is None and not incoming.complete
    incoming.add(incoming.place(1, 4, None), 4)
    incoming.add(incoming.place(5, 4, None), 4)
    assert incoming.transferred == 8 and not incoming.complete
    incoming.add(incoming.place(9, 2, 10), 2)  # the last chunk: 9-10/10
    assert incoming.size == 10 and incoming.complete
    with pytest.raises(TransferRefused, match="more than the 10 bytes"):
        incoming.place(10, 2, 11)
    known_early = IncomingFile(None)
    assert known_early.place(1, 4, 6) == 0 and known_early.size == 6
    with pytest.raises(TransferRefused):
        known_early.place(5, 4, None)  # past the total the first chunk gave
    shrinking = IncomingFile(None)
    shrinking.add(shrinking.place(1, 8, None), 8)
    with pytest.raises(TransferRefused, match="less than the 8 bytes"):
        shrinking.place(1, 4, 4)  # a total below what `*` chunks already wrote
    assert shrinking.size is None and not shrinking.complete
    empty = IncomingFile(None)
    empty.place(1, 0, 0)
    assert empty.complete
    with pytest.raises(ValueError, match="whole"):
        IncomingFile(None, FileRange(5, None))  # no resume without a size


def test_needed_range():
    assert needed_range(0, 1000) == FileRange(1, 1000)
    assert needed_range(400, 1000) == FileRange(401, 1000)
    assert needed_range(1000, 1000) == FileRange(1000, 1000)  # verify by fetching one byte
    assert needed_range(5000, 1000) == FileRange(1000, 1000)
    assert needed_range(0, 0) == FileRange()


def selector(name: str = "a.bin", size: int = 1000, data: bytes = b"a") -> FileSelector:
    return FileSelector(name=name, size=size, hash=FileHash.sha1(hashlib.sha1(data).digest()))


def test_resume_index_finds_only_the_same_file_and_survives_damage():
    index = ResumeIndex()
    record = PartRecord("/d", "a.bin.part", "a.bin", selector(), held=400, updated=100.0)
    index.put(record)
    index.put(PartRecord("/d", "b.bin.part", "b.bin", selector("b.bin"), 10, 200.0))
    assert index.find(selector()) is record
    assert index.find(selector(data=b"other")) is None
    assert index.find(selector(size=999)) is None
    assert index.find(FileSelector(name="a.bin", size=1000)) is None  # no hash: no resume
    assert record.usable(300) == 300 and record.usable(5000) == 400
    text = index.to_json()
    again, problems = ResumeIndex.from_json(text)
    assert problems == [] and [r.to_dict() for r in again.records] == \
        [r.to_dict() for r in index.records]
    data = json.loads(text)
    data["parts"].append({"folder": "/d", "part": 5})
    data["parts"].append({"folder": "/d", "part": "c", "name": "c", "selector": "size:1",
                          "held": 1, "updated": 1})
    data["parts"].append("junk")
    kept, problems = ResumeIndex.from_json(json.dumps(data))
    assert len(kept.records) == 2 and len(problems) == 3
    assert ResumeIndex.from_json("{not json")[1] and ResumeIndex.from_json("[]")[1]
    assert [r.part for r in index.expired(now=100.0 + 7 * 86400 + 1)] == ["a.bin.part"]
    assert index.remove("/d", "b.bin.part") is not None and index.records == []


def test_a_pull_asked_again_of_the_same_party_finds_its_kept_part():
    index = ResumeIndex()
    pushed = PartRecord("/d", "a.bin.part", "a.bin", selector(), 400, 100.0)
    pulled = PartRecord("/d", "a (1).bin.part", "a (1).bin", selector(), 500, 200.0,
                        remote="bob@example.com")
    index.put(pushed)
    index.put(pulled)
    assert index.find_wanted(FileSelector(name="a.bin"), "bob@example.com") is pulled
    assert index.find_wanted(FileSelector(size=1000), "bob@example.com") is pulled
    assert index.find_wanted(FileSelector(name="a.bin"), "eve@example.com") is None
    assert index.find_wanted(FileSelector(name="b.bin"), "bob@example.com") is None
    assert index.find_wanted(FileSelector(), "bob@example.com") is None  # asks for nothing
    assert index.find_wanted(FileSelector(name="a.bin"), "") is None  # a push's part
    again, problems = ResumeIndex.from_json(index.to_json())
    assert problems == [] and [r.remote for r in again.records] == ["", "bob@example.com"]
    assert "remote" not in pushed.to_dict()  # an index of before reads the same
    bad = {**pulled.to_dict(), "remote": 5}
    assert ResumeIndex.from_json(json.dumps({"parts": [bad]}))[1]


def test_progress_at_most_four_a_second_and_one_at_the_end():
    meter = ProgressMeter(size=1000, now=0.0)
    reports = []
    for step in range(1, 101):  # 100 updates over one second
        report = meter.update(step * 10, step * 0.01)
        if report is not None:
            reports.append(report)
    assert len(reports) == 4
    assert [r.transferred for r in reports] == [250, 500, 750, 1000]
    assert reports[-1].rate == pytest.approx(1000.0)
    final = meter.finish(1000, 1.0)
    assert final.final and final.rate == pytest.approx(1000.0) and final.size == 1000
    assert meter.update(1000, 5.0) is None


def test_progress_rate_of_a_resumed_transfer_counts_only_new_bytes():
    meter = ProgressMeter(size=1000, now=10.0, start=600)
    assert meter.update(700, 10.1) is None
    report = meter.update(800, 10.5)
    assert report is not None and report.rate == pytest.approx(400.0)
    assert meter.finish(1000, 11.0).rate == pytest.approx(400.0)
