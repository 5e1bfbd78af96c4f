"""xcap-error documents (RFC 4825 §11): why a server refused a write with 409.

    error = parse_xcap_error(body)
    error.reason        # "uniqueness-failure"
    error.alt_values    # (("list/@name", ("friends1", "friends2")),)
    error.describe()    # one line for the user
"""

from __future__ import annotations

from dataclasses import dataclass

from sipd.xcap.usages import NS_XCAP_ERROR
from sipd.xcap.xmldoc import expect_root, local_name, parse_document

_XE = f"{{{NS_XCAP_ERROR}}}"

#: the conflict reasons RFC 4825 §11 defines, and what each means for a user
REASONS = {
    "not-well-formed": "the document or element sent is not well-formed XML",
    "not-xml-frag": "the element sent is not a single XML element",
    "no-parent": "the element to insert has no parent in the document",
    "schema-validation-error": "the result would not be valid for this application usage",
    "not-xml-att-value": "the attribute value sent is not valid",
    "cannot-insert": "the element cannot be inserted where the node selector points",
    "cannot-delete": "the element cannot be deleted",
    "uniqueness-failure": "a value that must be unique is already used",
    "constraint-failure": "the result breaks a constraint of this application usage",
    "extension": "the server refused it for a reason of its own",
    "not-utf-8": "the document sent is not UTF-8",
}


@dataclass(frozen=True)
class XcapErrorDocument:
    #: the conflict element's name, e.g. "uniqueness-failure" (or an extension's)
    reason: str
    #: the server's human-readable phrase, if it gave one
    phrase: str | None = None
    #: uniqueness-failure: (field, alternative values) per <exists>
    alt_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: no-parent: the closest ancestor that does exist
    ancestor: str | None = None

    def describe(self) -> str:
        text = f"{self.reason}: {self.phrase or REASONS.get(self.reason, 'refused')}"
        for field, values in self.alt_values:
            text += f" ({field}"
            text += f"; try {', '.join(values)})" if values else ")"
        if self.ancestor:
            text += f" (closest existing ancestor: {self.ancestor})"
        return text


def parse_xcap_error(data: bytes) -> XcapErrorDocument:
    """XcapDocumentError unless `data` is an xcap-error document with a conflict element."""
    root = parse_document(data, what="xcap-error document", max_bytes=256 * 1024)
    expect_root(root, NS_XCAP_ERROR, "xcap-error", "xcap-error document")
    conflict = next((child for child in root if isinstance(child.tag, str)), None)
    if conflict is None:
        return XcapErrorDocument("unknown")
    alt_values = tuple(
        (exists.get("field", ""),
         tuple((alt.text or "").strip() for alt in exists.iterchildren(f"{_XE}alt-value")))
        for exists in conflict.iterchildren(f"{_XE}exists"))
    ancestor = conflict.find(f"{_XE}ancestor")
    phrase = conflict.get("phrase")
    return XcapErrorDocument(
        local_name(conflict),
        phrase.strip() if phrase and phrase.strip() else None,
        alt_values,
        (ancestor.text or "").strip() if ancestor is not None else None,
    )
