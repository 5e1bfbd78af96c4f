"""A stream kind as a newcomer writes one (what sipd/sessions/streams/<kind>.py would hold):
m=application lines over TCP/DUMMY, answered with our own port, no media worker."""

from __future__ import annotations

from sipd.sessions.sdp import Connection, MediaDescription, SessionDescription
from sipd.sessions.streams import Stream, StreamContext, StreamKind, StreamRefused, StreamState


class DummyStream(Stream):
    started: tuple[MediaDescription, MediaDescription] | None = None
    ended: str | None = None

    async def offer(self) -> MediaDescription:
        return self._line()

    async def answer(self, offer: SessionDescription,
                     offered: MediaDescription) -> MediaDescription:
        if offered.attribute("dummy") == "refuse":
            raise StreamRefused("the dummy says no")
        return self._line()

    def _line(self) -> MediaDescription:
        line = MediaDescription.new("application", 9999, "TCP/DUMMY", ["*"],
                                    connection=Connection("127.0.0.1"))
        line.add_attribute("dummy", "ours")
        return line

    async def start(self, local: MediaDescription, remote: MediaDescription) -> None:
        self.started = (local, remote)
        self.state = StreamState.ACTIVE
        self.context.publish("dummy.started", {"id": self.context.session_id})

    async def end(self, reason: str | None = None) -> None:
        self.ended = reason or "ended"
        self.state = StreamState.ENDED
        self.context.publish("dummy.ended", {"id": self.context.session_id})


class DummyKind(StreamKind):
    name = "dummy"

    def __init__(self) -> None:
        self.streams: list[DummyStream] = []

    def recognises(self, media: MediaDescription) -> bool:
        return bool(media.type == "application" and media.proto == "TCP/DUMMY")

    def new_stream(self, context: StreamContext, index: int) -> Stream:
        stream = DummyStream(self, context, index)
        self.streams.append(stream)
        return stream
