"""Parsing and serialising XCAP documents safely.

XCAP documents come from a server and, through it, from whoever else can write to it. They are
parsed with the project's safe parser (no entities, no DTD, no network; sipd/messages/xml.py)
with limits of our own on size, depth and element count, and every refusal is one exception,
XcapDocumentError, saying what was refused and why.
"""

from __future__ import annotations

from lxml import etree

from sipd.messages.xml import XMLPayloadError, parse_xml
from sipd.xcap.errors import XcapDocumentError

#: A resource list of thousands of contacts is a few hundred KiB.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
#: The deepest XCAP format we speak (pres-rules) nests about 8 levels; nested lists go deeper.
DEFAULT_MAX_DEPTH = 48
DEFAULT_MAX_ELEMENTS = 100_000


def parse_document(
    data: bytes,
    *,
    what: str = "XCAP document",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> etree._Element:
    """The root element of `data`; XcapDocumentError for anything hostile or malformed."""
    try:
        root = parse_xml(data, max_bytes=max_bytes)
    except XMLPayloadError as exc:
        raise XcapDocumentError(f"{what} refused: {exc}") from None
    depth = 0
    count = 0
    for event, _element in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            count += 1
            if depth > max_depth:
                raise XcapDocumentError(
                    f"{what} refused: elements nested deeper than {max_depth} levels")
            if count > max_elements:
                raise XcapDocumentError(
                    f"{what} refused: more than {max_elements} elements")
        else:
            depth -= 1
    for node in root.iter(etree.Entity, etree.ProcessingInstruction):
        if isinstance(node, etree._Entity):
            raise XcapDocumentError(f"{what} refused: it uses the entity &{node.name};")
    return root


def expect_root(root: etree._Element, namespace: str, local: str, what: str) -> None:
    """XcapDocumentError unless `root` is {namespace}local."""
    if root.tag != f"{{{namespace}}}{local}":
        raise XcapDocumentError(
            f"{what} refused: its root element is {_readable(root.tag)}, "
            f"not {local} in {namespace}")


def serialize(root: etree._Element) -> bytes:
    """The document as UTF-8 bytes with an XML declaration."""
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def local_name(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def namespace_of(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1:].partition("}")[0]


def child_text(element: etree._Element, tag: str) -> str | None:
    """Text of the first child `tag` ({ns}local), stripped; None when there is none."""
    child = element.find(tag)
    if child is None:
        return None
    return (child.text or "").strip()


def _readable(tag: object) -> str:
    if not isinstance(tag, str):
        return "not an element"
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return f"{local} in {ns}"
    return f"{tag} (no namespace)"
