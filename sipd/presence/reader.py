"""The bodies of a presence subscription's NOTIFYs, read into one state per contact: a single
PIDF document (a subscription to one contact) or a resource list notification (RFC 4662,
multipart/related with RLMI) carrying a PIDF document per contact.

    reader = PresenceReader(target="sip:bob@example.com")
    update = reader.read(content_type, body)   # PayloadError: the body as a whole is bad
    for contact in update.contacts:            # contact, state, reason, view, error
        ...
    if update.resync: subscriber.refresh(now)  # a partial list notification after a gap

One contact's unreadable document costs that contact (its `error` says why), never the rest of
the list. Start a new reader for a new subscription.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipd.sip.errors import SipParseError
from sipd.sip.header_values import parse_media_type

from .multipart import BodyPart, parse_multipart
from .payload import MULTIPART_RELATED, PIDF_TYPE, PayloadError
from .pidf import parse_pidf
from .rlmi import ResourceListState
from .view import PresenceView, view_of

__all__ = ["ContactPresence", "PresenceUpdate", "PresenceReader", "PIDF_TYPES"]

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
        if content_type is None:
            raise PayloadError("a presence notification body without Content-Type")
        try:
            media = parse_media_type(content_type)
        except SipParseError as exc:
            raise PayloadError(f"presence notification: {exc}") from None
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
