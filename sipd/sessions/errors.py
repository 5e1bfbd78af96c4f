"""What the session commands raise, for the RPC layer to turn into its errors."""

from __future__ import annotations


class SessionNotFound(LookupError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session with id {session_id!r}")
        self.id = session_id


class SessionStateError(Exception):
    """A command the session cannot take in its current state; the text says why."""


class InvalidSessionParam(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class StreamUnavailable(Exception):
    """A stream of the kind asked for cannot be made now (MSRP did not start...)."""
