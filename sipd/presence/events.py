"""Events the presence machines report (plain data): how a subscription, a watcher or a
publication stands, and the content each NOTIFY brought."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from sipd.sip.dialog import DialogId

__all__ = ["SubscriptionState", "SubscriptionChanged", "Notified", "WatcherState",
           "WatcherChanged", "PublicationState", "PublicationChanged"]


class SubscriptionState(str, enum.Enum):
    SUBSCRIBING = "subscribing"  # SUBSCRIBE sent, no NOTIFY yet
    PENDING = "pending"          # the notifier waits for the presentity's authorisation
    ACTIVE = "active"
    RETRYING = "retrying"        # failed or ended by the notifier; a new SUBSCRIBE at retry_at
    TERMINATED = "terminated"    # over for good: see reason and code


@dataclass(frozen=True)
class SubscriptionChanged:
    """`presence.subscription`: the subscription's state and why. `retry_at` is on the
    caller's clock (the `now` it feeds in)."""
    state: SubscriptionState
    reason: str | None = None    # the notifier's reason (rejected, deactivated...) or ours
    code: int | None = None      # the SIP status that made it so
    retry_at: float | None = None
    expires: int | None = None   # seconds the subscription was last granted for

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"state": self.state.value}
        for name in ("reason", "code", "retry_at", "expires"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass(frozen=True, eq=False)
class Notified:
    """A NOTIFY we accepted (and answered 200): its body is for the event package's reader.
    `dialog` names the notifier's dialog (forked NOTIFYs come in several); `first` is its
    first NOTIFY, so a reader that counts versions starts afresh."""
    dialog: DialogId
    state: str                   # its Subscription-State: active, pending, terminated
    content_type: str | None
    body: bytes
    first: bool
    reason: str | None = None    # of a terminated state


class WatcherState(str, enum.Enum):
    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class WatcherChanged:
    """`presence.watcher`: a subscription to us (we are the notifier) changed. `event` says
    why, in RFC 3857's words (subscribe, approved, rejected, timeout, deactivated...)."""
    watcher: str                 # the watcher's URI (the SUBSCRIBE's From)
    state: WatcherState
    event: str
    display_name: str | None = None

    def data(self) -> dict[str, Any]:
        return {"watcher": self.watcher, "status": self.state.value, "event": self.event,
                "display_name": self.display_name}


class PublicationState(str, enum.Enum):
    PUBLISHING = "publishing"    # the first PUBLISH (or a republish after a 412) is out
    PUBLISHED = "published"
    FAILED = "failed"            # retrying at retry_at, or for good when retry_at is None
    UNPUBLISHED = "unpublished"


@dataclass(frozen=True)
class PublicationChanged:
    state: PublicationState
    code: int | None = None
    reason: str | None = None
    expires: int | None = None
    retry_at: float | None = None

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"state": self.state.value}
        for name in ("code", "reason", "expires", "retry_at"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data
