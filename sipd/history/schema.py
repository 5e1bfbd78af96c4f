"""The history database's layout, by version, and how to bring an older file up to date.

`PRAGMA user_version` holds the version. MIGRATIONS[n] takes a file from version n to n + 1
(n = 0: an empty file), so every file, however old, walks the same steps a new one does.
"""

from __future__ import annotations

VERSION_1 = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,              -- the daemon's session id (sessions.* methods)
    account TEXT NOT NULL,
    direction TEXT NOT NULL,        -- incoming | outgoing
    remote TEXT NOT NULL,
    remote_key TEXT NOT NULL,       -- remote as user@host[:port], what `remote` filters match
    streams TEXT NOT NULL,          -- JSON array: ["audio"], ["chat"]...
    start REAL NOT NULL,            -- Unix time
    answer REAL,
    "end" REAL,
    duration REAL,                  -- seconds from answer to end (0 when never answered)
    result TEXT,       -- completed | cancelled | failed | missed | rejected | interrupted
    code INTEGER,
    reason TEXT
);
CREATE INDEX sessions_start ON sessions (start);
CREATE INDEX sessions_uid ON sessions (uid);
CREATE INDEX sessions_remote ON sessions (remote_key, start);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    kind TEXT NOT NULL,             -- pager (SIP MESSAGE) | chat (MSRP, in a session)
    session TEXT,                   -- the chat's session uid
    account TEXT NOT NULL,
    direction TEXT NOT NULL,
    remote TEXT NOT NULL,
    remote_key TEXT NOT NULL,
    time REAL NOT NULL,
    content_type TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,           -- sending | delivered | failed | received | unknown
    code INTEGER,
    reason TEXT,
    updated REAL NOT NULL
);
CREATE INDEX messages_time ON messages (time);
CREATE INDEX messages_uid ON messages (uid);
CREATE INDEX messages_remote ON messages (remote_key, time);
CREATE INDEX messages_session ON messages (session, time);
"""

# Version 2: full-text search over message contents, and file transfers.
VERSION_2 = """
CREATE VIRTUAL TABLE messages_text USING fts5(
    content, content='messages', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO messages_text (rowid, content) SELECT id, content FROM messages;
CREATE TRIGGER messages_text_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_text (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_text_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_text (messages_text, rowid, content)
        VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_text_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_text (messages_text, rowid, content)
        VALUES ('delete', old.id, old.content);
    INSERT INTO messages_text (rowid, content) VALUES (new.id, new.content);
END;

CREATE TABLE file_transfers (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    session TEXT,
    account TEXT NOT NULL,
    direction TEXT NOT NULL,
    remote TEXT NOT NULL,
    remote_key TEXT NOT NULL,
    name TEXT NOT NULL,             -- as offered (a remote name, never trusted as a path)
    size INTEGER,
    content_type TEXT,
    hash TEXT,                      -- e.g. sha-1:AB:CD... (RFC 5547 a=file-selector)
    start REAL NOT NULL,
    "end" REAL,
    result TEXT,                    -- completed | failed | cancelled | refused | interrupted
    reason TEXT,
    path TEXT                       -- where it was saved (incoming) or read from (outgoing)
);
CREATE INDEX file_transfers_start ON file_transfers (start);
CREATE INDEX file_transfers_remote ON file_transfers (remote_key, start);
"""

MIGRATIONS: tuple[str, ...] = (VERSION_1, VERSION_2)
VERSION = len(MIGRATIONS)


class NewerSchema(Exception):
    """The file was written by a newer sipd: we leave it alone rather than guess."""

    def __init__(self, found: int) -> None:
        super().__init__(f"the history database has schema version {found}, newer than the "
                         f"{VERSION} this sipd knows; use a newer sipd or move the file away")
        self.found = found


def migrations_from(version: int) -> list[tuple[int, str]]:
    """The steps (target version, script) that bring a file at `version` up to date."""
    if version > VERSION:
        raise NewerSchema(version)
    return [(target + 1, MIGRATIONS[target]) for target in range(version, VERSION)]
