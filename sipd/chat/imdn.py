"""Instant Message Disposition Notification (RFC 5438): the request in a CPIM envelope and the
message/imdn+xml notification that answers it.

A sender asks with `imdn.Disposition-Notification: positive-delivery, negative-delivery,
display` and names its message with `imdn.Message-ID`; the recipient answers with a CPIM message
whose body is an imdn document naming that Message-ID and a status. Parsing goes through the
safe XML parser (no entities, no DTD, no network).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from lxml import etree

from ..messages.timestamps import format_timestamp, parse_timestamp
from ..messages.xml import XMLPayloadError, parse_xml

IMDN_CONTENT_TYPE = "message/imdn+xml"
IMDN_XML_NAMESPACE = "urn:ietf:params:xml:ns:imdn"
# The dispositions a sender may ask for, as written in imdn.Disposition-Notification.
REQUESTS = ("positive-delivery", "negative-delivery", "display")

Kind = Literal["delivery", "display", "processing"]
# The statuses of RFC 5438 §7 (the schema's), by the notification that carries them.
STATUSES: dict[str, tuple[str, ...]] = {
    "delivery": ("delivered", "failed", "forbidden", "error"),
    "display": ("displayed", "forbidden", "error"),
    "processing": ("processed", "stored", "forbidden", "error"),
}
MAX_BYTES = 16 * 1024  # a notification names one message: far above any real one


class ImdnError(ValueError):
    """A disposition notification that is not one: the reason says what is wrong."""


@dataclass(frozen=True)
class Disposition:
    """One notification: what happened (`kind`, `status`) to message `message_id`."""

    message_id: str
    kind: Kind
    status: str
    time: datetime.datetime | None = None
    recipient: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in STATUSES:
            raise ImdnError(f"unknown notification kind {self.kind!r}")
        if self.status not in STATUSES[self.kind]:
            raise ImdnError(f"{self.status!r} is no status of a {self.kind} notification")
        if not self.message_id or any(ch.isspace() for ch in self.message_id):
            raise ImdnError("a notification needs the Message-ID of the message it is about")

    def encode(self) -> bytes:
        def child(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
            element = etree.SubElement(parent, f"{{{IMDN_XML_NAMESPACE}}}{name}")
            element.text = text
            return element

        root = etree.Element(f"{{{IMDN_XML_NAMESPACE}}}imdn", nsmap={None: IMDN_XML_NAMESPACE})
        child(root, "message-id", self.message_id)
        when = self.time or datetime.datetime.now(datetime.UTC)
        child(root, "datetime", format_timestamp(when))
        if self.recipient:
            child(root, "recipient-uri", self.recipient)
        notification = child(root, f"{self.kind}-notification")
        child(child(notification, "status"), self.status)
        body = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def parse_disposition(data: bytes) -> Disposition:
    """Reads a message/imdn+xml body; ImdnError, and only that, when it is not a notification."""
    try:
        root = parse_xml(data, max_bytes=MAX_BYTES)
    except XMLPayloadError as exc:
        raise ImdnError(str(exc)) from None
    if root.tag != f"{{{IMDN_XML_NAMESPACE}}}imdn":
        raise ImdnError(f"root element is {root.tag!r}, not imdn")

    def text_of(name: str) -> str | None:
        element = root.find(f"{{{IMDN_XML_NAMESPACE}}}{name}")
        return None if element is None or element.text is None else element.text.strip()

    message_id = text_of("message-id")
    if not message_id:
        raise ImdnError("imdn without a message-id")
    when = None
    stamp = text_of("datetime")
    if stamp:
        try:
            when = parse_timestamp(stamp)
        except ValueError:
            raise ImdnError(f"unreadable datetime {stamp!r}") from None
    for kind in STATUSES:
        notification = root.find(f"{{{IMDN_XML_NAMESPACE}}}{kind}-notification")
        if notification is None:
            continue
        status = notification.find(f"{{{IMDN_XML_NAMESPACE}}}status")
        names = [etree.QName(child).localname for child in (status if status is not None else ())
                 if isinstance(child.tag, str)]
        known = [name for name in names if name in STATUSES[kind]]
        if not known:
            raise ImdnError(f"{kind}-notification without a known status ({names or 'none'})")
        return Disposition(message_id, kind, known[0], when,  # type: ignore[arg-type]
                           text_of("recipient-uri"))
    raise ImdnError("imdn with no delivery, display or processing notification")


def requested(header: str | None) -> frozenset[str]:
    """The dispositions an imdn.Disposition-Notification header asks for (unknown ones are
    ignored, as RFC 5438 §6 says)."""
    if not header:
        return frozenset()
    return frozenset(v.strip().lower() for v in header.split(",")) & frozenset(REQUESTS)
