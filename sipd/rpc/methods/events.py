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
                     "replay the buffered events after this seq (from an earlier event or "
                     "system.state)"] = None,
) -> dict:
    """Receive events as `event` notifications {seq, time, topic, name, data, subscription}.

    With `since`, the buffered events after that seq are sent first, right after this reply;
    when some of them are no longer buffered the reply's `gap` says which, and an `events.gap`
    notification marks the spot in the stream."""
    unknown = sorted(set(topics) - ALL_TOPICS)
    if unknown:
        raise invalid_params(f"unknown topic(s) {unknown}", known=sorted(ALL_TOPICS))
    sub_id, replay = ctx.connection.subscribe(topics or None, since)
    ctx.after_reply.append(lambda: ctx.connection.release(sub_id, replay))
    return {
        "subscription": sub_id,
        "topics": sorted(topics or ALL_TOPICS),
        "seq": ctx.service.bus.seq,
        "replayed": len(replay.events),
        "gap": {"first": replay.gap[0], "last": replay.gap[1]} if replay.gap else None,
    }


@method("events.unsubscribe")
async def unsubscribe(ctx: CallContext, *,
                      subscription: Annotated[int, "the id events.subscribe returned"]) -> dict:
    """Stop a subscription of this connection."""
    if not ctx.connection.unsubscribe(subscription):
        raise not_found("subscription", subscription)
    return {"unsubscribed": subscription}
