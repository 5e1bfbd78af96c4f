"""messages.*: pager-mode messages (SIP MESSAGE) and is-composing indications."""

from __future__ import annotations

from typing import Annotated, Literal

from ...accounts.model import AccountNotFound
from ...messages.pager import PagerError
from ..api import method
from ..dispatch import CallContext
from ..errors import invalid_params, not_found

ACCOUNT = Annotated[str, "the sending account's id (\"local\": the daemon's own address)"]
TO = Annotated[str, "the recipient, e.g. sip:bob@example.com or bob@192.0.2.1:5060"]


def _account(ctx: CallContext, account: str):
    try:
        return ctx.service.useragent.accounts.get(account)
    except AccountNotFound:
        raise not_found("account", account) from None


@method("messages.send")
async def send(
    ctx: CallContext, *, account: ACCOUNT, to: TO,
    content: Annotated[str, "the message text"],
    content_type: Annotated[str, "its MIME type (text/plain, text/html)"] = "text/plain",
    cpim: Annotated[bool, "wrap it in message/cpim (RFC 3862)"] = False,
) -> dict:
    """Send a MESSAGE and wait for its final response: {id, code, reason, delivered}.

    `message.sending` is published before it goes and the outcome as `message.delivery`;
    the reply comes once both are in the history."""
    sender = _account(ctx, account)
    try:
        result = await ctx.service.useragent.pager.send(sender, to, content, content_type, cpim)
    except PagerError as exc:
        raise invalid_params(exc.reason, field=exc.field) from None
    if ctx.service.history is not None:
        await ctx.service.history.caught_up()  # a reply means "in the history" too
    return result


@method("messages.composing")
async def composing(ctx: CallContext, *, account: ACCOUNT, to: TO,
                    state: Annotated[Literal["active", "idle"], "typing or not"]) -> dict:
    """Tell the recipient the user is typing (active) or stopped (idle), RFC 3994."""
    sender = _account(ctx, account)
    try:
        return await ctx.service.useragent.pager.send_composing(sender, to, state == "active")
    except PagerError as exc:
        raise invalid_params(exc.reason, field=exc.field) from None
