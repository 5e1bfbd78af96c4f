"""presence.authorize / presence.policies: who may see an account's presence.

With XCAP the decisions are pres-rules (RFC 5025) on the server, and the presence server
applies them; without, they are sipd's own watcher list, in its state.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ..api import method
from ..dispatch import CallContext
from ..errors import invalid_params
from ...presence.trio.errors import PresenceError
from .contacts import ACCOUNT, _contacts, xcap_errors
from .presence import _account, _presence


@method("presence.authorize")
async def authorize(
    ctx: CallContext, *, account: ACCOUNT,
    watcher: Annotated[str | None, "a watcher's URI, e.g. sip:bob@example.com"] = None,
    allow: Annotated[bool | None, "true: the watcher may see the account's presence; false: "
                     "refused (the same as action allow / block)"] = None,
    action: Annotated[Literal["allow", "block", "polite-block", "confirm"] | None,
                      "what the watcher (or domain) gets; null with no allow forgets sipd's "
                      "decision"] = None,
    domain: Annotated[str | None, "a whole domain, e.g. example.com (instead of watcher)"]
    = None,
) -> dict[str, Any]:
    """Decide whether a watcher, or everyone in a domain, may see the account's presence. The
    decision is kept as a pres-rules policy (on the XCAP server, or in sipd's state) and, for
    a watcher, applied at once to the subscriptions sipd serves itself: a pending one becomes
    active, or is terminated with reason rejected. Returns {account, watcher or domain,
    action, store, online, pending, subscriptions (how many of sipd's own it changed)}.

    polite-block makes the watcher see the account as offline; confirm asks the user each
    time. A watcher's own decision wins over its domain's. With XCAP the presence server
    applies the policy; the watcher information it reports (presence.watchers,
    presence.watcher events) is asked for again a moment later."""
    if (watcher is None) == (domain is None):
        raise invalid_params("give either watcher or domain")
    if allow is not None and action is not None and action != ("allow" if allow else "block"):
        raise invalid_params("allow and action disagree", field="action")
    if allow is not None:
        action = "allow" if allow else "block"
    target = watcher if watcher is not None else domain
    assert target is not None
    result: dict[str, Any] = {"account": account, "action": action,
                              ("watcher" if watcher is not None else "domain"): target}
    if watcher is not None and action in ("allow", "block", "polite-block"):
        try:
            own = await _presence(ctx).authorize(_account(ctx, account), watcher,
                                                 action == "allow")
        except PresenceError as exc:
            raise invalid_params(exc.reason, field=exc.field) from None
        result["allow"] = action == "allow"
        result["subscriptions"] = own.get("subscriptions", 0)
    with xcap_errors(account):
        contacts = _contacts(ctx)
        await contacts.authorize(account, target, action, domain=domain is not None)
        result.update(contacts.summary(account, await contacts.book(account)))
    if result["store"] == "xcap":  # the server decides: its watcher information is read again
        _presence(ctx).policies_changed(_account(ctx, account))
    return result


@method("presence.policies")
async def policies(ctx: CallContext, *, account: ACCOUNT) -> dict[str, Any]:
    """The decisions about watchers and domains: {policies: [{target, kind, action}]}
    (`kind` watcher or domain)."""
    with xcap_errors(account):
        book = await _contacts(ctx).book(account)
    return {"policies": [{"target": p.target, "kind": p.kind, "action": p.action}
                         for p in book.watcher_policies()]}
