"""A history file as the first schema (version 1) wrote it, for migration tests: the SQL is
spelled out here, not taken from sipd, so a change to sipd's version 1 cannot hide a break."""

from __future__ import annotations

import sqlite3
from pathlib import Path

V1_SQL = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY, uid TEXT NOT NULL, account TEXT NOT NULL,
    direction TEXT NOT NULL, remote TEXT NOT NULL, remote_key TEXT NOT NULL,
    streams TEXT NOT NULL, start REAL NOT NULL, answer REAL, "end" REAL, duration REAL,
    result TEXT, code INTEGER, reason TEXT);
CREATE INDEX sessions_start ON sessions (start);
CREATE INDEX sessions_uid ON sessions (uid);
CREATE INDEX sessions_remote ON sessions (remote_key, start);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY, uid TEXT NOT NULL, kind TEXT NOT NULL, session TEXT,
    account TEXT NOT NULL, direction TEXT NOT NULL, remote TEXT NOT NULL,
    remote_key TEXT NOT NULL, time REAL NOT NULL, content_type TEXT NOT NULL,
    content TEXT NOT NULL, status TEXT NOT NULL, code INTEGER, reason TEXT,
    updated REAL NOT NULL);
CREATE INDEX messages_time ON messages (time);
CREATE INDEX messages_uid ON messages (uid);
CREATE INDEX messages_remote ON messages (remote_key, time);
CREATE INDEX messages_session ON messages (session, time);
PRAGMA user_version = 1;
"""

DAY = 86400.0


def write_v1(path: Path, now: float) -> None:
    """Two messages and two calls, one of each 40 days old and one a day old; one call was
    still going when the daemon that wrote the file died."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(V1_SQL)
    old, recent = now - 40 * DAY, now - DAY
    db.executemany(
        "INSERT INTO messages (uid, kind, account, direction, remote, remote_key, time, "
        "content_type, content, status, code, reason, updated) "
        "VALUES (?, 'pager', 'local', ?, 'sip:carol@example.com', 'carol@example.com', ?, "
        "'text/plain', ?, ?, ?, ?, ?)",
        [("old-message", "outgoing", old, "ancient greetings from version one", "delivered",
          200, "OK", old),
         ("recent-message", "incoming", recent, "fresh news from version one", "received",
          None, None, recent)])
    db.executemany(
        "INSERT INTO sessions (uid, account, direction, remote, remote_key, streams, start, "
        'answer, "end", duration, result, code, reason) '
        "VALUES (?, 'local', 'outgoing', 'sip:carol@example.com', 'carol@example.com', "
        "'[\"audio\"]', ?, ?, ?, ?, ?, NULL, NULL)",
        [("old-call", old, old + 1, old + 61, 60.0, "completed"),
         ("open-call", recent, recent + 1, None, None, None)])
    db.commit()
    db.close()
