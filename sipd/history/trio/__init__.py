"""The history on trio: the writer task, pruning, and the reads RPC methods make."""

from .history import History, open_history

__all__ = ["History", "open_history"]
