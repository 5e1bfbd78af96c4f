"""The one exception the SIP core raises for bad input, and whether it can be answered.

The answer itself is built by `sipd.sip.builder.error_response`: this module imports nothing
of the SIP core, so every other core module can import it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .headers import Headers


class SipParseError(ValueError):
    """A message (or one of its header fields) does not follow the SIP grammar.

    `status` is the response code to answer a request with (400, 505, 513, ...); it is None
    when the bad input is a response or cannot be answered at all (it is then dropped,
    RFC 3261 §18.1.2 / RFC 4475 §3.1.2.5). `reason` is a short reason phrase for that
    response, `detail` says exactly what is wrong (for logs; never contains secrets).

    When the error comes from parsing a whole message, `headers` holds the header fields that
    could be read and `method` the request method, so that `builder.error_response(error)`
    can build the answer. `fatal` is True for stream framing errors: the connection cannot be
    resynchronised and must be closed after the answer is sent.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = 400,
        reason: str | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.reason = reason or _default_reason(status)
        self.fatal = fatal
        self.is_request = False
        self.method: str | None = None
        self.headers: Headers | None = None

    def attach(self, *, is_request: bool, method: str | None,
               headers: Headers | None) -> SipParseError:
        """Record what was read of the message (called by the message parser)."""
        self.is_request = is_request
        self.method = method
        self.headers = headers
        if not is_request:
            self.status = None  # a malformed response is dropped, never answered
        return self

    @property
    def answerable(self) -> bool:
        """True when a response can be sent: a request (not an ACK) with Via, From, To,
        Call-ID and CSeq present, even if one of them is malformed (they are copied as-is)."""
        if self.status is None or not self.is_request or self.headers is None:
            return False
        if self.method == "ACK":
            return False  # an ACK is never answered
        return all(name in self.headers for name in ("Via", "From", "To", "Call-ID", "CSeq"))

    def __repr__(self) -> str:
        return f"SipParseError({self.detail!r}, status={self.status!r}, fatal={self.fatal!r})"


# The name the rest of the code base may use.
ParseError = SipParseError


def _default_reason(status: int | None) -> str:
    return {
        400: "Bad Request",
        413: "Request Entity Too Large",
        416: "Unsupported URI Scheme",
        505: "Version Not Supported",
        513: "Message Too Large",
    }.get(status or 0, "Bad Request")
