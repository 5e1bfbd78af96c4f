"""XCAP URIs (RFC 4825 §6): XCAP root, AUID, tree, XUI, document, node selector, namespaces.

    uri = XcapUri(root="https://xcap.example.com/xcap-root", auid="resource-lists",
                  xui="sip:alice@example.com", document="index",
                  node=NodeSelector.parse('resource-lists/list[@name="friends"]'))
    str(uri)  # https://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/
              #   index/~~/resource-lists/list%5B@name=%22friends%22%5D
    XcapUri.parse(str(uri), root=uri.root) == uri

Escaping follows RFC 3986: ":" and "@" stay as they are in path segments (a SIP URI as XUI
reads as itself, and servers such as Kamailio take the owner from the raw path), anything else
outside pchar is percent-encoded; a "/" inside a quoted attribute value of a node selector is
encoded too, so a server that splits the path before decoding it still finds the steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from sipd.xcap.errors import XcapUriError
from sipd.xcap.selector import NodeSelector

NODE_SEPARATOR = "~~"
# RFC 3986 pchar minus "%" (quote() adds the escapes) : unreserved, sub-delims, ":" and "@".
_PCHAR_SAFE = "-._~!$&'()*+,;=:@"
_SELECTOR_SAFE = "-._~!$&'()*+,;=:@/"
_QUERY_SAFE = "-._~!$&'()*+,;=:@/?"
_XMLNS_RE = re.compile(r"xmlns\(\s*([^=\s()]+)\s*=\s*([^)]*?)\s*\)")


@dataclass(frozen=True)
class XcapUri:
    root: str
    auid: str
    document: str
    #: the user's identifier (a SIP URI) for the users tree; None for the global tree
    xui: str | None = None
    node: NodeSelector | None = None
    #: prefix -> namespace for the prefixes the node selector uses (the xmlns() query)
    namespaces: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", normalize_root(self.root))
        if not self.auid or "/" in self.auid:
            raise XcapUriError(f"{self.auid!r} is not an AUID")
        if not self.document or self.document.startswith("/") or self.document.endswith("/"):
            raise XcapUriError(f"{self.document!r} is not a document path")
        if any(part in ("", ".", "..", NODE_SEPARATOR) for part in self.document.split("/")):
            raise XcapUriError(f"{self.document!r} is not a document path")
        if self.xui is not None and not self.xui:
            raise XcapUriError("an empty XUI names no user")
        if self.node is not None:
            missing = self.node.prefixes() - set(self.namespaces)
            if missing:
                raise XcapUriError(
                    f"node selector prefixes {sorted(missing)} have no namespace binding")
        object.__setattr__(self, "namespaces", dict(self.namespaces))

    # -- building ----------------------------------------------------------------------------

    @property
    def document_uri(self) -> str:
        """The URI of the whole document (no node selector)."""
        tree = "global" if self.xui is None else f"users/{escape_segment(self.xui)}"
        document = "/".join(escape_segment(part) for part in self.document.split("/"))
        return f"{self.root}/{escape_segment(self.auid)}/{tree}/{document}"

    def __str__(self) -> str:
        text = self.document_uri
        if self.node is None:
            return text
        text += f"/{NODE_SEPARATOR}/{escape_selector(str(self.node))}"
        if self.namespaces:
            query = "".join(f"xmlns({prefix}={uri})" for prefix, uri in self.namespaces.items())
            text += "?" + quote(query, safe=_QUERY_SAFE + "()")
        return text

    def with_node(self, node: NodeSelector | str | None,
                  namespaces: Mapping[str, str] | None = None) -> XcapUri:
        if isinstance(node, str):
            node = NodeSelector.parse(node)
        return XcapUri(self.root, self.auid, self.document, self.xui, node,
                       dict(namespaces or {}))

    # -- parsing -----------------------------------------------------------------------------

    @classmethod
    def parse(cls, uri: str, root: str) -> XcapUri:
        """Split `uri` under the XCAP root `root`; XcapUriError when it is not an XCAP URI
        below that root."""
        root = normalize_root(root)
        if not uri.startswith(root + "/"):
            raise XcapUriError(f"{uri!r} is not below the XCAP root {root!r}")
        rest, _, query = uri[len(root) + 1:].partition("?")
        path, separator, selector_text = rest.partition(f"/{NODE_SEPARATOR}/")
        if not separator and rest.endswith(f"/{NODE_SEPARATOR}"):
            raise XcapUriError(f"{uri!r} has an empty node selector")
        segments = path.split("/")
        if len(segments) < 3:
            raise XcapUriError(f"{uri!r} names no document")
        auid = unquote(segments[0], errors="strict")
        if segments[1] == "global":
            xui = None
            document_parts = segments[2:]
        elif segments[1] == "users" and len(segments) >= 4:
            xui = unquote(segments[2], errors="strict")
            document_parts = segments[3:]
        else:
            raise XcapUriError(f"{uri!r} is in neither the users nor the global tree")
        document = "/".join(unquote(part, errors="strict") for part in document_parts)
        node = NodeSelector.parse(unquote(selector_text, errors="strict")) if separator else None
        namespaces = parse_xmlns_query(unquote(query, errors="strict")) if query else {}
        try:
            return cls(root, auid, document, xui, node, namespaces)
        except XcapUriError as exc:
            raise XcapUriError(f"{uri!r}: {exc}") from None


def normalize_root(root: str) -> str:
    """The XCAP root without a trailing slash; XcapUriError unless it is an http(s) URL."""
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise XcapUriError(f"XCAP root {root!r} is not an http or https URL")
    if parts.query or parts.fragment:
        raise XcapUriError(f"XCAP root {root!r} must not have a query or fragment")
    return root.rstrip("/")


def escape_segment(text: str) -> str:
    return quote(text, safe=_PCHAR_SAFE)


def escape_selector(selector: str) -> str:
    """Percent-encode a node selector; "/" inside quoted values is encoded as well."""
    out: list[str] = []
    quote_char = ""
    for char in selector:
        if quote_char:
            if char == quote_char:
                quote_char = ""
            elif char == "/":
                out.append("%2F")
                continue
        elif char in "\"'":
            quote_char = char
        out.append(quote(char, safe=_SELECTOR_SAFE))
    return "".join(out)


def parse_xmlns_query(query: str) -> dict[str, str]:
    """prefix -> namespace from an XCAP URI query of xmlns(prefix=uri) parts (RFC 4825 §6.4)."""
    bindings: dict[str, str] = {}
    position = 0
    for match in _XMLNS_RE.finditer(query):
        if query[position:match.start()].strip():
            raise XcapUriError(f"XCAP URI query {query!r} is not a list of xmlns() bindings")
        bindings[match.group(1)] = match.group(2)
        position = match.end()
    if query[position:].strip():
        raise XcapUriError(f"XCAP URI query {query!r} is not a list of xmlns() bindings")
    return bindings
