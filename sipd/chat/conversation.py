"""One chat stream's conversation, sans-I/O: what we send, what the peer's MSRP session tells us
about it, what arrives, who is typing, and the notifications owed.

Inputs are calls with the current time (`now`, monotonic seconds; `wall`, an aware datetime);
outputs are `Send` (an MSRP message to queue) and chat events (`Arrived`, `ComposingChanged`,
`Delivery`). The stream kind that owns it moves bytes and publishes the events.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from ..messages.iscomposing import ComposingIndicator, ComposingReceiver, IsComposing
from ..msrp import events as msrp
from ..msrp.message import new_message_id
from .imdn import Disposition
from .payload import (
    ChatPayloadError,
    ChatPayloads,
    ChatText,
    Composing,
    Ignored,
    Notice,
    Outgoing,
)

MAX_AWAITING_DISPLAY = 1000  # incoming messages remembered for a later chat.displayed
MAX_TRACKED = 5000  # our messages whose delivery we still follow


@dataclass(frozen=True)
class Send:
    """Queue this on the MSRP session. `report`: ask for a failure report (our messages)."""

    message_id: str
    payload: Outgoing
    report: bool = True


@dataclass(frozen=True)
class Arrived:
    text: ChatText


@dataclass(frozen=True)
class ComposingChanged:
    sender: str | None
    state: str


@dataclass(frozen=True)
class Delivery:
    message_id: str
    status: str  # delivered | failed | displayed
    code: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Unreadable:
    """An incoming body we could not read; the peer got its 200 already (MSRP is hop by hop)."""

    message_id: str
    reason: str


Output = Send | Arrived | ComposingChanged | Delivery | Unreadable


class ChatConversation:
    def __init__(self, payloads: ChatPayloads) -> None:
        self.payloads = payloads
        self.indicator = ComposingIndicator()
        self.receiver = ComposingReceiver()
        self._ours: dict[str, str] = {}  # our chat messages' ids → the last status told
        self._quiet: set[str] = set()  # our composing indications and notifications
        self._awaiting_display: dict[str, ChatText] = {}

    # -- the user ---------------------------------------------------------------------------

    def send(self, content: bytes, content_type: str, *, now: float,
             wall: datetime.datetime) -> Send:
        """A message from our user; ChatPayloadError when the peer cannot take its type."""
        message_id = new_message_id()
        payload = self.payloads.message(content, content_type, message_id=message_id, now=wall)
        self.indicator.message_sent(now)
        if len(self._ours) >= MAX_TRACKED:  # the oldest outcomes are long told
            del self._ours[next(iter(self._ours))]
        self._ours[message_id] = "pending"
        return Send(message_id, payload)

    def composing(self, state: str, *, now: float, wall: datetime.datetime) -> Send | None:
        indication = self.indicator.typed(now) if state == "active" else self.indicator.cleared(
            now)
        return self._indication(indication, wall)

    def displayed(self, message_ids: list[str], *, wall: datetime.datetime) -> list[Send]:
        """Display notifications for messages that asked for one; ChatPayloadError naming the
        ids that did not (or that we do not know)."""
        unknown = [m for m in message_ids if m not in self._awaiting_display]
        if unknown:
            raise ChatPayloadError("no display notification was asked for message(s) "
                                   + ", ".join(unknown))
        sends = []
        for message_id in message_ids:
            item = self._awaiting_display.pop(message_id)
            sends.append(self._notify(item, "display", "displayed", wall))
        return sends

    # -- time -------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.indicator.next_deadline(), self.receiver.next_deadline())
                     if d is not None]
        return min(deadlines, default=None)

    def tick(self, now: float, wall: datetime.datetime) -> list[Output]:
        out: list[Output] = []
        send = self._indication(self.indicator.tick(now), wall)
        if send is not None:
            out.append(send)
        change = self.receiver.tick(now)
        if change is not None:
            out.append(ComposingChanged(None, change.state))
        return out

    # -- the MSRP session -------------------------------------------------------------------

    def on_msrp(self, event: msrp.Event, *, now: float,
                wall: datetime.datetime) -> list[Output]:
        if isinstance(event, msrp.MessageReceived):
            return self._received(event, now, wall)
        if isinstance(event, msrp.MessageDelivered):
            return self._status(event.message_id, "delivered", event.code, None)
        if isinstance(event, msrp.MessageFailed):
            return self._status(event.message_id, "failed", event.code, event.reason)
        return []

    def _received(self, event: msrp.MessageReceived, now: float,
                  wall: datetime.datetime) -> list[Output]:
        # the SEND's whole Content-Type: a bare text's charset is a parameter of it
        content_type = event.headers.get("Content-Type")
        try:
            item = self.payloads.read(event.body, content_type, message_id=event.message_id)
        except ChatPayloadError as exc:
            return [Unreadable(event.message_id, str(exc))]
        if isinstance(item, Composing):
            change = self.receiver.indication(item.indication, now)
            return [] if change is None else [ComposingChanged(item.sender, change.state)]
        if isinstance(item, Notice):
            return self._notice(item.disposition)
        if isinstance(item, Ignored):
            return []  # answered by the MSRP session already; nothing to show
        out: list[Output] = []
        change = self.receiver.message_received(now)
        if change is not None:
            out.append(ComposingChanged(item.sender, change.state))
        out.append(Arrived(item))
        if "positive-delivery" in item.dispositions and self.payloads.notifications:
            out.append(self._notify(item, "delivery", "delivered", wall))
        if "display" in item.dispositions and self.payloads.notifications:
            if len(self._awaiting_display) >= MAX_AWAITING_DISPLAY:
                self._awaiting_display.pop(next(iter(self._awaiting_display)))
            self._awaiting_display[item.message_id] = item
        return out

    def _notice(self, disposition: Disposition) -> list[Output]:
        status = {"delivered": "delivered", "displayed": "displayed"}.get(disposition.status,
                                                                           "failed")
        reason = None if status != "failed" else f"the recipient says {disposition.status}"
        return self._status(disposition.message_id, status, None, reason)

    def _status(self, message_id: str, status: str, code: int | None,
                reason: str | None) -> list[Output]:
        if message_id in self._quiet:  # our indications and notices: nobody waits on them
            self._quiet.discard(message_id)
            return []
        told = self._ours.get(message_id)
        if told is None or told == status or (told == "displayed" and status == "delivered"):
            return []
        self._ours[message_id] = status
        return [Delivery(message_id, status, code, reason)]

    def _indication(self, indication: IsComposing | None,
                    wall: datetime.datetime) -> Send | None:
        if indication is None:
            return None
        try:
            payload = self.payloads.composing(indication, wall)
        except ChatPayloadError:
            return None  # a peer that takes no is-composing simply sees none
        message_id = new_message_id()
        self._quiet.add(message_id)
        return Send(message_id, payload, report=False)

    def _notify(self, about: ChatText, kind: str, status: str, wall: datetime.datetime) -> Send:
        """The notification for the message `about`, addressed to its sender (RFC 5438
        §7.2.1.1: the IMDN's To is the IM's From)."""
        message_id = new_message_id()
        payload = self.payloads.notification(
            Disposition(about.message_id, kind, status, wall),  # type: ignore[arg-type]
            message_id=message_id, now=wall, to=about.sender)
        self._quiet.add(message_id)
        return Send(message_id, payload, report=False)
