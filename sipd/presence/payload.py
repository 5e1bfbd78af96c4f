"""What every presence payload module shares: the one error a body that cannot be read raises,
the namespaces and content types, reading a document safely, and building one with lxml.

Reading goes through `sipd.messages.xml.parse_xml` (no entity expansion, no DTD, no network,
libxml2's depth limit of 256, no `huge_tree`), then checks that the root element is the one
the format names, in its namespace. Anything that goes wrong, from random bytes to a billion
laughs, ends up as `PayloadError` with a reason a user can read.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from sipd.messages.xml import XMLPayloadError, parse_xml

__all__ = [
    "PayloadError", "InvalidInput", "parse_document", "qname", "new_document", "serialize", "child",
    "children", "text_of", "PIDF_NS", "DM_NS", "RPID_NS", "CIPID_NS", "PIDF_IM_NS",
    "WATCHERINFO_NS", "RLMI_NS", "DIALOG_INFO_NS", "XML_NS", "PIDF_TYPE", "WATCHERINFO_TYPE",
    "RLMI_TYPE", "DIALOG_INFO_TYPE", "MESSAGE_SUMMARY_TYPE", "MULTIPART_RELATED",
    "MAX_DOCUMENT_BYTES", "MAX_TEXT_CHARS", "local_name", "namespace_of", "xml_text",
]

PIDF_NS = "urn:ietf:params:xml:ns:pidf"                      # RFC 3863
DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"             # RFC 4479
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"                 # RFC 4480
CIPID_NS = "urn:ietf:params:xml:ns:pidf:cipid"               # RFC 4482
PIDF_IM_NS = "urn:ietf:params:xml:ns:pidf:im"                # RFC 3863 §3 example extension
WATCHERINFO_NS = "urn:ietf:params:xml:ns:watcherinfo"        # RFC 3858
RLMI_NS = "urn:ietf:params:xml:ns:rlmi"                      # RFC 4662
DIALOG_INFO_NS = "urn:ietf:params:xml:ns:dialog-info"        # RFC 4235
XML_NS = "http://www.w3.org/XML/1998/namespace"

PIDF_TYPE = "application/pidf+xml"
WATCHERINFO_TYPE = "application/watcherinfo+xml"
RLMI_TYPE = "application/rlmi+xml"
DIALOG_INFO_TYPE = "application/dialog-info+xml"
MESSAGE_SUMMARY_TYPE = "application/simple-message-summary"
MULTIPART_RELATED = "multipart/related"

# A presence document of a person with a handful of devices is a few kilobytes; a server's
# aggregate of many devices stays far below this. A resource list's parts are limited one by
# one (sipd.presence.multipart has the limits of the whole body).
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_TEXT_CHARS = 4096  # a note, a display name, a URI: longer ones are cut


class InvalidInput(ValueError):
    """What we were asked to put into a document cannot go there; `field` names the value
    (as the RPC param that carried it) and `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PayloadError(ValueError):
    """A body that cannot be taken: not well-formed, hostile (a DTD, an entity), too large or
    too deep, the wrong document, or a value the format forbids. `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_document(data: bytes, namespace: str, root: str, what: str, *,
                   max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """The root element of a `what` document (`{namespace}root`), read safely."""
    try:
        element = parse_xml(data, max_bytes=max_bytes)
    except XMLPayloadError as exc:
        raise PayloadError(f"{what}: {exc}") from None
    if not isinstance(element.tag, str):
        raise PayloadError(f"{what}: the document has no root element")
    expected = qname(namespace, root)
    if element.tag != expected:
        raise PayloadError(f"{what}: the root element is {_shown(element.tag)}, not {root} "
                           f"in namespace {namespace}")
    return element


def _shown(tag: str) -> str:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    local = local[:60]
    return f"{local} in namespace {namespace[:80]}" if namespace else f"{local} (no namespace)"


def qname(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def children(parent: etree._Element, namespace: str, local: str) -> Iterator[etree._Element]:
    """The child elements `{namespace}local` of `parent`, in document order."""
    return parent.iterchildren(qname(namespace, local))  # lxml filters by tag in C


def child(parent: etree._Element, namespace: str, local: str) -> etree._Element | None:
    return next(parent.iterchildren(qname(namespace, local)), None)


def text_of(element: etree._Element | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    """The text content of an element (its own text and its descendants'), stripped; None
    when absent or empty. Overlong text is cut to `limit` characters."""
    if element is None:
        return None
    text = "".join(element.itertext()).strip()
    return text[:limit] if text else None


def local_name(element: etree._Element) -> str | None:
    """The local part of an element's name (None for comments and processing instructions)."""
    tag = element.tag
    if not isinstance(tag, str):
        return None
    return tag.rpartition("}")[2]


def namespace_of(element: etree._Element) -> str | None:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return None
    return tag[1:].partition("}")[0]


def new_document(namespace: str, root: str, nsmap: dict[str | None, str],
                 attributes: dict[str, str] | None = None) -> etree._Element:
    """A new root element; `nsmap` gives the prefixes to declare (None: the default one)."""
    element = etree.Element(qname(namespace, root), nsmap=nsmap)
    for name, value in (attributes or {}).items():
        element.set(name, value)
    return element


def serialize(root: etree._Element) -> bytes:
    """The document as UTF-8 bytes with an XML declaration (what every peer expects)."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def xml_text(value: str, field: str) -> str:
    """`value` if XML can carry it; InvalidInput naming `field` otherwise (control characters,
    lone surrogates)."""
    for char in value:
        code = ord(char)
        if (code < 0x20 and char not in "\t\n\r") or 0xD800 <= code <= 0xDFFF \
                or code in (0xFFFE, 0xFFFF):
            raise InvalidInput(field, f"contains a character XML cannot carry (U+{code:04X})")
    return value
