"""What can go wrong with XCAP, as exceptions a caller can tell apart and show to a user."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sipd.xcap.xcaperror import XcapErrorDocument


class XcapError(Exception):
    """Base of every XCAP error."""


class XcapUriError(XcapError, ValueError):
    """An XCAP URI, document name or node selector that cannot be built or parsed."""


class XcapDocumentError(XcapError, ValueError):
    """A document we refuse: not well-formed, too large or too deep, with a DTD or entities,
    or not the kind of document expected. The message says which and why."""


class XcapEditError(XcapError, ValueError):
    """An edit that cannot be made as asked (a reserved group name, a malformed URI...)."""


class XcapHTTPError(XcapError):
    """The server answered a request with an error status the caller has to see."""

    def __init__(self, status: int, reason: str, url: str, detail: str = "") -> None:
        self.status = status
        self.reason = reason
        self.url = url
        self.detail = detail
        text = f"XCAP server answered {status} {reason} for {url}"
        super().__init__(f"{text}: {detail}" if detail else text)


class XcapNotFoundError(XcapHTTPError):
    """404: the document, element or attribute does not exist."""


class XcapPreconditionFailed(XcapHTTPError):
    """412: the document changed on the server since the ETag the write was based on."""


class XcapConflictError(XcapHTTPError):
    """409: the server refused the write; `error` is its xcap-error document (None when the
    body was not one), and the message carries what it says."""

    def __init__(self, url: str, error: XcapErrorDocument | None, raw: str = "") -> None:
        self.error = error
        detail = error.describe() if error is not None else (raw or "no error document")
        super().__init__(409, "Conflict", url, detail)


class XcapUnavailableError(XcapError):
    """The server could not be reached, or kept failing (5xx) through every retry."""
