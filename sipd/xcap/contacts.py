"""Contacts and groups as plain data, kept in a resource-lists document.

    Contact(uri="sip:bob@example.com", name="Bob", groups=("Friends",), presence=True)

Where they live (RFC 4826 resource-lists, document `index` of the user):
- a group is a top-level `<list>`; its name is the list's display-name, or its `name`
  attribute when it has none (lists other clients made are groups too);
- a contact is an `<entry uri>` (its display-name is the contact's name) in the list of each
  of its groups, or in the list `sipd_ungrouped` when it has none;
- a contact whose presence we want is also an entry of the list `oma_buddylist`, which the
  account's rls-services document points at (OMA's name for it, so other OMA clients agree).
A contact found in several lists is one contact; nested lists count for their top-level group.

The edit functions change a resource-lists tree in place and leave everything else in it as it
was (other clients' lists, entry-refs, externals, extension elements).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from sipd.xcap.commonpolicy import normalize_identity
from sipd.xcap.errors import XcapEditError
from sipd.xcap.resourcelists import (
    TAG_DISPLAY_NAME,
    TAG_ENTRY,
    TAG_LIST,
    Entry,
    ResourceLists,
    entry_element,
    new_root,
    set_display_name,
)
from sipd.xcap.xmldoc import child_text

PRESENCE_LIST = "oma_buddylist"
UNGROUPED_LIST = "sipd_ungrouped"
RESERVED_LISTS = frozenset({PRESENCE_LIST, UNGROUPED_LIST})

_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_TEXT = 256


@dataclass(frozen=True)
class Contact:
    uri: str
    name: str | None = None
    groups: tuple[str, ...] = ()
    presence: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"uri": self.uri, "name": self.name, "groups": list(self.groups),
                "presence": self.presence}


def contacts_from(lists: ResourceLists) -> list[Contact]:
    """Every contact in the document, in the order first seen."""
    order: list[str] = []
    names: dict[str, str | None] = {}
    groups: dict[str, list[str]] = {}
    presence: set[str] = set()
    keys: dict[str, str] = {}
    for top in lists.lists:
        group = group_name(top.name, top.display_name)
        for entry in top.all_entries():
            key = _key(entry.uri)
            if key not in keys:
                keys[key] = entry.uri
                order.append(key)
                names[key] = entry.display_name
                groups[key] = []
            if names[key] is None and entry.display_name:
                names[key] = entry.display_name
            if top.name == PRESENCE_LIST:
                presence.add(key)
            elif group is not None and group not in groups[key]:
                groups[key].append(group)
    return [Contact(keys[key], names[key], tuple(groups[key]), key in presence)
            for key in order]


def groups_from(lists: ResourceLists) -> list[str]:
    """The group names, in document order (each once)."""
    found: list[str] = []
    for top in lists.lists:
        group = group_name(top.name, top.display_name)
        if group is not None and group not in found:
            found.append(group)
    return found


def group_name(name: str | None, display_name: str | None) -> str | None:
    if name in RESERVED_LISTS:
        return None
    return display_name or name or None


# -- checks ----------------------------------------------------------------------------------


def check_uri(uri: str) -> str:
    uri = uri.strip() if isinstance(uri, str) else uri
    if not isinstance(uri, str) or not _URI_RE.match(uri) or len(uri) > 1024:
        raise XcapEditError(f"{uri!r} is not a contact URI (e.g. sip:bob@example.com)")
    return uri


def check_text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise XcapEditError(f"{what} must be text")
    value = value.strip()
    if _CONTROL_RE.search(value) or len(value) > MAX_TEXT:
        raise XcapEditError(f"{what} {value!r} has control characters or is too long")
    return value


def check_group(group: str) -> str:
    group = check_text(group, "group name")
    if not group:
        raise XcapEditError("a group needs a name")
    if group in RESERVED_LISTS:
        raise XcapEditError(f"{group!r} is reserved for sipd's own lists; choose another name")
    return group


# -- edits of a resource-lists tree ----------------------------------------------------------


def ensure_root(root: etree._Element | None) -> etree._Element:
    return new_root() if root is None else root


class KEEP:
    """Marker: leave this field of a contact as it is."""


def set_contact(root: etree._Element, uri: str, *, name: str | None | type[KEEP] = None,
                groups: tuple[str, ...] | type[KEEP] = (),
                presence: bool | type[KEEP] = False) -> None:
    """Make the contact `uri` what the arguments say, creating it if needed; KEEP leaves that
    field as it is (for a new contact: no name, no group, no presence)."""
    existing = list(_entries_of(root, uri))
    if name is KEEP:
        name = next((n for n in (child_text(e, TAG_DISPLAY_NAME) for e in existing) if n), None)
    assert name is None or isinstance(name, str)
    if groups is KEEP:
        groups = tuple(_groups_of(root, uri))
    assert isinstance(groups, tuple)
    if presence is KEEP:
        presence = _in_list(_top_list(root, PRESENCE_LIST), uri)
    wanted = set(groups)
    for top in _top_lists(root):
        if top.get("name") in RESERVED_LISTS:
            continue
        group = group_name(top.get("name"), child_text(top, TAG_DISPLAY_NAME))
        if group in wanted:
            wanted.discard(group)
            _ensure_entry(top, uri, name)
        else:
            _remove_entries(top, uri)
    for group in groups:
        if group in wanted:
            _ensure_entry(_add_group_list(root, group), uri, name)
    ungrouped = _top_list(root, UNGROUPED_LIST)
    if groups:
        if ungrouped is not None:
            _remove_entries(ungrouped, uri)
    else:
        _ensure_entry(ungrouped if ungrouped is not None else _add_list(root, UNGROUPED_LIST),
                      uri, name)
    buddies = _top_list(root, PRESENCE_LIST)
    if presence:
        _ensure_entry(buddies if buddies is not None else _add_list(root, PRESENCE_LIST),
                      uri, name)
    elif buddies is not None:
        _remove_entries(buddies, uri)
    for entry in _entries_of(root, uri):
        set_display_name(entry, name or None)


def remove_contact(root: etree._Element, uri: str) -> None:
    for top in _top_lists(root):
        _remove_entries(top, uri)


def rename_group(root: etree._Element, old: str, new: str) -> None:
    for top in _top_lists(root):
        if group_name(top.get("name"), child_text(top, TAG_DISPLAY_NAME)) == old:
            set_display_name(top, new)


def remove_group(root: etree._Element, group: str) -> None:
    """Remove the group's list; its contacts that belong to no other group become ungrouped."""
    for top in _top_lists(root):
        if group_name(top.get("name"), child_text(top, TAG_DISPLAY_NAME)) != group:
            continue
        orphans = [entry for entry in top.iter(TAG_ENTRY)]
        root.remove(top)
        for entry in orphans:
            uri = entry.get("uri", "")
            if uri and not _groups_of(root, uri):
                ungrouped = _top_list(root, UNGROUPED_LIST)
                if ungrouped is None:
                    ungrouped = _add_list(root, UNGROUPED_LIST)
                _ensure_entry(ungrouped, uri, child_text(entry, TAG_DISPLAY_NAME))


