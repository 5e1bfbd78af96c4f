"""events.subscribe / events.unsubscribe."""

from __future__ import annotations

from typing import Annotated

from ...events import ALL_TOPICS
from ..api import method
from ..registry import Constraint
from ..dispatch import CallContext
from ..errors import invalid_params, not_found


@method("events.subscribe")
async def subscribe(
    ctx: CallContext, *,
    topics: Annotated[list[str], "topics to receive (accounts, sessions, messages, chat, presence, "
                      "files, xcap, settings, media, system); none or [] means all"] = [],
    since: Annotated[int | None, Constraint(minimum=0),
                     "replay the buffered events after this seq (the last one you saw, or "
                     "system.state's seq)"] = None,
    boot: Annotated[str | None, Constraint(maxLength=64),
                    "the run `since` is from (the boot of the earlier subscribe or "
                    "system.state); a since of another run is a gap"] = None,
) -> dict:
    """Receive events as `event` notifications {seq, time, topic, name, data, subscription}.

    With `since`, the buffered events after that seq are sent first, right after this reply,
    at the pace the client reads them (they never count against its queue, so any `since`
    works). When some are no longer buffered, the reply's `gap` says which and an
    `events.gap` notification {subscription, first, last} marks the spot in the stream; an
    `events.gap` also marks events that leave the buffer before a slow reader gets to them.
    Seq numbers keep rising across restarts of the daemon, so a `since` from an earlier run
    is always a gap, never mistaken for a point in this run; `boot` (a new one each run, also
    in system.state and rpc.json) names the run. `replayed` counts the buffered events that
    will be replayed."""
    unknown = sorted(set(topics) - ALL_TOPICS)
    if unknown:
        raise invalid_params(f"unknown topic(s) {unknown}", known=sorted(ALL_TOPICS))
    sub_id, resume = ctx.connection.subscribe(topics or None, since, boot)
    ctx.after_reply.append(lambda: ctx.connection.release(sub_id))
    return {
        "subscription": sub_id,
        "topics": sorted(topics or ALL_TOPICS),
        "seq": ctx.service.bus.seq,
        "boot": ctx.service.bus.boot,
        "replayed": resume.buffered,
        "gap": resume.gap.as_dict() if resume.gap else None,
    }


@method("events.unsubscribe")
async def unsubscribe(ctx: CallContext, *,
                      subscription: Annotated[int, "the id events.subscribe returned"]) -> dict:
    """Stop a subscription of this connection."""
    if not ctx.connection.unsubscribe(subscription):
        raise not_found("subscription", subscription)
    return {"unsubscribed": subscription}
