"""RPC methods, one module per namespace of the public surface (DESIGN.md §4)."""

from . import (  # noqa: F401  (importing registers them)
    accounts, auth, events, history, messages, presence, sessions, settings, system,
)
from ..api import registry

__all__ = ["registry"]
