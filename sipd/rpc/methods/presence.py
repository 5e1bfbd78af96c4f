"""presence.*: our presence (PUBLISH, or sipd as its own presence agent), subscriptions to
others' (SUBSCRIBE: presence, lists, busy lamps, voicemail), and who watches us."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ...accounts.model import AccountNotFound
from ...presence.trio.errors import PresenceError
from ..api import method
from ..dispatch import CallContext
from ..errors import invalid_params, not_found

ACCOUNT = Annotated[str, "the account's id (\"local\": the daemon's own address)"]
TO = Annotated[str, "whose state, e.g. sip:bob@example.com (a resource list's URI with list)"]
EVENT = Annotated[Literal["presence", "presence.winfo", "message-summary", "dialog"],
                  "the event package: presence, presence.winfo (our watchers), "
                  "message-summary (voicemail), dialog (busy lamp)"]


def _account(ctx: CallContext, account: str) -> Any:
    try:
        return ctx.service.useragent.accounts.get(account)
    except AccountNotFound:
        raise not_found("account", account) from None


def _presence(ctx: CallContext) -> Any:
    return ctx.service.useragent.presence


@method("presence.publish")
async def publish(
    ctx: CallContext, *, account: ACCOUNT,
    status: Annotated[Literal["open", "closed"], "basic status: open (reachable) or closed"],
    note: Annotated[str | None, "a status line, e.g. \"in a meeting\""] = None,
    activities: Annotated[list[str] | None, "RPID activities (RFC 4480): away, busy, "
                          "on-the-phone, meal, meeting, vacation... or free text"] = None,
    mood: Annotated[list[str] | None, "RPID moods (RFC 4480): happy, sad... or free text"]
    = None,
    display_name: Annotated[str | None, "CIPID display name (RFC 4482)"] = None,
    icon: Annotated[str | None, "CIPID icon URI (RFC 4482)"] = None,
) -> dict:
    """Publish the account's presence: at its server (PUBLISH, refreshed until unpublished)
    when it registers, and to the watchers subscribed to sipd itself.

    Returns {account, published (at a server), watchers (notified here), status}; the
    server's answers come as `presence.publication` events."""
    try:
        return await _presence(ctx).publish(_account(ctx, account), {
            "status": status, "note": note, "activities": activities, "mood": mood,
            "display_name": display_name, "icon": icon})
    except PresenceError as exc:
        raise invalid_params(exc.reason, field=exc.field) from None


@method("presence.unpublish")
async def unpublish(ctx: CallContext, *, account: ACCOUNT) -> dict:
    """Remove the account's published presence (its watchers here then see it closed)."""
    return await _presence(ctx).unpublish(_account(ctx, account))


@method("presence.subscribe")
async def subscribe(
    ctx: CallContext, *, account: ACCOUNT, to: TO,
    list: Annotated[bool, "to is a resource list (RFC 4662): one subscription, a "
                    "presence.state per member"] = False,
    event: EVENT = "presence",
) -> dict:
    """Subscribe to a contact's presence (or a list's, or a busy lamp, or voicemail).

    Returns {account, to, event, list, state, reason, code}. Changes come as
    `presence.subscription` events; the contents as `presence.state` (one per contact),
    `presence.dialog`, `presence.watcher` or `account.message_summary`. Subscribing again
    to what is already subscribed returns the subscription as it stands."""
    try:
        return await _presence(ctx).subscribe(_account(ctx, account), to, event=event,
                                              is_list=list)
    except PresenceError as exc:
        raise invalid_params(exc.reason, field=exc.field) from None


@method("presence.unsubscribe")
async def unsubscribe(ctx: CallContext, *, account: ACCOUNT, to: TO,
                      event: EVENT = "presence") -> dict:
    """End a subscription (SUBSCRIBE with Expires 0); `presence.subscription` says when."""
    try:
        return await _presence(ctx).unsubscribe(_account(ctx, account), to, event)
    except PresenceError as exc:
        raise invalid_params(exc.reason, field=exc.field) from None


@method("presence.watchers")
async def watchers(ctx: CallContext, *, account: ACCOUNT) -> dict:
    """Who watches the account: subscribers to sipd itself, and the watchers the account's
    server reports (a presence.winfo subscription, started by the first call).

    Returns {account, watchers: [{watcher, status, event, display_name, ...}]}; changes
    come as `presence.watcher` events."""
    found = _account(ctx, account)
    presence = _presence(ctx)
    await presence.watch_watchers(found)
    return {"account": found.id, "watchers": presence.watchers(found)}
