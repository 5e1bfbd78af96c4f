"""Presence documents (application/pidf+xml, RFC 3863) read into plain data, with the data
model's person, service and device (RFC 4479), rich presence (RPID, RFC 4480) and contact
information (CIPID, RFC 4482).

    document = parse_pidf(body)          # PayloadError for anything unreadable or hostile
    document.services[0].basic           # "open" / "closed" / None
    document.persons[0].activities       # ["on-the-phone"]

Reading is liberal where real clients differ from the schemas: RPID and CIPID elements are
taken from a service as well as from a person, a person's note from either namespace, an
unknown basic value or a malformed timestamp costs that value only, never the document, and
the `im:im` status of the RFC's own example is read as an activity. What is not understood is
skipped (the schemas allow extensions everywhere).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from lxml import etree

from sipd.messages.timestamps import parse_timestamp

from .payload import (
    CIPID_NS,
    DM_NS,
    PIDF_IM_NS,
    PIDF_NS,
    RPID_NS,
    XML_NS,
    PayloadError,
    child,
    children,
    local_name,
    namespace_of,
    parse_document,
    qname,
    text_of,
)
from .rpid import IM_STATUS

__all__ = ["Note", "Service", "Person", "Device", "PresenceDocument", "parse_pidf"]

MAX_VALUES = 64  # activities, moods, notes... of one element: more is no presence, it's noise


@dataclass(frozen=True)
class Note:
    text: str
    lang: str | None = None


@dataclass
class ContactInfo:
    """CIPID (RFC 4482), of a person or a service."""
    display_name: str | None = None
    icon: str | None = None
    homepage: str | None = None
    card: str | None = None
    map: str | None = None
    sound: str | None = None


@dataclass
class Service:
    """A `<tuple>`: one way to reach the presentity (a device's SIP contact, typically)."""
    id: str
    basic: str | None = None                 # "open" / "closed" / None (absent or unknown)
    contact: str | None = None
    priority: float | None = None
    notes: list[Note] = field(default_factory=list)
    timestamp: datetime.datetime | None = None
    device_id: str | None = None             # dm:deviceID: the device it runs on
    service_class: str | None = None         # rpid:class
    user_input: str | None = None            # rpid:user-input: "active" / "idle"
    activities: list[str] = field(default_factory=list)  # RPID or im:im inside a tuple
    info: ContactInfo = field(default_factory=ContactInfo)


@dataclass
class Person:
    """A `<dm:person>`: the human being, with RPID and CIPID."""
    id: str
    activities: list[str] = field(default_factory=list)
    mood: list[str] = field(default_factory=list)
    place_type: list[str] = field(default_factory=list)
    privacy: list[str] = field(default_factory=list)
    sphere: str | None = None
    user_input: str | None = None
    time_offset: int | None = None           # minutes from UTC
    notes: list[Note] = field(default_factory=list)
    timestamp: datetime.datetime | None = None
    info: ContactInfo = field(default_factory=ContactInfo)


@dataclass
class Device:
    """A `<dm:device>`: the hardware a service runs on."""
    id: str
    device_id: str | None = None
    notes: list[Note] = field(default_factory=list)
    timestamp: datetime.datetime | None = None
    user_input: str | None = None


@dataclass
class PresenceDocument:
    entity: str
    services: list[Service] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


def parse_pidf(data: bytes, *, max_bytes: int | None = None) -> PresenceDocument:
    """The presence document in `data`; PayloadError says why it cannot be read."""
    kwargs = {} if max_bytes is None else {"max_bytes": max_bytes}
    root = parse_document(data, PIDF_NS, "presence", "presence document (PIDF)", **kwargs)
    try:
        return _read(root)
    except PayloadError:
        raise
    except (ValueError, TypeError) as exc:  # lxml refusing a value, say: a reason, not a crash
        raise PayloadError(f"presence document (PIDF): {exc}") from None


def _read(root: etree._Element) -> PresenceDocument:
    document = PresenceDocument(entity=(root.get("entity") or "").strip())
    for element in root:
        tag = element.tag
        if tag == qname(PIDF_NS, "tuple"):
            document.services.append(_service(element))
        elif tag == qname(DM_NS, "person"):
            document.persons.append(_person(element))
        elif tag == qname(DM_NS, "device"):
            document.devices.append(_device(element))
        elif tag == qname(PIDF_NS, "note"):
            _add_note(document.notes, element)
    return document


def _service(element: etree._Element) -> Service:
    service = Service(id=element.get("id") or "")
    status = child(element, PIDF_NS, "status")
    if status is not None:
        basic = text_of(child(status, PIDF_NS, "basic"))
        if basic is not None and basic.lower() in ("open", "closed"):
            service.basic = basic.lower()
        im = text_of(child(status, PIDF_IM_NS, "im"))
        if im is not None and im.lower() in IM_STATUS:
            service.activities.append(IM_STATUS[im.lower()])
        _rpid_activities(status, service.activities)  # old RPID drafts put them here
    contact = child(element, PIDF_NS, "contact")
    service.contact = text_of(contact)
    if contact is not None:
        service.priority = _priority(contact.get("priority"))
    for note in children(element, PIDF_NS, "note"):
        _add_note(service.notes, note)
    service.timestamp = _timestamp(child(element, PIDF_NS, "timestamp"))
    service.device_id = text_of(child(element, DM_NS, "deviceID"))
    service.service_class = text_of(child(element, RPID_NS, "class"))
    service.user_input = _user_input(element)
    _rpid_activities(element, service.activities)
    service.info = _contact_info(element)
    return service


def _person(element: etree._Element) -> Person:
    person = Person(id=element.get("id") or "")
    _rpid_activities(element, person.activities)
    mood = child(element, RPID_NS, "mood")
    if mood is not None:
        person.mood = _names(mood, skip_unknown=True)
    place = child(element, RPID_NS, "place-type")
    if place is not None:
        person.place_type = _names(place, skip_unknown=False)
    privacy = child(element, RPID_NS, "privacy")
    if privacy is not None:
        person.privacy = _names(privacy, skip_unknown=False)
    sphere = child(element, RPID_NS, "sphere")
    if sphere is not None:
        inner = _names(sphere, skip_unknown=False)
        person.sphere = inner[0] if inner else text_of(sphere, 128)
    person.user_input = _user_input(element)
    offset = text_of(child(element, RPID_NS, "time-offset"), 16)
    if offset is not None and offset.lstrip("+-").isdigit() and abs(int(offset)) <= 24 * 60:
        person.time_offset = int(offset)
    for namespace in (DM_NS, PIDF_NS):
        for note in children(element, namespace, "note"):
            _add_note(person.notes, note)
    stamp = child(element, DM_NS, "timestamp")
    person.timestamp = _timestamp(stamp if stamp is not None
                                  else child(element, PIDF_NS, "timestamp"))
    person.info = _contact_info(element)
    return person


def _device(element: etree._Element) -> Device:
    device = Device(id=element.get("id") or "")
    device.device_id = text_of(child(element, DM_NS, "deviceID"))
    for note in children(element, DM_NS, "note"):
        _add_note(device.notes, note)
    device.timestamp = _timestamp(child(element, DM_NS, "timestamp"))
    device.user_input = _user_input(element)
    return device


def _rpid_activities(parent: etree._Element, into: list[str]) -> None:
    for activities in children(parent, RPID_NS, "activities"):
        for name in _names(activities, skip_unknown=True):
            if name not in into and len(into) < MAX_VALUES:
                into.append(name)


def _names(parent: etree._Element, *, skip_unknown: bool) -> list[str]:
    """The values an RPID enumeration element holds: the local names of its empty children,
    the text of `<other>`; its notes are not values, and `<unknown/>` says nothing (skipped
    when `skip_unknown`)."""
    names: list[str] = []
    for element in parent:
        name = local_name(element)
        if name is None or (name == "note" and namespace_of(element) == RPID_NS):
            continue
        if name == "other" and namespace_of(element) == RPID_NS:
            name = text_of(element, 256) or "other"
        elif name == "unknown" and skip_unknown:
            continue
        if name not in names:
            names.append(name)
        if len(names) >= MAX_VALUES:
            break
    return names


def _user_input(parent: etree._Element) -> str | None:
    value = text_of(child(parent, RPID_NS, "user-input"), 16)
    return value.lower() if value is not None and value.lower() in ("active", "idle") else None


def _contact_info(parent: etree._Element) -> ContactInfo:
    return ContactInfo(
        display_name=text_of(child(parent, CIPID_NS, "display-name")),
        icon=text_of(child(parent, CIPID_NS, "icon")),
        homepage=text_of(child(parent, CIPID_NS, "homepage")),
        card=text_of(child(parent, CIPID_NS, "card")),
        map=text_of(child(parent, CIPID_NS, "map")),
        sound=text_of(child(parent, CIPID_NS, "sound")),
    )


def _add_note(notes: list[Note], element: etree._Element) -> None:
    text = text_of(element)
    if text is not None and len(notes) < MAX_VALUES:
        notes.append(Note(text, element.get(qname(XML_NS, "lang"))))


def _timestamp(element: etree._Element | None) -> datetime.datetime | None:
    text = text_of(element, 64)
    if text is None:
        return None
    try:
        moment = parse_timestamp(text)
        moment.astimezone(datetime.UTC)  # comparable: not beyond year 1 or 9999
    except (ValueError, OverflowError):
        return None  # a bad timestamp costs the timestamp, not the presence
    return moment


def _priority(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None
