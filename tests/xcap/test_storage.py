"""The offline journal and the document cache on disk."""

from __future__ import annotations

import json

from sipd.xcap.documents import DocumentKey, StoredDocument
from sipd.xcap.operations import ContactRemove, ContactSet
from sipd.xcap.trio.cache import DocumentCache
from sipd.xcap.trio.journal import Journal

RL = ("resource-lists", "index")


def test_journal_keeps_order_across_restarts(tmp_path) -> None:
    path = tmp_path / "journal"
    journal = Journal(path, compact_after=0)
    ops = [ContactSet(*RL, uri=f"sip:u{i}@x") for i in range(3)] + [ContactRemove(*RL,
                                                                                  uri="sip:u0@x")]
    entries = [journal.append(op) for op in ops]
    journal.done(entries[1].seq)
    again = Journal(path, compact_after=0)
    assert [e.op for e in again.pending] == [ops[0], ops[2], ops[3]]
    new = again.append(ContactSet(*RL, uri="sip:late@x"))
    assert new.seq > entries[-1].seq
    for entry in again.pending:
        again.done(entry.seq)
    assert path.read_bytes() == b""  # compacted once nothing waits
    assert Journal(path).pending == []
    big = Journal(path)  # below the compaction size the done records stay
    big.done(big.append(ContactSet(*RL, uri="sip:x@x")).seq)
    assert b'"done"' in path.read_bytes() and Journal(path).pending == []
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_torn_last_line_is_ignored(tmp_path) -> None:
    path = tmp_path / "journal"
    journal = Journal(path)
    journal.append(ContactSet(*RL, uri="sip:a@x"))
    record = json.dumps({"seq": 2, "op": ContactSet(*RL, uri="sip:b@x").to_json()}).encode()
    with open(path, "ab") as file:
        file.write(record[: len(record) // 2])  # killed in the middle of a write
    again = Journal(path)
    assert [e.op.uri for e in again.pending] == ["sip:a@x"]
    assert again.unreadable == []
    again.append(ContactSet(*RL, uri="sip:c@x"))
    assert [e.op.uri for e in Journal(path).pending] == ["sip:a@x", "sip:c@x"]


def test_unreadable_records_are_reported(tmp_path) -> None:
    path = tmp_path / "journal"
    path.write_bytes(b'garbage\n{"seq": 1, "op": {"op": "nope"}}\n'
                     + json.dumps({"seq": 2, "op": ContactSet(*RL, uri="sip:a@x").to_json()})
                     .encode() + b"\n")
    journal = Journal(path)
    assert [e.op.uri for e in journal.pending] == ["sip:a@x"]
    assert len(journal.unreadable) == 2 and "unknown operation" in journal.unreadable[1]


def test_cache(tmp_path) -> None:
    cache = DocumentCache(tmp_path / "docs")
    key = DocumentKey("resource-lists", "dir/index")
    assert cache.load(key) == (False, None)
    document = StoredDocument(b"<a>\n\xc3\xa9</a>", "etag-1", "application/resource-lists+xml")
    cache.save(key, document)
    assert cache.load(key) == (True, document)
    cache.save(key, None)
    assert cache.load(key) == (True, None)
    assert [p.name for p in (tmp_path / "docs").iterdir()] == [cache.path(key).name]
    cache.path(key).write_bytes(b"not json\n<a/>")
    assert cache.load(key) == (False, None)
    assert not cache.path(key).exists()


def test_a_cached_document_cut_short_or_damaged_is_dropped(tmp_path) -> None:
    cache = DocumentCache(tmp_path / "docs")
    key = DocumentKey("resource-lists", "index")
    document = StoredDocument(b"<resource-lists><list name='a'/></resource-lists>", "e1",
                              "application/resource-lists+xml")
    for damage in (lambda data: data[:-7], lambda data: data.replace(b"'a'", b"'b'")):
        cache.save(key, document)
        path = cache.path(key)
        path.write_bytes(damage(path.read_bytes()))
        assert cache.load(key) == (False, None)  # read in full next, never confirmed by a 304
        assert not path.exists()
