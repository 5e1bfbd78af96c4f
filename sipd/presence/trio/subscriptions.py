"""One subscription the daemon holds (to a contact, a list, its own watcher information, the
voicemail summary, a busy lamp), and what the bodies of its NOTIFYs become: events
(presence.state, presence.watcher, account.message_summary, presence.dialog), one reader per
dialog of the subscription (a new one when a dialog starts: versions count anew)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sipd.accounts.model import AccountConfig
from sipd.sip.dialog import DialogId

from ..events import Notified
from ..payload import PayloadError
from ..reader import DialogInfoReader, MessageSummaryReader, PresenceReader, WatcherInfoReader
from ..subscriber import Subscriber
from .driver import SubscriptionDriver

__all__ = ["Subscription", "Reader", "Publish", "reader_for"]

log = logging.getLogger(__name__)

Reader = PresenceReader | WatcherInfoReader | MessageSummaryReader | DialogInfoReader
Publish = Callable[[str, dict[str, Any]], None]  # the event bus's publish(name, data)


@dataclass
class Subscription:
    """One subscription: its driver, and the latest of what its NOTIFYs said."""
    account: AccountConfig
    to: str
    event: str
    is_list: bool
    driver: SubscriptionDriver
    readers: dict[DialogId, Reader] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # presence: latest
    watchers: dict[str, dict[str, Any]] = field(default_factory=dict)  # winfo: current ones
    summary: dict[str, Any] | None = None                              # message-summary
    dialogs: dict[str, dict[str, Any]] = field(default_factory=dict)   # dialog: by id

    @property
    def subscriber(self) -> Subscriber:
        return self.driver.machine

    def view(self) -> dict[str, Any]:
        sub = self.subscriber
        return {"account": self.account.id, "to": self.to, "event": self.event,
                "list": self.is_list, "state": sub.state.value if sub.state else "new",
                "reason": sub.reason, "code": sub.code}

    def notified(self, notified: Notified, publish: Publish) -> None:
        """A NOTIFY's body, read by the reader of its dialog, published as events; an
        unreadable one is reported and costs nothing else."""
        log.debug("%s: %s NOTIFY from %s (%s%s), %d bytes of %s", self.account.id,
                  self.event, self.to, notified.state,
                  f";reason={notified.reason}" if notified.reason else "", len(notified.body),
                  notified.content_type)
        reader = self.readers.get(notified.dialog)
        if reader is None or notified.first:
            reader = reader_for(self.event, self.to)
            self.readers[notified.dialog] = reader
        try:
            resync = self._read(reader, notified, publish)
        except PayloadError as exc:
            log.warning("%s: unreadable %s NOTIFY from %s: %s", self.account.id, self.event,
                        self.to, exc.reason)
            publish("presence.subscription", {
                "account": self.account.id, "to": self.to, "event": self.event,
                "state": self.subscriber.state.value if self.subscriber.state else "new",
                "error": exc.reason})
            return
        if resync:  # a partial notification after a gap: full state again
            self.driver.apply(self.subscriber.refresh)

    def _read(self, reader: Reader, notified: Notified, publish: Publish) -> bool:
        account = self.account.id
        if isinstance(reader, PresenceReader):
            update = reader.read(notified.content_type, notified.body)
            for contact in update.contacts:
                data: dict[str, Any] = {"account": account, "contact": contact.contact,
                                        "subscription": contact.state}
                if contact.view is not None:
                    data.update(contact.view.data())
                elif contact.error is not None:
                    data.update({"status": "unknown", "error": contact.error})
                elif contact.state == "terminated":
                    data.update({"status": "closed", "basic": None, "reason": contact.reason})
                elif self.is_list:  # a member with no document (yet): known, state unknown
                    data.update({"status": "unknown", "basic": None})
                else:
                    continue
                if self.is_list:
                    data["list"] = self.to
                self.contacts[contact.contact] = data
                publish("presence.state", data)
            return update.resync
        if isinstance(reader, WatcherInfoReader):
            winfo = reader.read(notified.content_type, notified.body)
            for watcher in winfo.changed:
                data = {"account": account, "watcher": watcher.uri, "status": watcher.status,
                        "event": watcher.event, "display_name": watcher.display_name,
                        "package": watcher.package or "presence"}
                if watcher.status == "terminated":  # gone: the list holds current ones
                    self.watchers.pop(watcher.uri, None)
                else:
                    self.watchers[watcher.uri] = data
                publish("presence.watcher", data)
            return winfo.resync
        if isinstance(reader, MessageSummaryReader):
            summary = reader.read(notified.content_type, notified.body)
            if summary is not None:
                data = {"account": account, "waiting": summary.waiting, "new": summary.new,
                        "old": summary.old, "voicemail": self.to,
                        "messages": {name: {"new": c.new, "old": c.old,
                                            "new_urgent": c.new_urgent,
                                            "old_urgent": c.old_urgent}
                                     for name, c in summary.counts.items()}}
                self.summary = data
                publish("account.message_summary", data)
            return False
        dialogs = reader.read(notified.content_type, notified.body)
        for dialog in dialogs.changed:
            data = {"account": account, "contact": self.to, "id": dialog.id,
                    "state": dialog.state, "direction": dialog.direction,
                    "remote": dialog.remote.identity, "event": dialog.event,
                    "code": dialog.code, "busy": reader.dialogs.busy}
            if dialog.state == "terminated":
                self.dialogs.pop(dialog.id, None)
            else:
                self.dialogs[dialog.id] = data
            publish("presence.dialog", data)
        return dialogs.resync


def reader_for(event: str, target: str) -> Reader:
    """A new reader of the NOTIFYs of one dialog of an `event` subscription."""
    if event == "presence":
        return PresenceReader(target)
    if event == "presence.winfo":
        return WatcherInfoReader()
    if event == "message-summary":
        return MessageSummaryReader()
    return DialogInfoReader()
