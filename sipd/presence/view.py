"""What a presence document says, as the `presence.state` event carries it: one short status,
the note, the activities and mood, the devices, the basic status and the time.

    view = view_of(parse_pidf(body))
    view.data()   # {"status": "busy", "basic": "open", "note": "in a call", ...}

How a document with several persons and services becomes one view: the person with the
newest timestamp (else the first) speaks for the human; the basic status is "open" when any
service is open, "closed" when services say only closed, None when none says anything; the
note is the person's, else an open service's, else any service's, else the document's.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sipd.messages.timestamps import format_timestamp

from .pidf import Device, Note, Person, PresenceDocument, Service
from .rpid import status_of

__all__ = ["DeviceView", "PresenceView", "view_of"]


@dataclass(frozen=True)
class DeviceView:
    """One service of the presentity (a device it is reachable on)."""
    id: str
    basic: str | None
    contact: str | None
    note: str | None
    time: str | None
    device_id: str | None

    def data(self) -> dict[str, Any]:
        return {"id": self.id, "basic": self.basic, "contact": self.contact,
                "note": self.note, "time": self.time, "device_id": self.device_id}


@dataclass(frozen=True)
class PresenceView:
    status: str                      # "open", "away", "busy", "closed" (sipd.presence.rpid)
    basic: str | None                # "open", "closed", None
    note: str | None
    activities: tuple[str, ...]
    mood: tuple[str, ...]
    devices: tuple[DeviceView, ...]
    time: str | None                 # the newest timestamp in the document (RFC 3339)
    display_name: str | None
    icon: str | None
    homepage: str | None = None
    place_type: tuple[str, ...] = ()
    privacy: tuple[str, ...] = ()

    def data(self) -> dict[str, Any]:
        """The `presence.state` event's fields (less `account` and `contact`)."""
        return {
            "status": self.status, "basic": self.basic, "note": self.note,
            "activities": list(self.activities), "mood": list(self.mood),
            "devices": [device.data() for device in self.devices], "time": self.time,
            "display_name": self.display_name, "icon": self.icon, "homepage": self.homepage,
        }


def view_of(document: PresenceDocument) -> PresenceView:
    person = _main_person(document.persons)
    basic = _basic(document.services)
    activities = list(person.activities) if person is not None else []
    if not activities:  # no person says: what the services say (old RPID, im:im)
        for service in document.services:
            activities += [a for a in service.activities if a not in activities]
    return PresenceView(
        status=status_of(basic, activities),
        basic=basic,
        note=_note(document, person),
        activities=tuple(activities),
        mood=tuple(person.mood) if person is not None else (),
        devices=tuple(_device_view(service, document.devices)
                      for service in document.services),
        time=_time(document),
        display_name=_info(document, person, "display_name"),
        icon=_info(document, person, "icon"),
        homepage=_info(document, person, "homepage"),
        place_type=tuple(person.place_type) if person is not None else (),
        privacy=tuple(person.privacy) if person is not None else (),
    )


def _main_person(persons: list[Person]) -> Person | None:
    if not persons:
        return None
    stamped = [p for p in persons if p.timestamp is not None]
    if stamped:
        return max(stamped, key=lambda p: _utc(p.timestamp))
    return persons[0]


def _basic(services: list[Service]) -> str | None:
    values = {service.basic for service in services if service.basic is not None}
    if "open" in values:
        return "open"
    return "closed" if values else None


def _first(notes: list[Note]) -> str | None:
    """The note without a language tag if there is one (the default text), else the first."""
    for note in notes:
        if note.lang is None:
            return note.text
    return notes[0].text if notes else None


def _note(document: PresenceDocument, person: Person | None) -> str | None:
    if person is not None and person.notes:
        return _first(person.notes)
    ordered = [s for s in document.services if s.basic == "open"] + \
              [s for s in document.services if s.basic != "open"]
    for service in ordered:
        if service.notes:
            return _first(service.notes)
    return _first(document.notes)


def _info(document: PresenceDocument, person: Person | None, name: str) -> str | None:
    value: str | None = getattr(person.info, name) if person is not None else None
    for service in document.services:
        if value is not None:
            break
        value = getattr(service.info, name)
    return value


def _device_view(service: Service, devices: list[Device]) -> DeviceView:
    note = _first(service.notes)
    if note is None and service.device_id is not None:
        for device in devices:
            if device.device_id == service.device_id and device.notes:
                note = _first(device.notes)
                break
    return DeviceView(
        id=service.id, basic=service.basic, contact=service.contact, note=note,
        time=format_timestamp(service.timestamp) if service.timestamp is not None else None,
        device_id=service.device_id)


def _time(document: PresenceDocument) -> str | None:
    stamps = [item.timestamp for item in document.services if item.timestamp is not None]
    stamps += [item.timestamp for item in document.persons if item.timestamp is not None]
    stamps += [item.timestamp for item in document.devices if item.timestamp is not None]
    if not stamps:
        return None
    return format_timestamp(max(stamps, key=_utc))


def _utc(moment: datetime.datetime | None) -> datetime.datetime:
    assert moment is not None
    return moment.astimezone(datetime.UTC)
