"""presence.authorize / presence.policies: who may see an account's presence.

With XCAP the decisions are pres-rules (RFC 5025) on the server, and the presence server
applies them; without, they are sipd's own watcher list, in its state.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ..api import method
from ..dispatch import CallContext
from ..errors import invalid_params
from .contacts import ACCOUNT, _contacts, xcap_errors


@method("presence.authorize")
async def authorize(
    ctx: CallContext, *, account: ACCOUNT,
    action: Annotated[Literal["allow", "block", "polite-block", "confirm"] | None,
                      "what the watcher (or domain) gets; null forgets sipd's decision"],
    watcher: Annotated[str | None, "a watcher's URI, e.g. sip:bob@example.com"] = None,
    domain: Annotated[str | None, "a whole domain, e.g. example.com (instead of watcher)"]
    = None,
) -> dict[str, Any]:
    """Decide whether a watcher, or everyone in a domain, may see the account's presence:
    {account, store, online, pending}.

    polite-block makes the watcher see the account as offline; confirm asks the user each
    time. A watcher's own decision wins over its domain's."""
    if (watcher is None) == (domain is None):
        raise invalid_params("give either watcher or domain")
    target = watcher if watcher is not None else domain
    assert target is not None
    with xcap_errors(account):
        contacts = _contacts(ctx)
        await contacts.authorize(account, target, action, domain=domain is not None)
        summary: dict[str, Any] = contacts.summary(account, await contacts.book(account))
        return summary


@method("presence.policies")
async def policies(ctx: CallContext, *, account: ACCOUNT) -> dict[str, Any]:
    """The decisions about watchers and domains: {policies: [{target, kind, action}]}
    (`kind` watcher or domain)."""
    with xcap_errors(account):
        book = await _contacts(ctx).book(account)
    return {"policies": [{"target": p.target, "kind": p.kind, "action": p.action}
                         for p in book.watcher_policies()]}
