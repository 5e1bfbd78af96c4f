"""chat.*: instant messages in a session's chat stream (MSRP).

A chat is a stream of a session: start one with `sessions.start({"streams": ["chat"]})` (or
beside audio), answer an incoming one with `sessions.answer`. Events on the `chat` topic:
`chat.sending` `{session, message_id, to, content_type, content, encoding?}` (ours, as it
goes), `chat.message` `{session, message_id, from, content_type, content, encoding?, time}`,
`chat.composing` `{session, from, state}`, `chat.delivery` `{session, message_id, status:
delivered|failed|displayed, code?, reason?}`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable
from typing import Annotated, Literal, TypeVar

from ...sessions.errors import InvalidSessionParam, SessionNotFound, SessionStateError
from ...sessions.streams.chat import ChatStream, chat_of
from ..api import method
from ..dispatch import CallContext
from ..errors import CONFLICT, RpcError, invalid_params, not_found
from ..registry import Constraint

T = TypeVar("T")

SESSION = Annotated[str, Constraint(minLength=1),
                    "the session carrying the chat (sessions.list shows them)"]


def _chat(ctx: CallContext, session: str) -> ChatStream:
    try:
        return chat_of(ctx.service.useragent.sessions.get(session))
    except SessionNotFound as exc:
        raise not_found("session", exc.id) from None
    except SessionStateError as exc:
        raise RpcError(CONFLICT, "Conflict", {"reason": str(exc)}) from None


async def _call(step: Awaitable[T]) -> T:
    try:
        return await step
    except InvalidSessionParam as exc:
        raise invalid_params(exc.reason, field=exc.field) from None
    except SessionStateError as exc:
        raise RpcError(CONFLICT, "Conflict", {"reason": str(exc)}) from None


@method("chat.send")
async def send(
    ctx: CallContext, *, session: SESSION,
    content: Annotated[str, "the message (base64 when `encoding` says so)"],
    content_type: Annotated[str, Constraint(minLength=1),
                            "its MIME type: text/plain, text/html, image/png..."] = "text/plain",
    encoding: Annotated[Literal["utf-8", "base64"],
                        "how `content` is written: text, or base64 for binary"] = "utf-8",
) -> dict:
    """Send a message in the session's chat: {message_id}. It goes wrapped in message/cpim
    when the peer takes that (with an IMDN Message-ID asking for delivery and display
    notifications), plain otherwise; large ones in chunks. `chat.delivery` tells its fate."""
    chat = _chat(ctx, session)
    if encoding == "base64":
        try:
            body = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise invalid_params("content is not valid base64", field="content") from None
    else:
        body = content.encode("utf-8")
    message_id = await _call(chat.send(body, content_type))
    return {"message_id": message_id}


@method("chat.composing")
async def composing(ctx: CallContext, *, session: SESSION,
                    state: Annotated[Literal["active", "idle"], "typing or not"]) -> dict:
    """Tell the peer the user is typing (active, refreshed while it lasts) or stopped (idle),
    RFC 3994."""
    await _call(_chat(ctx, session).composing(state))
    return {}


@method("chat.displayed")
async def displayed(
    ctx: CallContext, *, session: SESSION,
    message_ids: Annotated[list[Annotated[str, Constraint(minLength=1)]],
                           Constraint(minItems=1, maxItems=1000),
                           "ids of received messages (chat.message's message_id)"],
) -> dict:
    """Send display notifications (RFC 5438) for received messages that asked for one."""
    await _call(_chat(ctx, session).displayed(list(message_ids)))
    return {}
