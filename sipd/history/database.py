"""The history database: one blocking sqlite3 connection, opened, migrated and written.

Blocking calls, no trio: `sipd.history.trio` runs every call in a worker thread, one at a
time. WAL journal with synchronous=NORMAL: a committed transaction is in the operating system's
hands, so it survives the process being killed (kill -9); only a power loss can take the last
commits, never the file's consistency. Any failure of the file itself (corrupt, unreadable,
disk full, read-only) is a `HistoryUnavailable` carrying what a user can act on.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from . import schema
from .recorder import Statement, close_interrupted

log = logging.getLogger(__name__)

BUSY_WAIT = 1.0  # seconds a statement waits for another process's lock before HistoryBusy


class HistoryUnavailable(Exception):
    """The history database cannot be used; the message says why and what to do."""


class HistoryBusy(HistoryUnavailable):
    """Another process holds the file's write lock (someone inspecting it with sqlite3):
    worth trying again later, nothing is wrong with the file."""


def _busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _unavailable(path: Path, exc: BaseException) -> HistoryUnavailable:
    hint = ""
    text = str(exc)
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        hint = " (the file is damaged: move it away and sipd starts a new one)"
    elif "readonly" in text or "unable to open" in text or "permission" in text.lower():
        hint = " (sipd needs to write the file and its directory)"
    elif "full" in text:
        hint = " (the disk is full)"
    elif "I/O error" in text:
        hint = " (the disk refused a write: is it full, read-only or failing?)"
    return HistoryUnavailable(f"history database {path}: {text}{hint}")


class HistoryDatabase:
    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(cls, path: Path, now: float) -> HistoryDatabase:
        """Open (creating it private, 0600) and migrate to the current schema; rows an
        earlier run left open are closed as interrupted."""
        connection: sqlite3.Connection | None = None
        try:
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                         timeout=BUSY_WAIT)
            # a newer sipd's file is refused before anything in it changes
            schema.migrations_from(int(connection.execute("PRAGMA user_version").fetchone()[0]))
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use a write-ahead log (journal {mode})")
            connection.execute("PRAGMA synchronous = NORMAL")
            problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError(f"database disk image is malformed: "
                                            f"{'; '.join(problems[:3])}")
            database = cls(path, connection)
            database._migrate()
            database.write(close_interrupted(now))
            return database
        except (sqlite3.Error, OSError, schema.NewerSchema) as exc:
            if connection is not None:
                connection.close()
            raise _unavailable(path, exc) from exc

    @property
    def version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        found = self.version
        if found == 0:
            log.info("history database %s: new, schema version %d", self.path, schema.VERSION)
        for target, script in schema.migrations_from(found):
            # executescript commits first; the script's own transaction makes the step atomic
            try:
                self._db.executescript(f"BEGIN IMMEDIATE;\n{script}\n"
                                       f"PRAGMA user_version = {target};\nCOMMIT;")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            if found:
                log.info("history database %s: schema version %d -> %d", self.path,
                         target - 1, target)

    def write(self, statements: list[Statement]) -> None:
        """Apply statements in one transaction. A statement our own bug made unacceptable
        (a constraint, a wrong binding) is logged and skipped; a failure of the file rolls
        the whole batch back and raises HistoryUnavailable."""
        if not statements:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                try:
                    self._db.execute(sql, params)
                except (sqlite3.IntegrityError, sqlite3.InterfaceError,
                        sqlite3.ProgrammingError) as exc:
                    log.error("history: statement skipped (%s): %s", exc, sql)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._failure(exc) from exc

    def delete(self, statements: list[tuple[str, Statement]]) -> dict[str, int]:
        """Run deletions in one transaction: how many rows each table lost."""
        counts: dict[str, int] = {}
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for table, (sql, params) in statements:
                counts[table] = counts.get(table, 0) + self._db.execute(sql, params).rowcount
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._failure(exc) from exc
        return counts

    def select(self, statement: Statement) -> list[tuple[Any, ...]]:
        sql, params = statement
        try:
            return list(self._db.execute(sql, params))
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: sqlite3.Error) -> HistoryUnavailable:
        if _busy(exc):
            return HistoryBusy(f"history database {self.path} is locked by another process")
        return _unavailable(self.path, exc)

    def _rollback(self) -> None:
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is unusable anyway; the caller turns history off

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error as exc:
            log.warning("closing history database %s: %s", self.path, exc)
