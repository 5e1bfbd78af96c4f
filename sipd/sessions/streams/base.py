"""What a stream kind is: the one interface a session speaks to its streams (docs/design.md,
"Sessions and streams").

A session is one INVITE dialog and an ordered list of streams, one per m-line. Each stream
belongs to a kind ("audio" today; "chat", "file-transfer", "screen-sharing" on MSRP next),
found in the registry (sipd.sessions.streams.registry). A kind says which remote m-lines it
recognises and whether it can take one; a stream of that kind then lives through the
offer/answer exchanges of its session:

    kind = registry.kind_for(offered_line)        # None: the line is answered with port 0
    why = kind.refusal(offered_line, context)     # None: it can take it
    stream = kind.new_stream(context, index)
    line = await stream.answer(offer, offered_line)   # or `await stream.offer()` for ours
    await stream.start(line, offered_line)        # once the exchange is complete (the ACK):
                                                  # an MSRP stream connects here
    await stream.update(local, remote)            # each later exchange (re-INVITE)
    await stream.hold(True)                       # our side puts it on hold
    await stream.end("bye")                       # the session ends, or the line is removed

Building a line may itself wait (an MSRP stream reserves its listening path, possibly at a
relay, before it can write a=path; the audio stream asks its media worker), so `offer` and
`answer` are coroutines. A line that has attributes of its own (a=path, a=accept-types,
a=setup, a=fingerprint) writes them into the MediaDescription it returns: the session only
places lines, it never reads inside them.

Sans-I/O apart from the coroutines' bodies: this module imports no trio and no socket.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Protocol

from ..sdp import MediaDescription, SessionDescription

Publish = Callable[[str, dict[str, Any]], None]


class StreamRefused(Exception):
    """A stream cannot take the line it was offered (no common codec, a bad a=path...): the
    text says why, and goes out in a Warning header when the whole offer is refused."""


class StreamState(enum.Enum):
    NEW = "new"                # made, no exchange yet
    NEGOTIATING = "negotiating"  # its line is in an offer or an answer not yet complete
    ACTIVE = "active"          # the exchange is complete: media flows (or connects)
    ENDED = "ended"


class MediaAllocator(Protocol):
    """What a stream that needs a media worker asks for one (sipd.media.supervisor)."""

    async def allocate(self, session_id: str) -> Any: ...

    def release(self, session_id: str) -> None: ...


@dataclass
class StreamContext:
    """What a stream sees of its session: who it is, how to say things, and the shared
    resources. Never the session manager."""

    session_id: str
    publish: Publish
    media: MediaAllocator | None = None
    audio_codecs: tuple[str, ...] = ()
    # What kinds need of the daemon beyond that, by name ("msrp": the MSRP service, whose
    # endpoint gives a stream its path and whose reservation connects after the answer).
    resources: dict[str, Any] = field(default_factory=dict)
    account: Any = None  # the session's account (sipd.accounts.model.AccountConfig)
    local: str = ""   # our URI in the session (the account's address of record)
    remote: str = ""  # the remote party's URI
    # A stream that broke for good (its connection lost, a fingerprint that does not match)
    # says so here: the session ends with that reason.
    fail: Callable[[str], None] = field(default=lambda reason: None)
    # A stream whose own line changed (its relay gave it a new a=path) hands the new line
    # here: the session offers it to the remote party (re-INVITE).
    line_changed: Callable[[int, MediaDescription], None] = field(
        default=lambda index, line: None)
    # What the user asked of the session's streams, by kind name (sessions.start's "screen",
    # files.send's file, sessions.answer's path): each kind reads its own entry.
    options: dict[str, Any] = field(default_factory=dict)
    # A stream whose work is done (a file delivered) ends the session with a reason; one that
    # knows how the session should be remembered says so before the peer hangs up.
    end: Callable[[str], None] = field(default=lambda reason: None)
    outcome: Callable[[str, bool], None] = field(default=lambda reason, failed: None)
    # A stream whose own work is over (a screen whose VNC side left) leaves its session
    # (its index, why): its line is removed by a re-INVITE (port 0) when the session has
    # other streams, which live on; the session ends with the reason when it was the last.
    leave: Callable[[int, str], None] = field(default=lambda index, reason: None)
    # What a kind carried back to back over an internal SIP leg needs of its session's SIP
    # side (the audio kind: sipd.sessions.streams.audio.stream.AudioSignalling); None for
    # the others.
    signalling: Any = None


class Stream(ABC):
    """One m-line of a session, of one kind."""

    def __init__(self, kind: StreamKind, context: StreamContext, index: int) -> None:
        self.kind = kind
        self.context = context
        self.index = index  # its m-line's position, fixed for the session (RFC 3264 §8)
        self.state = StreamState.NEW
        self.held = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind.name} #{self.index} {self.state.value}>"

    def view(self) -> dict[str, Any]:
        """What sessions.get shows of the stream."""
        return {"index": self.index, "kind": self.kind.name, "state": self.state.value}

    @abstractmethod
    async def offer(self) -> MediaDescription:
        """Our m-line for an offer of ours (the first one or a re-offer)."""

    @abstractmethod
    async def answer(self, offer: SessionDescription,
                     offered: MediaDescription) -> MediaDescription:
        """Our m-line answering `offered`; StreamRefused when it cannot be taken."""

    async def start(self, local: MediaDescription, remote: MediaDescription) -> None:
        """The exchange that created the stream is complete: media may flow. It runs as a
        task of the session: an MSRP stream connects here (or waits for the peer to) and may
        stay to read its connection until the session ends (its task is then cancelled)."""
        self.state = StreamState.ACTIVE

    def takes_update(self, remote: MediaDescription) -> bool:
        """Whether the stream can follow the remote's re-offer of its line (`remote`) while
        keeping its own line as it is (then `update` is called once it is answered)."""
        return False

    async def update(  # noqa: B027 (an optional hook: most kinds need nothing here)
            self, local: MediaDescription, remote: MediaDescription) -> None:
        """A later exchange (re-INVITE) changed its lines."""

    async def hold(self, held: bool) -> None:
        """Our side puts the stream on hold (or takes it off); the session re-offers."""
        self.held = held

    def end_meaning(self) -> str | None:
        """What a hangup (ours or the remote's) means for this stream's work, said as the
        session's end reason instead of the hangup's own: a file transfer under way
        "cancelled", one whose file the peer took whole "completed"; None: nothing."""
        return None

    async def end(self, reason: str | None = None) -> None:
        """The session ends, or the stream's line was removed: free what it holds."""
        self.state = StreamState.ENDED


class StreamKind(ABC):
    """A kind of stream: how its remote m-lines look and how to make a stream of it."""

    name: ClassVar[str]  # what clients write in sessions.start's "streams"
    uses_media_worker: ClassVar[bool] = False  # a session of no such stream allocates none

    @abstractmethod
    def recognises(self, media: MediaDescription) -> bool:
        """Whether a remote m-line is of this kind (m= type and transport, usually)."""

    def refusal(self, offer: SessionDescription, media: MediaDescription,
                context: StreamContext) -> str | None:
        """Why this kind cannot take the offered line (None: it can), known before anything
        is allocated, so that an offer nothing can take is refused at once (488)."""
        return None

    def unavailable(self, resources: dict[str, Any]) -> str | None:
        """Why no stream of this kind can be made now (None: it can), for a clear refusal of
        sessions.start instead of a session that fails."""
        return None

    def announce(self, media: MediaDescription) -> dict[str, Any]:
        """Fields an incoming session offering this line is announced with in session.new
        (a file transfer's "file")."""
        return {}

    async def answers_itself(self, offer: SessionDescription, media: MediaDescription,
                             context: StreamContext) -> bool:
        """Whether an incoming session offering only lines of this kind is answered without
        the user (a pull of a shared file, a file from a contact when the account says so)."""
        return False

    @abstractmethod
    def new_stream(self, context: StreamContext, index: int) -> Stream:
        """A stream of this kind for the m-line at `index`."""
