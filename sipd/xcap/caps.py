"""xcap-caps (RFC 4825 §12): what a server offers, from the global document
`<root>/xcap-caps/global/index`."""

from __future__ import annotations

from dataclasses import dataclass

from sipd.xcap.usages import NS_XCAP_CAPS
from sipd.xcap.xmldoc import expect_root, parse_document

_XC = f"{{{NS_XCAP_CAPS}}}"


@dataclass(frozen=True)
class XcapCaps:
    auids: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()

    def supports(self, auid: str) -> bool:
        return auid in self.auids


def parse_caps(data: bytes) -> XcapCaps:
    root = parse_document(data, what="xcap-caps document")
    expect_root(root, NS_XCAP_CAPS, "xcap-caps", "xcap-caps document")

    def texts(group: str, item: str) -> tuple[str, ...]:
        return tuple((element.text or "").strip()
                     for element in root.iterfind(f"{_XC}{group}/{_XC}{item}")
                     if (element.text or "").strip())

    return XcapCaps(texts("auids", "auid"), texts("extensions", "extension"),
                    texts("namespaces", "namespace"))
