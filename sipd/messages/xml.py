"""Parsing XML that came off the network, safely.

Every XML payload sipd reads (is-composing here; PIDF, watcher-info and XCAP documents later)
comes from a peer we do not trust. libxml2 can be talked into expanding entities (billion
laughs), reading local files or fetching URLs (external entities, external DTDs) and building
arbitrarily deep trees. The parser made by `safe_parser()` does none of that, and `parse_xml()`
additionally refuses any document with a DOCTYPE: no payload format we speak uses one, so a DTD
can only be an attack or a mistake.
"""

from __future__ import annotations

from lxml import etree

DEFAULT_MAX_BYTES = 64 * 1024  # far above any real is-composing or presence document


class XMLPayloadError(ValueError):
    """An XML payload is not well-formed, is too large, or uses a feature we refuse (DTDs)."""


def safe_parser() -> etree.XMLParser:
    """A new parser that never expands entities, loads DTDs or touches the network, and keeps
    libxml2's limits on depth and text size (no `huge_tree`). Parsers are cheap and not
    shareable across threads, so callers make one per parse."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """The root element of the document in `data`; raises XMLPayloadError, never another
    exception, for anything that is not a plain, reasonably small, well-formed document."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise XMLPayloadError("XML payload must be bytes")
    if len(data) > max_bytes:
        raise XMLPayloadError(f"XML payload is too large ({len(data)} bytes, limit {max_bytes})")
    if not data.strip():
        raise XMLPayloadError("XML payload is empty")
    try:
        root = etree.fromstring(bytes(data), safe_parser())
    except etree.XMLSyntaxError as exc:
        raise XMLPayloadError(f"not well-formed XML: {exc.msg}") from None
    except (ValueError, etree.LxmlError) as exc:  # e.g. an unknown encoding declaration
        raise XMLPayloadError(f"unreadable XML: {exc}") from None
    if root is None:
        raise XMLPayloadError("XML payload has no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XMLPayloadError("XML payload contains a DOCTYPE declaration, which is not allowed")
    return root
