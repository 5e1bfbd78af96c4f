"""How an offer is answered m-line by m-line (RFC 3264 §6), before anything is allocated
(sans-I/O).

Each offered line goes to the kind that recognises it (sipd.sessions.streams.registry) and
can take it; a line no kind takes, or one the offer itself rejected (port 0), is answered
with port 0. The offer is refused as a whole (488, with the reasons in a Warning) only when
no line at all is taken.

    plan = plan_answer(offer, registry, context)   # NothingAccepted -> 488
    plan.kinds()                                   # the kinds to make streams of, in order
    plan.uses_media_worker                         # False: no worker to allocate
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..sdp import MediaDescription, SessionDescription
from .base import StreamContext, StreamKind
from .registry import StreamRegistry


class NothingAccepted(ValueError):
    """No line of an offer can be taken; the text says why (for the 488's Warning)."""


@dataclass(frozen=True)
class LinePlan:
    index: int
    offered: MediaDescription
    kind: StreamKind | None  # who answers it; None: port 0
    refusal: str | None = None  # why it gets port 0, when a kind recognised it

    @property
    def accepted(self) -> bool:
        return self.kind is not None


@dataclass(frozen=True)
class AnswerPlan:
    lines: tuple[LinePlan, ...]

    @property
    def accepted(self) -> list[LinePlan]:
        return [line for line in self.lines if line.accepted]

    def kinds(self) -> list[StreamKind]:
        """The kinds taking a line, each once, in m-line order."""
        seen: dict[str, StreamKind] = {}
        for line in self.accepted:
            assert line.kind is not None
            seen.setdefault(line.kind.name, line.kind)
        return list(seen.values())

    def takes(self, name: str) -> bool:
        return any(kind.name == name for kind in self.kinds())

    @property
    def uses_media_worker(self) -> bool:
        return any(kind.uses_media_worker for kind in self.kinds())


def plan_answer(offer: SessionDescription, registry: StreamRegistry,
                context: StreamContext) -> AnswerPlan:
    """Which kind answers which line of `offer`; NothingAccepted when none can."""
    lines: list[LinePlan] = []
    for index, offered in enumerate(offer.media):
        if offered.is_rejected:
            lines.append(LinePlan(index, offered, None, "rejected in the offer"))
            continue
        kind = registry.kind_for(offered)
        if kind is None:
            lines.append(LinePlan(index, offered, None,
                                  f"no stream kind takes {offered.type} over {offered.proto}"))
            continue
        refusal = kind.refusal(offer, offered, context)
        lines.append(LinePlan(index, offered, None if refusal else kind, refusal))
    plan = AnswerPlan(tuple(lines))
    if not plan.accepted:
        raise NothingAccepted(_why_not(plan))
    return plan


def offered_kinds(offer: SessionDescription, registry: StreamRegistry) -> list[str]:
    """The kinds of the lines an offer carries (not rejected, recognised), each once, in
    m-line order: what an incoming session is announced with, before it is checked."""
    names: dict[str, None] = {}
    for offered in offer.media:
        kind = None if offered.is_rejected else registry.kind_for(offered)
        if kind is not None:
            names.setdefault(kind.name)
    return list(names)


def announced(offer: SessionDescription, registry: StreamRegistry) -> dict[str, Any]:
    """What the kinds of an offer's lines add to its session.new (a file's description)."""
    fields: dict[str, Any] = {}
    for offered in offer.media:
        kind = None if offered.is_rejected else registry.kind_for(offered)
        if kind is not None:
            for name, value in kind.announce(offered).items():
                fields.setdefault(name, value)
    return fields


async def answers_itself(offer: SessionDescription, registry: StreamRegistry,
                         context: StreamContext) -> bool:
    """Whether every line of the offer is of a kind that answers it without the user."""
    lines = [line for line in offer.media if not line.is_rejected]
    if not lines:
        return False
    for offered in lines:
        kind = registry.kind_for(offered)
        if kind is None or not await kind.answers_itself(offer, offered, context):
            return False
    return True


def _why_not(plan: AnswerPlan) -> str:
    if not plan.lines:
        return "the offer has no m-line"
    reasons = list(dict.fromkeys(line.refusal for line in plan.lines if line.refusal))
    if len(reasons) == 1:
        return reasons[0]
    return "; ".join(f"m-line {line.index}: {line.refusal}" for line in plan.lines)
