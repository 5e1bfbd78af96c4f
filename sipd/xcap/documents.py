"""The documents an account keeps on its XCAP server, and how an edit becomes a write.

    documents = DocumentSet()
    documents.store(key, StoredDocument(content, etag, content_type))   # after a GET or PUT
    documents.store(key, None)                                          # after a 404
    write = documents.plan(op)     # None: the document already says so, nothing to send
    # ... PUT write.body with write.if_match / write.if_none_match ...
    documents.committed(write, new_etag)     # on 2xx
    # on 412: store the fresh copy (GET) and plan the same op again

`view(key, pending)` is a document as it will be once the pending (journalled) operations
land, which is what a user sees while the server is unreachable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from sipd.xcap.errors import XcapDocumentError, XcapEditError
from sipd.xcap.operations import _Operation
from sipd.xcap.usages import usage_for
from sipd.xcap.xmldoc import parse_document, serialize


@dataclass(frozen=True, order=True)
class DocumentKey:
    auid: str
    document: str = "index"

    def __str__(self) -> str:
        return f"{self.auid}/{self.document}"


@dataclass(frozen=True)
class StoredDocument:
    content: bytes
    etag: str | None
    content_type: str = "application/xml"

    def root(self, what: str) -> etree._Element:
        return parse_document(self.content, what=what)


@dataclass(frozen=True)
class PlannedWrite:
    key: DocumentKey
    body: bytes
    content_type: str
    #: the ETag the edit was made on (If-Match), None when the document did not exist
    if_match: str | None
    #: "*" when the document must not exist yet (If-None-Match)
    if_none_match: str | None


def key_of(op: _Operation) -> DocumentKey:
    return DocumentKey(op.auid, op.document)


def mime_type(auid: str) -> str:
    usage = usage_for(auid)
    return usage.mime_type if usage else "application/xml"


class DocumentSet:
    def __init__(self) -> None:
        self._documents: dict[DocumentKey, StoredDocument | None] = {}

    def known(self, key: DocumentKey) -> bool:
        return key in self._documents

    def get(self, key: DocumentKey) -> StoredDocument | None:
        """The stored copy; None when the server has no such document (or it was never read)."""
        return self._documents.get(key)

    def store(self, key: DocumentKey, document: StoredDocument | None) -> None:
        self._documents[key] = document

    def forget(self, key: DocumentKey) -> None:
        self._documents.pop(key, None)

    def keys(self) -> list[DocumentKey]:
        return sorted(self._documents)

    def plan(self, op: _Operation) -> PlannedWrite | None:
        """The write that makes `op` on the stored copy, or None when it changes nothing.
        XcapDocumentError when the stored document is one we refuse to edit."""
        key = key_of(op)
        if key not in self._documents:
            raise KeyError(f"{key} has not been read yet")
        current = self._documents[key]
        root = current.root(f"{key} document") if current is not None else None
        before = serialize(root) if root is not None else None
        after = serialize(op.apply(root))
        if after == before:
            return None
        return PlannedWrite(
            key, after, mime_type(key.auid),
            current.etag if current is not None else None,
            "*" if current is None else None)

    def committed(self, write: PlannedWrite, etag: str | None) -> None:
        self._documents[write.key] = StoredDocument(write.body, etag, write.content_type)

    def view(self, key: DocumentKey, pending: Iterable[_Operation] = ()) -> etree._Element | None:
        """The document with the pending operations on it applied (those that cannot be are
        left out: the server will say why when they are sent)."""
        current = self._documents.get(key)
        try:
            root = current.root(f"{key} document") if current is not None else None
        except XcapDocumentError:
            root = None
        for op in pending:
            if key_of(op) != key:
                continue
            try:
                root = op.apply(root)
            except XcapEditError:
                continue
        return root
