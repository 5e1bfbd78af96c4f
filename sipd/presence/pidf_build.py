"""Our own presence document, from what `presence.publish` takes: a basic status, a note,
activities, mood, a display name and an icon. Built with lxml, never by pasting strings.

    status = PublishedStatus.from_params(status="open", note="at lunch",
                                         activities=["meal"])      # InvalidInput(field, why)
    body = build_pidf("sip:alice@example.com", status, ids=DocumentIds.new(),
                      contact="sip:alice@example.com", now=datetime.datetime.now(UTC))

The document has one service (`<tuple>`, with the basic status, the contact and the note, as
clients that read only RFC 3863 expect) and one person (`<dm:person>` with the RPID
activities and mood, the CIPID display name and icon, and the note again). Their ids stay the
same for the life of a publication, so a server that aggregates documents sees one service
changing rather than a new one each time.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from sipd.messages.timestamps import format_timestamp

from .payload import (
    CIPID_NS,
    DM_NS,
    MAX_TEXT_CHARS,
    PIDF_NS,
    RPID_NS,
    InvalidInput,
    new_document,
    qname,
    serialize,
    xml_text,
)
from .rpid import ACTIVITIES, MOODS

__all__ = ["PublishedStatus", "DocumentIds", "build_pidf", "MAX_VALUES"]

MAX_VALUES = 16        # activities or moods one publication may carry
MAX_NOTE_CHARS = 1024  # a status line, not a letter
MAX_NAME_CHARS = 256


@dataclass(frozen=True)
class PublishedStatus:
    """What we publish, checked: `status` "open" or "closed"; activities and moods are
    RPID names (lower case) or free text (sent as `<rpid:other>`), without duplicates."""
    status: str = "open"
    note: str | None = None
    activities: tuple[str, ...] = ()
    mood: tuple[str, ...] = ()
    display_name: str | None = None
    icon: str | None = None

    @classmethod
    def from_params(cls, *, status: str, note: str | None = None,
                    activities: Iterable[str] | None = None, mood: Iterable[str] | None = None,
                    display_name: str | None = None, icon: str | None = None
                    ) -> PublishedStatus:
        """Checks what a user gave; InvalidInput names the first bad field and says why."""
        if status not in ("open", "closed"):
            raise InvalidInput("status", f"must be 'open' or 'closed', not {status!r}")
        return cls(
            status=status,
            note=_text(note, "note", MAX_NOTE_CHARS),
            activities=_values(activities, ACTIVITIES, "activities"),
            mood=_values(mood, MOODS, "mood"),
            display_name=_text(display_name, "display_name", MAX_NAME_CHARS),
            icon=_uri(icon, "icon"),
        )


@dataclass(frozen=True)
class DocumentIds:
    """The ids of our service and person elements, kept for the life of a publication."""
    service: str
    person: str

    @classmethod
    def new(cls) -> DocumentIds:
        # xs:ID values must not start with a digit.
        return cls("t" + secrets.token_hex(6), "p" + secrets.token_hex(6))


def _text(value: str | None, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    value = xml_text(value, field).strip()
    if len(value) > limit:
        raise InvalidInput(field, f"is longer than {limit} characters")
    return value or None


def _values(values: Iterable[str] | None, known: frozenset[str], field: str
            ) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        raise InvalidInput(field, "must be a list of names, not one string")
    result: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidInput(field, "must be a list of names")
        text = xml_text(value, field).strip()
        if not text:
            raise InvalidInput(field, "contains an empty name")
        if len(text) > MAX_NAME_CHARS:
            raise InvalidInput(field, f"contains a name longer than {MAX_NAME_CHARS} "
                                      f"characters")
        if text.lower() in known:
            text = text.lower()
        if text.lower() in ("unknown", "other") and text == text.lower():
            raise InvalidInput(field, f"'{text}' is not a value to publish: leave the list "
                                      f"empty, or name it")
        if text not in result:
            result.append(text)
    if len(result) > MAX_VALUES:
        raise InvalidInput(field, f"has more than {MAX_VALUES} values")
    return tuple(result)


def _uri(value: str | None, field: str) -> str | None:
    text = _text(value, field, MAX_TEXT_CHARS)
    if text is None:
        return None
    scheme, colon, rest = text.partition(":")
    if not colon or not rest or not scheme.isascii() or not scheme.isalpha() \
            or any(c.isspace() for c in text):
        raise InvalidInput(field, f"must be a URI (http:, https:, data:...), not {text!r}")
    return text


def build_pidf(entity: str, status: PublishedStatus, *, ids: DocumentIds,
               contact: str | None = None, now: datetime.datetime | None = None,
               device_id: str | None = None) -> bytes:
    """The application/pidf+xml body that publishes `status` for `entity` (our AOR)."""
    root = new_document(PIDF_NS, "presence",
                        {None: PIDF_NS, "dm": DM_NS, "rpid": RPID_NS, "c": CIPID_NS},
                        {"entity": xml_text(entity, "entity")})
    stamp = format_timestamp(now) if now is not None else None

    service = etree.SubElement(root, qname(PIDF_NS, "tuple"), id=ids.service)
    state = etree.SubElement(service, qname(PIDF_NS, "status"))
    etree.SubElement(state, qname(PIDF_NS, "basic")).text = status.status
    if device_id is not None:
        etree.SubElement(service, qname(DM_NS, "deviceID")).text = xml_text(device_id,
                                                                            "device_id")
    if contact is not None:
        etree.SubElement(service, qname(PIDF_NS, "contact")).text = xml_text(contact,
                                                                             "contact")
    if status.note is not None:
        etree.SubElement(service, qname(PIDF_NS, "note")).text = status.note
    if stamp is not None:
        etree.SubElement(service, qname(PIDF_NS, "timestamp")).text = stamp

    person = etree.SubElement(root, qname(DM_NS, "person"), id=ids.person)
    if status.activities:
        _enumeration(etree.SubElement(person, qname(RPID_NS, "activities")),
                     status.activities, ACTIVITIES)
    if status.mood:
        _enumeration(etree.SubElement(person, qname(RPID_NS, "mood")), status.mood, MOODS)
    if status.display_name is not None:
        etree.SubElement(person, qname(CIPID_NS, "display-name")).text = status.display_name
    if status.icon is not None:
        etree.SubElement(person, qname(CIPID_NS, "icon")).text = status.icon
    if status.note is not None:
        etree.SubElement(person, qname(DM_NS, "note")).text = status.note
    if stamp is not None:
        etree.SubElement(person, qname(DM_NS, "timestamp")).text = stamp
    return serialize(root)


def _enumeration(parent: etree._Element, values: tuple[str, ...], known: frozenset[str]
                 ) -> None:
    for value in values:
        if value in known:
            etree.SubElement(parent, qname(RPID_NS, value))
        else:
            etree.SubElement(parent, qname(RPID_NS, "other")).text = value
