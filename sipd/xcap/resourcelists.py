"""resource-lists documents (RFC 4826 §3): lists of entries, entry references and externals.

    lists = parse_resource_lists(data)          # ResourceLists, read-only data
    lists.lists[0].entries[0].uri
    data = build_resource_lists(lists)          # bytes

Reading keeps what sipd shows (names, display names, URIs, references); edits that must keep
the rest of a document intact (other clients' extensions) work on the lxml tree itself
(contacts.py), with the element builders here.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sipd.xcap.usages import NS_RESOURCE_LISTS
from sipd.xcap.xmldoc import child_text, expect_root, parse_document, serialize

NS = NS_RESOURCE_LISTS
_RL = f"{{{NS}}}"
TAG_LISTS = f"{_RL}resource-lists"
TAG_LIST = f"{_RL}list"
TAG_ENTRY = f"{_RL}entry"
TAG_ENTRY_REF = f"{_RL}entry-ref"
TAG_EXTERNAL = f"{_RL}external"
TAG_DISPLAY_NAME = f"{_RL}display-name"


@dataclass(frozen=True)
class Entry:
    uri: str
    display_name: str | None = None


@dataclass(frozen=True)
class EntryRef:
    """A reference to an entry elsewhere on the server (a relative XCAP URI)."""

    ref: str
    display_name: str | None = None


@dataclass(frozen=True)
class External:
    """A whole list kept elsewhere (an absolute XCAP URI of a list element)."""

    anchor: str
    display_name: str | None = None


@dataclass(frozen=True)
class ResourceList:
    name: str | None = None
    display_name: str | None = None
    entries: tuple[Entry, ...] = ()
    entry_refs: tuple[EntryRef, ...] = ()
    externals: tuple[External, ...] = ()
    lists: tuple[ResourceList, ...] = ()

    def all_entries(self) -> list[Entry]:
        """The entries of this list and of the lists nested in it, in document order."""
        found = list(self.entries)
        for sub in self.lists:
            found.extend(sub.all_entries())
        return found


@dataclass(frozen=True)
class ResourceLists:
    lists: tuple[ResourceList, ...] = ()

    def list_named(self, name: str) -> ResourceList | None:
        for item in self.lists:
            if item.name == name:
                return item
        return None


def parse_resource_lists(data: bytes) -> ResourceLists:
    """XcapDocumentError unless `data` is a resource-lists document."""
    root = parse_document(data, what="resource-lists document")
    return resource_lists_from_element(root)


def resource_lists_from_element(root: etree._Element) -> ResourceLists:
    expect_root(root, NS, "resource-lists", "resource-lists document")
    return ResourceLists(tuple(list_from_element(item) for item in root.iterchildren(TAG_LIST)))


def list_from_element(element: etree._Element) -> ResourceList:
    entries: list[Entry] = []
    refs: list[EntryRef] = []
    externals: list[External] = []
    lists: list[ResourceList] = []
    for child in element:
        if child.tag == TAG_ENTRY and child.get("uri"):
            entries.append(Entry(child.get("uri", ""), child_text(child, TAG_DISPLAY_NAME)))
        elif child.tag == TAG_ENTRY_REF and child.get("ref"):
            refs.append(EntryRef(child.get("ref", ""), child_text(child, TAG_DISPLAY_NAME)))
        elif child.tag == TAG_EXTERNAL and child.get("anchor"):
            externals.append(External(child.get("anchor", ""),
                                      child_text(child, TAG_DISPLAY_NAME)))
        elif child.tag == TAG_LIST:
            lists.append(list_from_element(child))
    return ResourceList(element.get("name"), child_text(element, TAG_DISPLAY_NAME),
                        tuple(entries), tuple(refs), tuple(externals), tuple(lists))


def build_resource_lists(lists: ResourceLists) -> bytes:
    root = new_root()
    for item in lists.lists:
        root.append(list_element(item))
    return serialize(root)


def new_root() -> etree._Element:
    return etree.Element(TAG_LISTS, nsmap={None: NS})


def list_element(item: ResourceList) -> etree._Element:
    element = etree.Element(TAG_LIST)
    if item.name is not None:
        element.set("name", item.name)
    _display_name(element, item.display_name)
    for sub in item.lists:
        element.append(list_element(sub))
    for external in item.externals:
        child = etree.SubElement(element, TAG_EXTERNAL, anchor=external.anchor)
        _display_name(child, external.display_name)
    for entry in item.entries:
        element.append(entry_element(entry))
    for ref in item.entry_refs:
        child = etree.SubElement(element, TAG_ENTRY_REF, ref=ref.ref)
        _display_name(child, ref.display_name)
    return element


def entry_element(entry: Entry) -> etree._Element:
    element = etree.Element(TAG_ENTRY, uri=entry.uri)
    _display_name(element, entry.display_name)
    return element


def set_display_name(element: etree._Element, name: str | None) -> None:
    """Set, replace or (None) remove the display-name child, which comes first (RFC 4826)."""
    current = element.find(TAG_DISPLAY_NAME)
    if name is None:
        if current is not None:
            element.remove(current)
        return
    if current is None:
        current = etree.Element(TAG_DISPLAY_NAME)
        element.insert(0, current)
    current.text = name


def _display_name(element: etree._Element, name: str | None) -> None:
    if name is not None:
        etree.SubElement(element, TAG_DISPLAY_NAME).text = name
