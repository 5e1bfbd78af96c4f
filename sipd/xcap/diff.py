"""xcap-diff documents (RFC 5874): what changed on the server, sent in NOTIFYs of the
xcap-diff event package (RFC 5875).

    diff = parse_xcap_diff(body)
    for change in diff.documents:   # DocumentChange(selector, previous_etag, new_etag, ...)
        ...

A document change names the document (relative to `xcap_root`) and its ETags; its body may hold
a patch (RFC 5261 add/replace/remove), or `body-not-changed`. Element and attribute changes
carry the node's new content (or `exists` false: it is gone). sipd reloads a changed document
rather than applying patches: `has_patch` only says one was there.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from sipd.xcap.usages import NS_XCAP_DIFF
from sipd.xcap.xmldoc import expect_root, local_name, parse_document

_XD = f"{{{NS_XCAP_DIFF}}}"
_PATCH_OPS = {"add", "replace", "remove"}


@dataclass(frozen=True)
class DocumentChange:
    selector: str
    previous_etag: str | None = None
    new_etag: str | None = None
    body_not_changed: bool = False
    has_patch: bool = False

    @property
    def removed(self) -> bool:
        """A document change with no new ETag says the document is gone."""
        return self.new_etag is None and self.previous_etag is not None


@dataclass(frozen=True)
class ElementChange:
    selector: str
    exists: bool
    #: the element as XML (None when it no longer exists or was not included)
    content: bytes | None = None


@dataclass(frozen=True)
class AttributeChange:
    selector: str
    exists: bool
    value: str | None = None


@dataclass(frozen=True)
class XcapDiff:
    xcap_root: str
    documents: tuple[DocumentChange, ...] = ()
    elements: tuple[ElementChange, ...] = ()
    attributes: tuple[AttributeChange, ...] = ()


def parse_xcap_diff(data: bytes) -> XcapDiff:
    root = parse_document(data, what="xcap-diff document")
    expect_root(root, NS_XCAP_DIFF, "xcap-diff", "xcap-diff document")
    documents: list[DocumentChange] = []
    elements: list[ElementChange] = []
    attributes: list[AttributeChange] = []
    for child in root:
        if not isinstance(child.tag, str) or not child.get("sel"):
            continue
        selector = child.get("sel", "")
        if child.tag == f"{_XD}document":
            documents.append(DocumentChange(
                selector, child.get("previous-etag"), child.get("new-etag"),
                child.find(f"{_XD}body-not-changed") is not None,
                any(local_name(op) in _PATCH_OPS for op in child if isinstance(op.tag, str)),
            ))
        elif child.tag == f"{_XD}element":
            exists = _exists(child)
            body = next((e for e in child if isinstance(e.tag, str)), None)
            elements.append(ElementChange(
                selector, exists,
                bytes(etree.tostring(body)) if exists and body is not None else None))
        elif child.tag == f"{_XD}attribute":
            exists = _exists(child)
            attributes.append(AttributeChange(selector, exists,
                                              child.text if exists else None))
    return XcapDiff(root.get("xcap-root", ""), tuple(documents), tuple(elements),
                    tuple(attributes))


def _exists(element: etree._Element) -> bool:
    return element.get("exists", "true") not in ("0", "false")
