"""The reads and deletions RPC methods ask for, as SQL: filters in, statements out.

Pages go newest first by time: a page holds `limit` rows and, when there are more, `next`,
the `before` that gives the following page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .recorder import Statement
from .remote import remote_key

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class EmptySearch(ValueError):
    """The search text has no word in it (only spaces or punctuation)."""


@dataclass(frozen=True)
class Filter:
    account: str | None = None
    remote: str | None = None      # any form of the URI; compared by remote_key
    before: float | None = None    # Unix time: rows strictly older
    session: str | None = None     # a session id
    message: str | None = None     # a message id


def search_expression(text: str) -> str:
    """An FTS5 query from what a user typed: every word must appear, each as a word prefix
    ("hel wor" finds "Hello, world"). Users type words, not FTS5 syntax: quoting each word
    makes AND, OR, NEAR, * and quotes plain text, so no input is a syntax error."""
    words = re.findall(r"\w+", text)
    if not words:
        raise EmptySearch(f"the search text {text!r} has no words to search for")
    return " ".join(f'"{word}"*' for word in words)


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _common(flt: Filter, table: str, time_column: str, session_column: str | None = None
            ) -> tuple[list[str], list[Any]]:
    """The conditions every filter shares; with `session_column`, the session's too."""
    conditions: list[str] = []
    params: list[Any] = []
    if flt.account is not None:
        conditions.append(f"{table}.account = ?")
        params.append(flt.account)
    if flt.remote is not None:
        conditions.append(f"{table}.remote_key = ?")
        params.append(remote_key(flt.remote))
    if flt.before is not None:
        conditions.append(f"{table}.{time_column} < ?")
        params.append(flt.before)
    if session_column is not None and flt.session is not None:
        conditions.append(f"{table}.{session_column} = ?")
        params.append(flt.session)
    return conditions, params


SESSION_COLUMNS = ('uid, account, direction, remote, streams, start, answer, "end", duration, '
                   "result, code, reason")
MESSAGE_COLUMNS = ("uid, kind, session, account, direction, remote, time, content_type, "
                   "content, status, code, reason, updated")


def sessions_page(flt: Filter, limit: int) -> Statement:
    conditions, params = _common(flt, "sessions", "start", "uid")
    return (f"SELECT {SESSION_COLUMNS} FROM sessions{_where(conditions)} "
            "ORDER BY start DESC, id DESC LIMIT ?", (*params, limit + 1))


def messages_page(flt: Filter, limit: int, search: str | None = None) -> Statement:
    conditions, params = _common(flt, "messages", "time", "session")
    source = "messages"
    if search is not None:
        source = "messages JOIN messages_text ON messages_text.rowid = messages.id"
        conditions.append("messages_text MATCH ?")
        params.append(search_expression(search))
    columns = ", ".join(f"messages.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))
    return (f"SELECT {columns} FROM {source}{_where(conditions)} "
            "ORDER BY messages.time DESC, messages.id DESC LIMIT ?", (*params, limit + 1))


FILE_COLUMNS = ('uid, session, account, direction, remote, name, size, content_type, hash, '
                'start, "end", result, reason, path')


def files_page(flt: Filter, limit: int) -> Statement:
    conditions, params = _common(flt, "file_transfers", "start", "session")
    return (f"SELECT {FILE_COLUMNS} FROM file_transfers{_where(conditions)} "
            "ORDER BY start DESC, id DESC LIMIT ?", (*params, limit + 1))


def file_row(row: tuple[Any, ...]) -> dict[str, Any]:
    (uid, session, account, direction, remote, name, size, content_type, file_hash, start,
     end, result, reason, path) = row
    return {"id": uid, "session": session, "account": account, "direction": direction,
            "remote": remote, "name": name, "size": size, "type": content_type,
            "hash": file_hash, "start": start, "end": end, "result": result,
            "reason": reason, "path": path}


def session_row(row: tuple[Any, ...]) -> dict[str, Any]:
    (uid, account, direction, remote, streams, start, answer, end, duration, result, code,
     reason) = row
    return {"id": uid, "account": account, "direction": direction, "remote": remote,
            "streams": json.loads(streams), "start": start, "answer": answer, "end": end,
            "duration": duration, "result": result, "code": code, "reason": reason}


def message_row(row: tuple[Any, ...]) -> dict[str, Any]:
    (uid, kind, session, account, direction, remote, time, content_type, content, status,
     code, reason, updated) = row
    return {"id": uid, "kind": kind, "session": session, "account": account,
            "direction": direction, "remote": remote, "time": time,
            "content_type": content_type, "content": content, "status": status, "code": code,
            "reason": reason, "updated": updated}


def page(rows: list[dict[str, Any]], limit: int, time_key: str) -> tuple[list[dict[str, Any]],
                                                                         float | None]:
    """The rows of a page and the `before` of the next one (None: this is the last)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, rows[-1][time_key]


def deletions(flt: Filter) -> list[tuple[str, Statement]]:
    """What `history.delete` removes: (table, statement) pairs. A session id removes that
    session and the messages and files of its chat; a message id only that message; other
    filters apply to every table."""
    if flt.message is not None:
        conditions, params = _common(flt, "messages", "time")
        conditions.append("messages.uid = ?")
        return [("messages", (f"DELETE FROM messages{_where(conditions)}",
                              (*params, flt.message)))]
    statements: list[tuple[str, Statement]] = []
    for table, time_column, session_column in (("sessions", "start", "uid"),
                                               ("messages", "time", "session"),
                                               ("file_transfers", "start", "session")):
        conditions, params = _common(flt, table, time_column)
        if flt.session is not None:
            conditions.append(f"{table}.{session_column} = ?")
            params.append(flt.session)
        statements.append((table, (f"DELETE FROM {table}{_where(conditions)}", tuple(params))))
    return statements


def prune(cutoff: float) -> list[tuple[str, Statement]]:
    """Rows older than `cutoff` (Unix time) go; sessions and transfers still open stay."""
    return [
        ("sessions", ('DELETE FROM sessions WHERE start < ? AND ("end" IS NOT NULL '
                      "OR result IS NOT NULL)", (cutoff,))),
        ("messages", ("DELETE FROM messages WHERE time < ? AND status != 'sending'",
                      (cutoff,))),
        ("file_transfers", ('DELETE FROM file_transfers WHERE start < ? AND ("end" IS NOT NULL '
                            "OR result IS NOT NULL)", (cutoff,))),
    ]
