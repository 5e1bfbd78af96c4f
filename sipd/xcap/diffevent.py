"""The xcap-diff event package (RFC 5875), sans-I/O: what an account's SUBSCRIBE carries and
which of its documents a NOTIFY says changed.

    body = subscription_body([str(uri) for uri in document_uris])  # the SUBSCRIBE's body
    for change in changed_documents(content_type, notify_body, root=root, xui=xui):
        change.key, change.etag      # DocumentKey, the new ETag (None: the document is gone)

The SUBSCRIBE names the documents in a resource-lists document (RFC 5875 §4.3); the
notifier's first NOTIFY lists them with their ETags, later ones what changed (RFC 5874
documents). A document's `sel` is relative to the XCAP root: it is read against ours, whatever
host the notifier's xcap-root attribute names. Documents of other users, of the global tree,
and element or attribute changes (we subscribe to whole documents) are left out. A NOTIFY
without a body (a notifier with no state yet) says nothing. Anything else unreadable is
XcapDocumentError with the reason (parsed like every XCAP document: no entities, DTD or
network, bounded size and depth).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from sipd.xcap.diff import parse_xcap_diff
from sipd.xcap.documents import DocumentKey
from sipd.xcap.errors import XcapDocumentError, XcapUriError
from sipd.xcap.uri import XcapUri, normalize_root
from sipd.xcap.usages import MIME_DIFF, NS_RESOURCE_LISTS, RESOURCE_LISTS

EVENT = "xcap-diff"
CONTENT_TYPE = MIME_DIFF
#: the SUBSCRIBE's body: the URIs of the documents (RFC 5875 §4.3)
SUBSCRIBE_CONTENT_TYPE = RESOURCE_LISTS.mime_type
#: the largest xcap-diff document read from a NOTIFY
MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ChangedDocument:
    key: DocumentKey
    #: the document's ETag now; None when the notifier says it is gone (or gave none)
    etag: str | None
    removed: bool = False


def subscription_body(uris: Iterable[str]) -> bytes:
    """A resource-lists document with one list of the document URIs."""
    root = etree.Element(f"{{{NS_RESOURCE_LISTS}}}resource-lists", nsmap={None: NS_RESOURCE_LISTS})
    listing = etree.SubElement(root, f"{{{NS_RESOURCE_LISTS}}}list")
    for uri in uris:
        etree.SubElement(listing, f"{{{NS_RESOURCE_LISTS}}}entry", uri=uri)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def changed_documents(content_type: str | None, body: bytes, *, root: str,
                      xui: str) -> list[ChangedDocument]:
    """The documents of `xui` a NOTIFY body names; XcapDocumentError when it is unreadable."""
    if not body.strip():
        return []
    kind = (content_type or MIME_DIFF).split(";", 1)[0].strip().lower()
    if kind != MIME_DIFF:
        raise XcapDocumentError(f"an xcap-diff NOTIFY carries {kind}, not {MIME_DIFF}")
    if len(body) > MAX_BYTES:
        raise XcapDocumentError(f"xcap-diff document refused: larger than {MAX_BYTES} bytes")
    diff = parse_xcap_diff(body)
    root = normalize_root(root)
    changes: list[ChangedDocument] = []
    for document in diff.documents:
        try:
            uri = XcapUri.parse(f"{root}/{document.selector.lstrip('/')}", root)
        except XcapUriError:
            continue  # not a document URI under any root we could read
        if uri.node is not None or uri.xui is None or not same_xui(uri.xui, xui):
            continue
        changes.append(ChangedDocument(DocumentKey(uri.auid, uri.document),
                                       _unquoted(document.new_etag), document.removed))
    return changes


def _unquoted(etag: str | None) -> str | None:
    """An ETag as the manager keeps it (the HTTP header's value without quotes)."""
    return (etag or "").strip().strip('"') or None


def same_xui(one: str, other: str) -> bool:
    """XUIs as servers spell them: the scheme and host in any case."""
    return one.lower() == other.lower()
