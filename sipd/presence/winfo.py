"""Watcher information (application/watcherinfo+xml, RFC 3857 and 3858): who subscribes to
our presence, and whether they are pending, active or gone.

    document = parse_watcherinfo(body)      # PayloadError for anything unreadable
    watchers = WatcherInfoState()
    update = watchers.apply(document)       # the watchers that changed; update.resync

Documents carry a version that grows by one per notification of a subscription, and are
either full state or partial (only the watchers that changed). `WatcherInfoState` applies
them in order: a full document replaces everything (watchers it no longer lists are reported
terminated), a partial one updates the watchers it names; an old or repeated version is
ignored, and a partial one after a gap (or before any full state) cannot be applied: it sets
`resync`, and the subscriber should refresh its subscription, which brings full state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree

from .payload import (
    WATCHERINFO_NS,
    InvalidInput,
    PayloadError,
    children,
    new_document,
    parse_document,
    qname,
    serialize,
    text_of,
    xml_text,
)

__all__ = ["Watcher", "WatcherList", "WatcherInfoDocument", "parse_watcherinfo",
           "build_watcherinfo", "WatcherInfoState", "WatcherInfoUpdate", "WATCHER_STATUSES",
           "WATCHER_EVENTS"]

WATCHER_STATUSES = frozenset({"pending", "active", "waiting", "terminated"})
WATCHER_EVENTS = frozenset({"subscribe", "approved", "deactivated", "probation", "rejected",
                            "timeout", "giveup", "noresource"})
MAX_WATCHERS = 10_000  # per state: far beyond anyone's watchers, bounds a hostile notifier


@dataclass(frozen=True)
class Watcher:
    id: str
    uri: str
    status: str                       # pending, active, waiting, terminated
    event: str | None = None          # what made it so (subscribe, approved, timeout...)
    display_name: str | None = None
    expiration: int | None = None     # seconds until the subscription expires
    duration: int | None = None       # seconds it has been subscribed
    resource: str = ""                # whose presence it watches (our AOR)
    package: str = ""                 # the event package it subscribed to

    def data(self) -> dict[str, Any]:
        return {"id": self.id, "watcher": self.uri, "status": self.status,
                "event": self.event, "display_name": self.display_name,
                "resource": self.resource, "package": self.package}


@dataclass(frozen=True)
class WatcherList:
    resource: str
    package: str
    watchers: tuple[Watcher, ...] = ()


@dataclass(frozen=True)
class WatcherInfoDocument:
    version: int
    full: bool
    lists: tuple[WatcherList, ...] = ()


def parse_watcherinfo(data: bytes) -> WatcherInfoDocument:
    root = parse_document(data, WATCHERINFO_NS, "watcherinfo", "watcher information")
    version = _count(root.get("version"), "version")
    if version is None:
        raise PayloadError("watcher information: the version attribute is missing")
    state = (root.get("state") or "").strip()
    if state not in ("full", "partial"):
        raise PayloadError(f"watcher information: state must be 'full' or 'partial', not "
                           f"{state[:20]!r}")
    lists = []
    count = 0
    for element in children(root, WATCHERINFO_NS, "watcher-list"):
        resource = (element.get("resource") or "").strip()
        package = (element.get("package") or "").strip()
        watchers = []
        for item in children(element, WATCHERINFO_NS, "watcher"):
            count += 1
            if count > MAX_WATCHERS:
                raise PayloadError(f"watcher information: more than {MAX_WATCHERS} watchers")
            watchers.append(_watcher(item, resource, package))
        lists.append(WatcherList(resource, package, tuple(watchers)))
    return WatcherInfoDocument(version, state == "full", tuple(lists))


def _watcher(element: etree._Element, resource: str, package: str) -> Watcher:
    watcher_id = (element.get("id") or "").strip()
    uri = text_of(element)
    status = (element.get("status") or "").strip().lower()
    if not watcher_id or uri is None:
        raise PayloadError("watcher information: a watcher without id or URI")
    if status not in WATCHER_STATUSES:
        raise PayloadError(f"watcher information: watcher status {status[:20]!r} is not one of "
                           f"{', '.join(sorted(WATCHER_STATUSES))}")
    event = (element.get("event") or "").strip().lower() or None
    return Watcher(
        id=watcher_id, uri=uri, status=status,
        event=event if event in WATCHER_EVENTS else None,
        display_name=(element.get("display-name") or "").strip() or None,
        expiration=_count(element.get("expiration"), None),
        duration=_count(element.get("duration-subscribed"), None),
        resource=resource, package=package)


def _count(text: str | None, required: str | None) -> int | None:
    """A non-negative integer attribute; a malformed one is an error when `required` names
    it, else it is ignored."""
    value = (text or "").strip()
    if value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    if required is not None and text is not None:
        raise PayloadError(f"watcher information: {required} {value[:20]!r} is not a number")
    return None


def build_watcherinfo(document: WatcherInfoDocument) -> bytes:
    """The document as bytes (sipd as its own presence agent tells watchers of winfo)."""
    root = new_document(WATCHERINFO_NS, "watcherinfo", {None: WATCHERINFO_NS},
                        {"version": str(document.version),
                         "state": "full" if document.full else "partial"})
    for watcher_list in document.lists:
        element = etree.SubElement(root, qname(WATCHERINFO_NS, "watcher-list"),
                                   resource=xml_text(watcher_list.resource, "resource"),
                                   package=xml_text(watcher_list.package, "package"))
        for watcher in watcher_list.watchers:
            if watcher.status not in WATCHER_STATUSES:
                raise InvalidInput("status", f"{watcher.status!r} is not a watcher status")
            item = etree.SubElement(element, qname(WATCHERINFO_NS, "watcher"),
                                    id=xml_text(watcher.id, "id"), status=watcher.status,
                                    event=watcher.event or "subscribe")
            if watcher.display_name:
                item.set("display-name", xml_text(watcher.display_name, "display_name"))
            if watcher.expiration is not None:
                item.set("expiration", str(watcher.expiration))
            if watcher.duration is not None:
                item.set("duration-subscribed", str(watcher.duration))
            item.text = xml_text(watcher.uri, "watcher")
    return serialize(root)


@dataclass(frozen=True)
class WatcherInfoUpdate:
    changed: tuple[Watcher, ...] = ()   # new or changed watchers; "terminated" ones are gone
    resync: bool = False                # refresh the subscription to get full state


@dataclass
class WatcherInfoState:
    """The watchers of one winfo subscription, kept current by its notifications. Start a
    new one for a new subscription (a new dialog starts counting versions anew)."""
    version: int | None = None
    watchers: dict[tuple[str, str, str], Watcher] = field(default_factory=dict)

    def apply(self, document: WatcherInfoDocument) -> WatcherInfoUpdate:
        if not document.full:
            if self.version is None or document.version > self.version + 1:
                return WatcherInfoUpdate(resync=True)
            if document.version <= self.version:
                return WatcherInfoUpdate()  # old or repeated
        elif self.version is not None and document.version <= self.version:
            return WatcherInfoUpdate()
        self.version = document.version
        seen: dict[tuple[str, str, str], Watcher] = {}
        for watcher_list in document.lists:
            for watcher in watcher_list.watchers:
                seen[(watcher.resource, watcher.package, watcher.id)] = watcher
        changed: list[Watcher] = []
        if document.full:
            for key in [k for k in self.watchers if k not in seen]:
                gone = self.watchers.pop(key)
                changed.append(replace(gone, status="terminated", event=None))
        for key, watcher in seen.items():
            old: Watcher | None = self.watchers.get(key)
            if watcher.status == "terminated":
                self.watchers.pop(key, None)
                if old is not None or not document.full:
                    changed.append(watcher)
                continue
            if len(self.watchers) >= MAX_WATCHERS and old is None:
                continue
            self.watchers[key] = watcher
            if old is None or (old.status, old.event) != (watcher.status, watcher.event):
                changed.append(watcher)
        return WatcherInfoUpdate(tuple(changed))
