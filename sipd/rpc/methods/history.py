"""history.*: the calls and messages the daemon saw, newest first, and forgetting them.

Rows come from the event bus (sessions, messages) and are kept in `<state-dir>/history.db`.
Pages go by time: pass the `next` of a page as `before` to get the one after it.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Annotated, Any, Iterator

from ...history.database import HistoryUnavailable
from ...history.queries import DEFAULT_LIMIT, MAX_LIMIT, EmptySearch, Filter
from ..api import method
from ..dispatch import CallContext
from ..errors import UNAVAILABLE, RpcError, invalid_params
from ..registry import Constraint

ACCOUNT = Annotated[str, Constraint(minLength=1, maxLength=256), "only this account's"] | None
REMOTE = Annotated[str, Constraint(minLength=1, maxLength=1024),
                   "only with this remote party (any form of its URI: sip:bob@example.com "
                   "finds sips:bob@Example.com;transport=tls too)"] | None
BEFORE = Annotated[float, Constraint(minimum=0),
                   "only older than this Unix time (a page's `next`)"] | None
LIMIT = Annotated[int, Constraint(minimum=1, maximum=MAX_LIMIT), "most rows in the page"]


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except HistoryUnavailable as exc:
        raise RpcError(UNAVAILABLE, "History unavailable", {"reason": str(exc)}) from None
    except EmptySearch as exc:
        raise invalid_params(str(exc), field="query") from None


def _history(ctx: CallContext) -> Any:
    history = ctx.service.history
    if history is None:
        raise RpcError(UNAVAILABLE, "History unavailable", {"reason": "the history is not open"})
    return history


def _filter(before: float | None, **fields: Any) -> Filter:
    if before is not None and not math.isfinite(before):
        raise invalid_params(f"params.before: a finite number expected, got {before}",
                             field="before")
    return Filter(before=before, **fields)


@method("history.sessions")
async def sessions(ctx: CallContext, *, account: ACCOUNT = None, remote: REMOTE = None,
                   before: BEFORE = None, limit: LIMIT = DEFAULT_LIMIT) -> dict[str, Any]:
    """Past and current sessions, newest first: {sessions: [...], next}.

    Each: {id, account, direction, remote, streams, start, answer, end, duration, result,
    code, reason}; times are Unix times, `answer` null when never answered, `duration` in
    seconds from answer to end. `result`: completed (answered); for ours unanswered,
    cancelled (we gave up) or failed (refused, unreachable); for theirs unanswered, missed
    (the caller gave up) or rejected (refused here); interrupted (sipd stopped first); null
    while it lasts. `next` (null on the last page) is
    the `before` of the next page."""
    with _errors():
        return await _history(ctx).sessions(
            _filter(before, account=account, remote=remote), limit)


@method("history.messages")
async def messages(
    ctx: CallContext, *, account: ACCOUNT = None, remote: REMOTE = None,
    session: Annotated[str, Constraint(minLength=1, maxLength=256),
                       "only the chat messages of this session"] | None = None,
    query: Annotated[str, Constraint(minLength=1, maxLength=1024),
                     "only messages with every word of this text (word prefixes, "
                     "case and accents ignored)"] | None = None,
    before: BEFORE = None, limit: LIMIT = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Messages sent and received, newest first: {messages: [...], next}.

    Each: {id, kind (pager; chat for MSRP), session, account, direction, remote, time,
    content_type, content, status, code, reason, updated}. `status` follows delivery:
    sending, then delivered or failed (with the SIP code and reason), or displayed (a chat
    message the peer showed), for ours; received for theirs; unknown when sipd stopped
    before the final response. `next` (null on the last page) is the `before` of the next
    page."""
    with _errors():
        return await _history(ctx).messages(
            _filter(before, account=account, remote=remote, session=session), limit, query)


@method("history.files")
async def files(
    ctx: CallContext, *, account: ACCOUNT = None, remote: REMOTE = None,
    session: Annotated[str, Constraint(minLength=1, maxLength=256),
                       "only the transfers of this session"] | None = None,
    before: BEFORE = None, limit: LIMIT = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """File transfers sent and received, newest first: {files: [...], next}.

    Each: {id (the a=file-transfer-id), session, account, direction, remote, name (as
    offered), size, type, hash, start, end, result, reason, path}. `result`: completed,
    failed (hash mismatch, disk full...), cancelled (cut or hung up before the end),
    interrupted (sipd stopped first), null while it lasts; `path` where it was saved or read
    from."""
    with _errors():
        return await _history(ctx).files(
            _filter(before, account=account, remote=remote, session=session), limit)


@method("history.delete")
async def delete(
    ctx: CallContext, *, account: ACCOUNT = None, remote: REMOTE = None,
    before: Annotated[float, Constraint(minimum=0),
                      "only what is older than this Unix time"] | None = None,
    session: Annotated[str, Constraint(minLength=1, maxLength=256),
                       "one session (and the messages and files of its chat)"] | None = None,
    message: Annotated[str, Constraint(minLength=1, maxLength=256),
                       "one message"] | None = None,
    all: Annotated[bool, "everything (required when no other param narrows it)"] = False,
) -> dict[str, Any]:
    """Forget part of the history: {sessions, messages, file_transfers} rows deleted.

    The params narrow what goes (all of them must match); with none, `all: true` is
    required, so that an empty call never wipes the history by mistake."""
    narrowed = any(v is not None for v in (account, remote, before, session, message))
    if not narrowed and not all:
        raise invalid_params("say what to delete (account, remote, before, session, message) "
                             "or pass all: true to delete everything", field="all")
    if session is not None and message is not None:
        raise invalid_params("give session or message, not both", field="message")
    with _errors():
        counts = await _history(ctx).delete(_filter(
            before, account=account, remote=remote, session=session, message=message))
    return {"sessions": counts.get("sessions", 0), "messages": counts.get("messages", 0),
            "file_transfers": counts.get("file_transfers", 0)}
