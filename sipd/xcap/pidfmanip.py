"""pidf-manipulation (RFC 4827): the presence document a server shows while we are offline.

sipd writes a plain PIDF document (one tuple with a basic status and a note, and the note of
the person) and reads back the basic status and the first note; richer documents written by
other clients are read as far as that goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sipd.xcap.errors import XcapEditError
from sipd.xcap.usages import NS_PIDF
from sipd.xcap.xmldoc import expect_root, parse_document, serialize

NS = NS_PIDF
_P = f"{{{NS}}}"
NS_DATA_MODEL = "urn:ietf:params:xml:ns:pidf:data-model"


@dataclass(frozen=True)
class OfflineStatus:
    #: "open", "closed" or None (no status)
    basic: str | None = None
    note: str | None = None


def parse_offline_status(data: bytes) -> OfflineStatus:
    root = parse_document(data, what="pidf-manipulation document")
    return offline_status_from_element(root)


def offline_status_from_element(root: etree._Element) -> OfflineStatus:
    expect_root(root, NS, "presence", "pidf-manipulation document")
    basic = root.find(f"{_P}tuple/{_P}status/{_P}basic")
    note = root.find(f"{_P}tuple/{_P}note")
    if note is None:
        note = root.find(f"{_P}note")
    if note is None:
        note = root.find(f".//{{{NS_DATA_MODEL}}}note")
    value = (basic.text or "").strip() if basic is not None else None
    return OfflineStatus(value if value in ("open", "closed") else None,
                         (note.text or "").strip() if note is not None else None)


def build_offline_status(entity: str, status: OfflineStatus) -> bytes:
    return serialize(offline_status_element(entity, status))


def offline_status_element(entity: str, status: OfflineStatus) -> etree._Element:
    if status.basic not in (None, "open", "closed"):
        raise XcapEditError(f"offline status {status.basic!r} is neither open nor closed")
    root = etree.Element(f"{_P}presence", entity=entity, nsmap={None: NS})
    tuple_element = etree.SubElement(root, f"{_P}tuple", id="offline")
    status_element = etree.SubElement(tuple_element, f"{_P}status")
    if status.basic is not None:
        etree.SubElement(status_element, f"{_P}basic").text = status.basic
    if status.note:
        etree.SubElement(tuple_element, f"{_P}note").text = status.note
    return root
