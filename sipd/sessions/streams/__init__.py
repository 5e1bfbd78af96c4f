"""The streams a session carries, one per m-line, and the kinds they come in (docs/design.md,
"Sessions and streams"). A new kind is a module here and one line in `default_registry`."""

from __future__ import annotations

from .answering import (AnswerPlan, LinePlan, NothingAccepted, announced, answers_itself,
                        offered_kinds, plan_answer)
from .audio import AudioKind
from .base import (MediaAllocator, Stream, StreamContext, StreamKind, StreamRefused,
                   StreamState)
from .chat import ChatKind
from .file_transfer import FileTransferKind
from .screen import ScreenKind
from .registry import StreamRegistry, UnknownStreamKind

__all__ = ["AnswerPlan", "announced", "answers_itself", "AudioKind", "ChatKind", "FileTransferKind", "LinePlan", "MediaAllocator",
           "NothingAccepted", "ScreenKind", "offered_kinds", "Stream", "StreamContext", "StreamKind", "StreamRefused", "StreamRegistry",
           "StreamState", "UnknownStreamKind", "default_registry", "plan_answer"]


def default_registry() -> StreamRegistry:
    """The kinds sessions carry, in the order they are tried on a remote m-line."""
    # A file transfer's m=message line has a=file-selector: it is tried before chat's.
    return StreamRegistry([AudioKind(), FileTransferKind(), ChatKind(), ScreenKind()])
