"""The stream kinds a session can carry, by name (sans-I/O).

    registry = StreamRegistry([AudioKind()])
    registry.get("audio")                 # UnknownStreamKind for a name nobody registered
    registry.kind_for(remote_media_line)  # the first kind that recognises it, or None

`sipd.sessions.streams.default_registry()` is the registry sessions use; a new kind adds one
line there.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from ..sdp import MediaDescription
from .base import StreamKind


class UnknownStreamKind(KeyError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = tuple(known)

    def __str__(self) -> str:
        return f"no stream kind {self.name!r} (known: {', '.join(self.known) or 'none'})"


class StreamRegistry:
    def __init__(self, kinds: Iterable[StreamKind] = ()) -> None:
        self._kinds: dict[str, StreamKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: StreamKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"stream kind {kind.name!r} is registered already")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> StreamKind:
        kind = self._kinds.get(name)
        if kind is None:
            raise UnknownStreamKind(name, self._kinds)
        return kind

    def names(self) -> list[str]:
        return list(self._kinds)

    def __iter__(self) -> Iterator[StreamKind]:
        return iter(self._kinds.values())

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def kind_for(self, media: MediaDescription) -> StreamKind | None:
        """The kind that takes a remote m-line, in registration order; None for a line no
        kind recognises (it is answered with port 0)."""
        for kind in self._kinds.values():
            if kind.recognises(media):
                return kind
        return None
