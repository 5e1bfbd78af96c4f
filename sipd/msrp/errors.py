"""Errors of the MSRP core."""

from __future__ import annotations


class MsrpParseError(ValueError):
    """Input that is not valid MSRP. `status` is the response code the peer should get
    (400 for malformed input, 413 for a frame past our limits), `detail` says what was wrong."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
