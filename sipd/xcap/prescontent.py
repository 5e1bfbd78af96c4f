"""OMA presence content documents: the status icon an account keeps on its XCAP server
(auid org.openmobilealliance.pres-content, document oma_status-icon/icon), which watchers
fetch by the URL the PIDF's icon points at.

    body = build_icon(StatusIcon(png_bytes, "image/png", description="at the beach"))
    icon = parse_icon(body)          # StatusIcon; XcapDocumentError when unreadable

    <content xmlns="urn:oma:xml:prs:pres-content">
      <mime-type>image/png</mime-type><encoding>base64</encoding>
      <description>at the beach</description><data>iVBORw0...</data>
    </content>
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lxml import etree

from sipd.xcap.errors import XcapDocumentError, XcapEditError
from sipd.xcap.usages import NS_PRES_CONTENT, PRES_CONTENT
from sipd.xcap.xmldoc import expect_root, parse_document, serialize

#: an icon larger than this is refused before it is sent (servers keep far less: Kamailio's
#: xcap_server reads 64 KiB bodies unless its buf_size says more)
MAX_ICON_BYTES = 512 * 1024

_NS = f"{{{NS_PRES_CONTENT}}}"


@dataclass(frozen=True)
class StatusIcon:
    data: bytes
    mime_type: str
    description: str | None = None

    def __post_init__(self) -> None:
        kind = self.mime_type.strip().lower()
        if not kind.startswith("image/") or any(c.isspace() for c in kind) or "/" not in kind:
            raise XcapEditError(f"an icon's type must be an image/* MIME type, not "
                                f"{self.mime_type!r}")
        if not self.data:
            raise XcapEditError("the icon is empty")
        if len(self.data) > MAX_ICON_BYTES:
            raise XcapEditError(f"the icon is larger than {MAX_ICON_BYTES} bytes")


def build_icon(icon: StatusIcon) -> bytes:
    root = etree.Element(f"{_NS}content", nsmap={None: NS_PRES_CONTENT})
    etree.SubElement(root, f"{_NS}mime-type").text = icon.mime_type.strip().lower()
    etree.SubElement(root, f"{_NS}encoding").text = "base64"
    if icon.description:
        etree.SubElement(root, f"{_NS}description").text = icon.description
    etree.SubElement(root, f"{_NS}data").text = base64.b64encode(icon.data).decode("ascii")
    return serialize(root)


def parse_icon(data: bytes) -> StatusIcon:
    what = "pres-content document"
    root = parse_document(data, what=what)
    expect_root(root, NS_PRES_CONTENT, PRES_CONTENT.root, what)
    encoding = (root.findtext(f"{_NS}encoding") or "base64").strip().lower()
    if encoding != "base64":
        raise XcapDocumentError(f"{what} refused: encoding {encoding!r}, not base64")
    try:
        content = base64.b64decode("".join((root.findtext(f"{_NS}data") or "").split()),
                                   validate=True)
        return StatusIcon(content, (root.findtext(f"{_NS}mime-type") or "").strip(),
                          root.findtext(f"{_NS}description"))
    except (binascii.Error, ValueError) as exc:
        raise XcapDocumentError(f"{what} refused: {exc}") from None
