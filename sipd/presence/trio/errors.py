"""What the presence calls refuse, naming the parameter at fault."""

from __future__ import annotations

__all__ = ["PresenceError"]


class PresenceError(ValueError):
    """A presence call cannot be done as asked: `field` names the parameter at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
