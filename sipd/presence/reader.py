"""The bodies of a subscription's NOTIFYs, read per event package: one reader per dialog of
a subscription (a new one when `Notified.first` says a dialog starts: versions count anew).
Each `read(content_type, body)` raises PayloadError for a body it cannot take; the NOTIFY has
been answered 200 already, so the subscription lives on.

- `PresenceReader` (presence): a single PIDF document (a subscription to one contact) or a
  resource list notification (RFC 4662, multipart/related with RLMI) carrying a PIDF document
  per contact, read into one state per contact. One contact's unreadable document costs that
  contact (its `error` says why), never the rest of the list.
- `WatcherInfoReader` (presence.winfo), `DialogInfoReader` (dialog),
  `MessageSummaryReader` (message-summary).

    reader = PresenceReader(target="sip:bob@example.com")
    update = reader.read(content_type, body)   # PayloadError: the body as a whole is bad
    for contact in update.contacts:            # contact, state, reason, view, error
        ...
    if update.resync: subscriber.refresh(now)  # a partial notification after a gap

An empty body (a pending subscription's NOTIFY, a final one) says nothing: no update.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipd.sip.errors import SipParseError
from sipd.sip.header_values import MediaType, parse_media_type

from .dialog_info import DialogInfoState, DialogInfoUpdate, parse_dialog_info
from .message_summary import MessageSummary, parse_message_summary
from .multipart import BodyPart, parse_multipart
from .payload import (
    DIALOG_INFO_TYPE,
    MESSAGE_SUMMARY_TYPE,
    MULTIPART_RELATED,
    PIDF_TYPE,
    WATCHERINFO_TYPE,
    PayloadError,
)
from .pidf import parse_pidf
from .rlmi import ResourceListState
from .view import PresenceView, view_of
from .winfo import WatcherInfoState, WatcherInfoUpdate, parse_watcherinfo

__all__ = ["ContactPresence", "PresenceUpdate", "PresenceReader", "PIDF_TYPES",
           "WatcherInfoReader", "DialogInfoReader", "MessageSummaryReader"]

# The PIDF media type, and its name in RFC 3863's drafts (still sent by a few servers).
PIDF_TYPES = frozenset({PIDF_TYPE, "application/cpim-pidf+xml"})


@dataclass(frozen=True)
class ContactPresence:
    contact: str                 # the resource's URI (the subscription's target for one)
    state: str = "active"        # of its subscription: active, pending, terminated
    reason: str | None = None    # why it is terminated
    view: PresenceView | None = None   # None: no document for it in this notification
    error: str | None = None     # its document could not be read: why


@dataclass(frozen=True)
class PresenceUpdate:
    contacts: tuple[ContactPresence, ...] = ()
    resync: bool = False
    list_name: str | None = None


@dataclass
class PresenceReader:
    target: str
    lists: ResourceListState = field(default_factory=ResourceListState)

    def read(self, content_type: str | None, body: bytes) -> PresenceUpdate:
        if not body:
            return PresenceUpdate()  # a pending or final NOTIFY may have none
        media = _media(content_type, "presence notification")
        if media.mime in PIDF_TYPES:
            return PresenceUpdate((ContactPresence(self.target, view=view_of(parse_pidf(body))),))
        if media.mime != MULTIPART_RELATED:
            raise PayloadError(f"presence notification: cannot read a {media.mime} body "
                               f"(only {PIDF_TYPE} and {MULTIPART_RELATED} lists)")
        update = self.lists.apply(parse_multipart(body, media))
        contacts = tuple(_contact(resource.uri, resource.state, resource.reason,
                                  resource.parts) for resource in update.resources)
        return PresenceUpdate(contacts, update.resync)


def _contact(uri: str, state: str, reason: str | None, parts: tuple[BodyPart, ...]
             ) -> ContactPresence:
    view: PresenceView | None = None
    error: str | None = None
    for part in parts:
        try:
            if part.mime not in PIDF_TYPES:
                raise PayloadError(f"a {part.mime} part, not {PIDF_TYPE}")
            view = view_of(parse_pidf(part.body))
            break
        except PayloadError as exc:
            error = exc.reason
    return ContactPresence(uri, state, reason, view, None if view is not None else error)


def _media(content_type: str | None, what: str) -> MediaType:
    if content_type is None:
        raise PayloadError(f"a {what} body without Content-Type")
    try:
        return parse_media_type(content_type)
    except SipParseError as exc:
        raise PayloadError(f"{what}: {exc}") from None


def _expect(content_type: str | None, expected: str, what: str) -> None:
    mime = _media(content_type, what).mime
    if mime != expected:
        raise PayloadError(f"{what}: cannot read a {mime} body (only {expected})")


@dataclass
class WatcherInfoReader:
    """presence.winfo: who watches us. `update.changed` are the watchers that changed."""
    watchers: WatcherInfoState = field(default_factory=WatcherInfoState)

    def read(self, content_type: str | None, body: bytes) -> WatcherInfoUpdate:
        if not body:
            return WatcherInfoUpdate()
        _expect(content_type, WATCHERINFO_TYPE, "watcher information notification")
        return self.watchers.apply(parse_watcherinfo(body))


@dataclass
class DialogInfoReader:
    """dialog: the calls of the user we watch (busy lamps)."""
    dialogs: DialogInfoState = field(default_factory=DialogInfoState)

    def read(self, content_type: str | None, body: bytes) -> DialogInfoUpdate:
        if not body:
            return DialogInfoUpdate()
        _expect(content_type, DIALOG_INFO_TYPE, "dialog notification")
        return self.dialogs.apply(parse_dialog_info(body))


@dataclass
class MessageSummaryReader:
    """message-summary: voicemail waiting (None: the NOTIFY said nothing new)."""

    def read(self, content_type: str | None, body: bytes) -> MessageSummary | None:
        if not body:
            return None
        _expect(content_type, MESSAGE_SUMMARY_TYPE, "message summary notification")
        return parse_message_summary(body)
