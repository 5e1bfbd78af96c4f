"""The history core on a real SQLite file: schema migration, recording bus events, queries,
deletion and pruning (no daemon: the statements are what matters here)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from sipd.events import Event
from sipd.history import queries, schema
from sipd.history.database import HistoryDatabase, HistoryUnavailable
from sipd.history.recorder import statements_for
from sipd.history.remote import remote_key
from tests.history.v1 import DAY, write_v1


def event(seq: int, name: str, when: float, **data: object) -> Event:
    return Event(seq, when, name.split(".")[0] + "s", name, dict(data))


@pytest.fixture
def db(tmp_path):
    database = HistoryDatabase.open(tmp_path / "history.db", time.time())
    yield database
    database.close()


def record(db: HistoryDatabase, *events: Event) -> None:
    db.write([s for e in events for s in statements_for(e)])


def sessions(db: HistoryDatabase, **filters: object) -> list[dict]:
    return [queries.session_row(r)
            for r in db.select(queries.sessions_page(queries.Filter(**filters), 100))]


def messages(db: HistoryDatabase, search: str | None = None, **filters: object) -> list[dict]:
    return [queries.message_row(r)
            for r in db.select(queries.messages_page(queries.Filter(**filters), 100, search))]


def test_new_file_is_private_wal_and_current(tmp_path, db):
    assert db.version == schema.VERSION
    record(db, event(1, "message.received", 1.0, id="m", account="local", to="sip:me@h",
                     **{"from": "sip:bob@h"}, content="x", content_type="text/plain"))
    for name in ("history.db", "history.db-wal", "history.db-shm"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    check = sqlite3.connect(tmp_path / "history.db")
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_call_answered_then_ended(db):
    record(db, event(1, "session.new", 100.0, id="s1", account="local", direction="outgoing",
                     remote="sip:bob@Example.com;transport=tcp", streams=["audio"]),
           event(2, "session.state", 100.1, id="s1", state="calling"),
           event(3, "session.state", 101.0, id="s1", state="established"),
           event(4, "session.state", 131.5, id="s1", state="ended", reason="remote hangup"))
    (row,) = sessions(db)
    assert row == {"id": "s1", "account": "local", "direction": "outgoing",
                   "remote": "sip:bob@Example.com;transport=tcp", "streams": ["audio"],
                   "start": 100.0, "answer": 101.0, "end": 131.5, "duration": 30.5,
                   "result": "completed", "code": None, "reason": "remote hangup"}
    assert sessions(db, remote="sips:bob@example.com") == [row]


@pytest.mark.parametrize("direction,code,reason,result", [
    ("outgoing", 487, "why", "cancelled"),
    ("incoming", 487, "why", "missed"),
    ("incoming", None, "why", "missed"),
    ("incoming", 480, "no answer", "missed"),  # nobody answered in time (ring_limit)
    ("incoming", 480, "why", "rejected"),
    ("outgoing", 486, "why", "failed"),
    ("incoming", 603, "why", "rejected")])
def test_unanswered_call_results(db, direction, code, reason, result):
    record(db, event(1, "session.new", 10.0, id="s", account="a", direction=direction,
                     remote="sip:x@y", streams=["audio"]),
           event(2, "session.state", 12.0, id="s", state="failed", code=code, reason=reason))
    (row,) = sessions(db)
    assert (row["result"], row["answer"], row["duration"], row["code"]) == (result, None, 0, code)


def test_outgoing_message_status_follows_delivery(db):
    record(db, event(1, "message.sending", 5.0, id="m1", account="local", to="sip:bob@h",
                     content="hi", content_type="text/plain"))
    assert messages(db)[0]["status"] == "sending"
    record(db, event(2, "message.delivery", 5.2, id="m1", account="local", to="sip:bob@h",
                     code=404, reason="Not Found", delivered=False))
    (row,) = messages(db)
    assert (row["status"], row["code"], row["reason"], row["updated"]) == \
        ("failed", 404, "Not Found", 5.2)


def test_chat_messages_are_filed_under_their_session(db):
    record(db, event(1, "session.new", 10.0, id="s", account="local", direction="outgoing",
                     remote="sip:bob@h", streams=["chat"]),
           event(2, "chat.sending", 11.0, session="s", message_id="m1", to="sip:bob@h",
                 content="hi Bob", content_type="text/plain"),
           event(3, "chat.message", 12.0, session="s", message_id="m2", content="hi",
                 content_type="text/plain", time="2026-12-06T00:00:00+00:00",
                 **{"from": "sip:bob@h"}),
           event(4, "chat.delivery", 12.5, session="s", message_id="m1", status="displayed"),
           event(5, "chat.delivery", 12.6, session="s", message_id="m1", status="delivered"),
           event(6, "chat.sending", 13.0, session="s", message_id="m3", to="sip:bob@h",
                 content="bye", content_type="text/plain"),
           event(7, "chat.delivery", 14.0, session="s", message_id="m3", status="failed",
                 reason="connection closed by the peer"))
    rows = {row["id"]: row for row in messages(db, session="s")}
    assert {row["kind"] for row in rows.values()} == {"chat"}
    assert (rows["m1"]["direction"], rows["m1"]["status"], rows["m1"]["remote"]) == \
        ("outgoing", "displayed", "sip:bob@h")
    assert (rows["m2"]["direction"], rows["m2"]["status"], rows["m2"]["account"]) == \
        ("incoming", "received", "local")
    assert (rows["m3"]["status"], rows["m3"]["reason"]) == \
        ("failed", "connection closed by the peer")
    assert [row["id"] for row in messages(db, search="bob")] == ["m1"]


def test_a_stream_added_mid_session_is_kept_in_its_row(db):
    record(db, event(1, "session.new", 10.0, id="s", account="local", direction="incoming",
                     remote="sip:bob@h", streams=["audio"]),
           event(2, "session.streams", 20.0, id="s", streams=["audio", "chat"],
                 change="added", stream="chat", by="remote"),
           event(3, "session.streams", 30.0, id="s", streams=["audio"], change="removed",
                 stream="chat", by="local"))
    assert sessions(db)[0]["streams"] == ["audio", "chat"]  # everything it carried


def test_search_by_word_prefix_without_accents_or_syntax(db):
    record(db, event(1, "message.received", 1.0, id="a", account="local", to="sip:me@h",
                     **{"from": "sip:bob@h"}, content="Héllo, wörld — AND \"quoted\" NEAR(x)",
                     content_type="text/plain"),
           event(2, "message.received", 2.0, id="b", account="local", to="sip:me@h",
                 **{"from": "sip:bob@h"}, content="something else", content_type="text/plain"))
    assert [m["id"] for m in messages(db, "hello")] == ["a"]
    assert [m["id"] for m in messages(db, "WOR hel")] == ["a"]
    assert [m["id"] for m in messages(db, 'AND "quoted" NEAR(')] == ["a"]
    assert messages(db, "hello missing") == []
    with pytest.raises(queries.EmptySearch):
        queries.search_expression(" ... ")


def test_pages_go_newest_first_by_time(db):
    record(db, *[event(i, "message.received", float(i), id=f"m{i}", account="local",
                       to="sip:me@h", **{"from": "sip:bob@h"}, content=f"n{i}",
                       content_type="text/plain") for i in range(1, 6)])
    seen, before = [], None
    while True:
        rows = [queries.message_row(r) for r in db.select(queries.messages_page(
            queries.Filter(before=before), 2))]
        page, before = queries.page(rows, 2, "time")
        seen += [m["id"] for m in page]
        if before is None:
            break
    assert seen == ["m5", "m4", "m3", "m2", "m1"]


def test_delete_and_prune(db):
    now = time.time()
    record(db, *[event(i, "message.received", when, id=f"m{i}", account="local",
                       to="sip:me@h", **{"from": sender}, content="x", content_type="text/plain")
                 for i, (when, sender) in enumerate([(now - 10 * DAY, "sip:old@h"),
                                                     (now, "sip:bob@h"), (now, "sip:carol@h")])])
    assert db.delete(queries.deletions(queries.Filter(message="m1"))) == {"messages": 1}
    assert db.delete(queries.prune(now - 5 * DAY))["messages"] == 1
    assert [m["id"] for m in messages(db)] == ["m2"]


def test_migration_from_version_1_keeps_rows_and_indexes_them(tmp_path):
    path = tmp_path / "history.db"
    now = time.time()
    write_v1(path, now)
    database = HistoryDatabase.open(path, now)
    try:
        assert database.version == schema.VERSION
        assert [m["id"] for m in messages(database, "version")] == ["recent-message",
                                                                    "old-message"]
        by_id = {s["id"]: s for s in sessions(database)}
        assert by_id["open-call"]["result"] == "interrupted"
        assert by_id["old-call"]["result"] == "completed"
    finally:
        database.close()


def test_newer_schema_is_left_alone(tmp_path):
    path = tmp_path / "history.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {schema.VERSION + 1}").close()
    with pytest.raises(HistoryUnavailable, match="newer"):
        HistoryDatabase.open(path, 0.0)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == \
        schema.VERSION + 1


def test_damaged_file_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not SQLite at all" * 100)
    with pytest.raises(HistoryUnavailable, match="move it away"):
        HistoryDatabase.open(path, 0.0)


def test_remote_key():
    assert remote_key('"Bob" <sips:bob@Example.COM:5061;transport=tls>') == \
        "bob@example.com:5061"
    assert remote_key("bob@example.com") == "bob@example.com"
    assert remote_key("tel:+123") == "tel:+123"
