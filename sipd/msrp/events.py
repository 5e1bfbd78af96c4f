"""What an MSRP session tells its owner (the stream kind that uses it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .headers import ByteRange, Headers, Status
from .message import MsrpResponse
from .uri import MsrpUri


class Event:
    pass


# -- incoming messages ------------------------------------------------------------------------

@dataclass
class MessageReceived(Event):
    """A whole message arrived (all its chunks, in whatever order they came)."""

    message_id: str
    content_type: str | None
    body: bytes
    headers: Headers  # of the chunk that started the message (Content-Type, extra headers...)
    from_path: list[MsrpUri]


@dataclass
class ChunkReceived(Event):
    """One chunk of a message (only with `deliver_chunks=True`, for file transfer): `data`
    belongs at byte `start` (from 1) of a message of `total` bytes (None: not yet known)."""

    message_id: str
    start: int
    data: bytes
    total: int | None
    content_type: str | None
    headers: Headers


@dataclass
class MessageAborted(Event):
    """An incoming message will not be completed: the sender aborted it (`#`), we refused a
    chunk of it (413, 415...), or the connection ended."""

    message_id: str
    reason: str


# -- outcome of our messages ------------------------------------------------------------------

@dataclass
class MessageSent(Event):
    """Every chunk of one of our messages is written out."""

    message_id: str


@dataclass
class MessageAnswered(Event):
    """Every chunk of one of our messages that asked for a success report is answered 200:
    the report is awaited now (a peer that never sends one still took every chunk)."""

    message_id: str


@dataclass
class MessageDelivered(Event):
    """The next hop took every chunk (200 responses, Success-Report not asked for), or the
    recipient's success REPORTs cover the whole message (`by_report`)."""

    message_id: str
    code: int = 200
    comment: str = ""
    by_report: bool = False


@dataclass
class MessageFailed(Event):
    """One of our messages did not get through. `code` is the MSRP status (408 for no
    answer in time), None when the connection ended first. A failure REPORT can follow a
    MessageDelivered: relays answer 200 hop by hop and report a later failure."""

    message_id: str
    code: int | None
    reason: str


@dataclass
class ReportReceived(Event):
    """A REPORT for one of our messages, as it came."""

    message_id: str
    status: Status
    byte_range: ByteRange | None


# -- the session and its connection -----------------------------------------------------------

@dataclass
class SessionBound(Event):
    """The connection now carries this session: the first request arrived (passive side) or
    was answered 200 (active side)."""

    remote_from_path: list[MsrpUri] = field(default_factory=list)


@dataclass
class ProtocolError(Event):
    """The peer sent something wrong; it was answered (`status`) or dropped. For logs."""

    detail: str
    status: int | None = None


@dataclass
class UnmatchedResponse(Event):
    """A response to a transaction this session did not start (an AUTH refresh of the relay
    client on the same connection, or a stray one)."""

    response: MsrpResponse


@dataclass
class ConnectionFailed(Event):
    """The connection cannot go on (unparseable input, a frame that stopped half way, the
    peer's certificate...): close it; the session ends with `reason`."""

    reason: str
