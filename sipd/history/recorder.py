"""What each bus event changes in the history: events in, SQL statements out.

Pure: the writer applies the statements of a batch of events in one transaction. A row is
found again by its `uid` (a session id, a message id) and, for sessions, by being still open:
session ids are unique only within a run, and every row left open by an earlier run is closed
as `interrupted` when the database opens (`close_interrupted`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from sipd.events import Event
from sipd.sessions.ring_limit import NO_ANSWER

from .remote import remote_key

Statement = tuple[str, tuple[Any, ...]]

TOPICS = ("sessions", "messages", "chat", "files")

_END_OF_SESSION = ("ended", "failed")


def statements_for(event: Event) -> list[Statement]:
    """The statements recording `event` (none for events history does not keep)."""
    handler = _HANDLERS.get(event.name)
    return handler(event.data, event.time) if handler is not None else []


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


# -- sessions ----------------------------------------------------------------------------------

def _session_new(data: dict[str, Any], time: float) -> list[Statement]:
    streams = [s for s in data.get("streams") or [] if isinstance(s, str)]
    remote = _text(data, "remote")
    return [("INSERT INTO sessions (uid, account, direction, remote, remote_key, streams, start)"
             " VALUES (?, ?, ?, ?, ?, ?, ?)",
             (_text(data, "id"), _text(data, "account"), _text(data, "direction"), remote,
              remote_key(remote), json.dumps(streams), time))]


def _session_state(data: dict[str, Any], time: float) -> list[Statement]:
    state = data.get("state")
    uid = _text(data, "id")
    if state == "established":
        return [('UPDATE sessions SET answer = ? WHERE uid = ? AND "end" IS NULL '
                 "AND result IS NULL AND answer IS NULL", (time, uid))]
    if state in _END_OF_SESSION:
        code = _int(data, "code")
        # completed: it was answered. Unanswered, a 487 (or no code) means the caller gave
        # up: cancelled if it was us, missed if them; so does nobody answering in time (our
        # 480 "no answer", sipd.sessions.ring_limit); any other code is a refusal: the
        # remote's of our call (failed), ours of theirs (rejected).
        gave_up = code is None or code == 487 or (
            code == 480 and data.get("reason") == NO_ANSWER)
        return [('UPDATE sessions SET "end" = ?, '
                 "duration = CASE WHEN answer IS NULL THEN 0 ELSE max(0, ? - answer) END, "
                 "result = CASE WHEN answer IS NOT NULL THEN 'completed' "
                 "WHEN direction = 'incoming' THEN (CASE WHEN ? THEN 'missed' ELSE 'rejected' END) "
                 "ELSE (CASE WHEN ? THEN 'cancelled' ELSE 'failed' END) END, "
                 "code = ?, reason = ? "
                 'WHERE uid = ? AND "end" IS NULL AND result IS NULL',
                 (time, time, gave_up, gave_up, code, _optional_text(data, "reason"), uid))]
    return []


def _session_streams(data: dict[str, Any], time: float) -> list[Statement]:
    """A stream added or removed mid-session: the row keeps every kind it carried."""
    streams = [s for s in data.get("streams") or [] if isinstance(s, str)]
    if data.get("change") != "added" or not streams:
        return []
    return [("UPDATE sessions SET streams = ? WHERE uid = ? AND \"end\" IS NULL",
             (json.dumps(streams), _text(data, "id")))]


# -- pager messages ----------------------------------------------------------------------------

_INSERT_MESSAGE = ("INSERT INTO messages (uid, kind, session, account, direction, remote, "
                   "remote_key, time, content_type, content, status, code, reason, updated) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _message_sending(data: dict[str, Any], time: float) -> list[Statement]:
    remote = _text(data, "to")
    return [(_INSERT_MESSAGE,
             (_text(data, "id"), "pager", None, _text(data, "account"), "outgoing", remote,
              remote_key(remote), time, _text(data, "content_type") or "text/plain",
              _text(data, "content"), "sending", None, None, time))]


def _message_delivery(data: dict[str, Any], time: float) -> list[Statement]:
    status = "delivered" if data.get("delivered") is True else "failed"
    return [("UPDATE messages SET status = ?, code = ?, reason = ?, updated = ? "
             "WHERE uid = ? AND direction = 'outgoing' AND status = 'sending'",
             (status, _int(data, "code"), _optional_text(data, "reason"), time,
              _text(data, "id")))]


def _message_received(data: dict[str, Any], time: float) -> list[Statement]:
    remote = _text(data, "from")
    return [(_INSERT_MESSAGE,
             (_text(data, "id") or uuid.uuid4().hex, "pager", None, _text(data, "account"),
              "incoming", remote, remote_key(remote), time,
              _text(data, "content_type") or "text/plain", _text(data, "content"),
              "received", None, None, time))]


# -- chat messages (MSRP, in a session) -----------------------------------------------------------

# The account and remote party are the session's: its row is the open one with that uid.
_INSERT_CHAT = ("INSERT INTO messages (uid, kind, session, account, direction, remote, "
                "remote_key, time, content_type, content, status, code, reason, updated) "
                "SELECT ?, 'chat', uid, account, ?, remote, remote_key, ?, ?, ?, ?, NULL, NULL, ? "
                'FROM sessions WHERE uid = ? AND "end" IS NULL ORDER BY id DESC LIMIT 1')


def _chat_row(data: dict[str, Any], time: float, direction: str,
              status: str) -> list[Statement]:
    content = _text(data, "content")
    if data.get("encoding") == "base64":
        content = ""  # binary (a picture...): the history keeps text only
    return [(_INSERT_CHAT,
             (_text(data, "message_id") or uuid.uuid4().hex, direction, time,
              _text(data, "content_type") or "text/plain", content, status, time,
              _text(data, "session")))]


def _chat_sending(data: dict[str, Any], time: float) -> list[Statement]:
    return _chat_row(data, time, "outgoing", "sending")


def _chat_message(data: dict[str, Any], time: float) -> list[Statement]:
    return _chat_row(data, time, "incoming", "received")


def _chat_delivery(data: dict[str, Any], time: float) -> list[Statement]:
    status = data.get("status")
    if status not in ("delivered", "failed", "displayed"):
        return []
    # displayed outranks delivered (a late delivery notification changes nothing)
    return [("UPDATE messages SET status = ?, code = ?, reason = ?, updated = ? "
             "WHERE uid = ? AND session = ? AND kind = 'chat' AND direction = 'outgoing' "
             "AND NOT (status = 'displayed' AND ? = 'delivered')",
             (status, _int(data, "code"), _optional_text(data, "reason"), time,
              _text(data, "message_id"), _text(data, "session"), status))]


# -- file transfers ----------------------------------------------------------------------------

_FILE_RESULTS = {"completed": "completed", "failed": "failed", "cancelled": "cancelled",
                 "refused": "refused"}


def _file_transfer(data: dict[str, Any], time: float) -> list[Statement]:
    """file.transfer: a row when it starts, its result when it ends (by transfer id and
    session, while open)."""
    state = data.get("state")
    uid, session = _text(data, "transfer"), _text(data, "session")
    if state == "started":
        remote = _text(data, "remote")
        return [("INSERT INTO file_transfers (uid, session, account, direction, remote, "
                 "remote_key, name, size, content_type, hash, start, path) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (uid, session, _text(data, "account"), _text(data, "direction"), remote,
                  remote_key(remote), _text(data, "name"), _int(data, "size"),
                  _optional_text(data, "type"), _optional_text(data, "hash"), time,
                  _optional_text(data, "path")))]
    result = _FILE_RESULTS.get(state) if isinstance(state, str) else None
    if result is None:
        return []
    return [('UPDATE file_transfers SET "end" = ?, result = ?, reason = ?, '
             "path = coalesce(?, path) "
             'WHERE uid = ? AND session = ? AND "end" IS NULL AND result IS NULL',
             (time, result, _optional_text(data, "reason"), _optional_text(data, "path"),
              uid, session))]


Handler = Callable[[dict[str, Any], float], list[Statement]]
_HANDLERS: dict[str, Handler] = {
    "session.new": _session_new,
    "session.state": _session_state,
    "session.streams": _session_streams,
    "message.sending": _message_sending,
    "message.delivery": _message_delivery,
    "message.received": _message_received,
    "chat.sending": _chat_sending,
    "chat.message": _chat_message,
    "chat.delivery": _chat_delivery,
    "file.transfer": _file_transfer,
}


def close_interrupted(now: float) -> list[Statement]:
    """Rows an earlier run left open (it was killed, or the machine lost power): no end
    event will ever come for them."""
    return [
        ("UPDATE sessions SET result = 'interrupted', "
         "reason = 'sipd stopped before the session ended' "
         'WHERE "end" IS NULL AND result IS NULL', ()),
        ("UPDATE messages SET status = 'unknown', "
         "reason = 'sipd stopped before the final response', updated = ? "
         "WHERE status = 'sending'", (now,)),
        ("UPDATE file_transfers SET result = 'interrupted', "
         "reason = 'sipd stopped before the transfer ended' "
         'WHERE "end" IS NULL AND result IS NULL', ()),
    ]
