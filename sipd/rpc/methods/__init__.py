"""RPC methods, one module per namespace of the public surface (docs/design.md §4)."""

from . import (  # noqa: F401  (importing registers them)
    accounts, auth, chat, contacts, events, files, history, messages, presence, presence_policy,
    sessions, settings, system, web, xcap,
)
from ..api import registry

__all__ = ["registry"]
