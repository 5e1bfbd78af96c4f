"""RPC methods, one module per namespace of the public surface (DESIGN.md §4)."""

from . import accounts, auth, events, history, messages, sessions, settings, system  # noqa: F401,E501  (importing registers them)
from ..api import registry

__all__ = ["registry"]