# -- internals -------------------------------------------------------------------------------


def _key(uri: str) -> str:
    return normalize_identity(uri)


def _top_lists(root: etree._Element) -> list[etree._Element]:
    return list(root.iterchildren(TAG_LIST))


def _top_list(root: etree._Element, name: str) -> etree._Element | None:
    for top in root.iterchildren(TAG_LIST):
        if top.get("name") == name:
            return top
    return None


def _entries_of(root: etree._Element, uri: str) -> Iterator[etree._Element]:
    key = normalize_identity(uri)
    for entry in root.iter(TAG_ENTRY):
        if normalize_identity(entry.get("uri", "")) == key:
            yield entry


def _in_list(element: etree._Element | None, uri: str) -> bool:
    return element is not None and next(_entries_of(element, uri), None) is not None


def _groups_of(root: etree._Element, uri: str) -> list[str]:
    found = []
    for top in _top_lists(root):
        group = group_name(top.get("name"), child_text(top, TAG_DISPLAY_NAME))
        if group is not None and _in_list(top, uri):
            found.append(group)
    return found


def _ensure_entry(element: etree._Element, uri: str, name: str | None) -> None:
    if not _in_list(element, uri):
        element.append(entry_element_for(uri, name))


def entry_element_for(uri: str, name: str | None) -> etree._Element:
    return entry_element(Entry(uri, name or None))


def _remove_entries(element: etree._Element, uri: str) -> None:
    for entry in list(_entries_of(element, uri)):
        parent = entry.getparent()
        if parent is not None:
            parent.remove(entry)


def _add_list(root: etree._Element, name: str) -> etree._Element:
    element: etree._Element = etree.SubElement(root, TAG_LIST, name=name)
    return element


def _add_group_list(root: etree._Element, group: str) -> etree._Element:
    taken = {top.get("name") for top in _top_lists(root)}
    name = group
    counter = 2
    while name in taken:
        name = f"{group}-{counter}"
        counter += 1
    element = _add_list(root, name)
    set_display_name(element, group)
    return element
