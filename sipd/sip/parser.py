"""Framing SIP messages on a byte stream (TCP, TLS, RFC 3261 §18.3).

Feed bytes with `receive_data()`; it returns events in order:

- `MessageReceived(message)`: a complete, well-formed message;
- `MessageRejected(error)`: a complete message that is malformed; framing is intact, so
  answer `builder.error_response(error)` (if not None) and keep reading;
- `KeepAlivePing()`: the peer sent CRLFCRLF; answer with a single CRLF (RFC 5626 §4.4.1);
- `KeepAlivePong()`: the peer sent a single CRLF (the answer to our ping); a ping is one
  4-octet write, so a lone CRLF at the end of the data read is taken as a pong at once;
- `StreamBroken(error)`: the framing is lost (no, negative or several Content-Length, or a
  message over `max_message_size`); answer `builder.error_response(error)` if not None, then
  close the connection. The framer accepts no more data after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SipParseError
from .message import (
    AnyMessage,
    Head,
    build_message,
    content_length,
    find_head_end,
    parse_head,
)

DEFAULT_MAX_MESSAGE_SIZE = 65535


@dataclass(frozen=True)
class MessageReceived:
    message: AnyMessage


@dataclass(frozen=True)
class MessageRejected:
    error: SipParseError


@dataclass(frozen=True)
class KeepAlivePing:
    pass


@dataclass(frozen=True)
class KeepAlivePong:
    pass


@dataclass(frozen=True)
class StreamBroken:
    error: SipParseError


StreamEvent = (MessageReceived | MessageRejected | KeepAlivePing | KeepAlivePong
               | StreamBroken)


class StreamFramer:
    """Cuts a byte stream into SIP messages. Sans-I/O: no sockets, no clocks."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buffer = bytearray()
        self._search_from = 0  # where to resume looking for the end of the header section
        self.broken: SipParseError | None = None

    @property
    def buffered(self) -> int:
        """Octets held back waiting for the rest of a message."""
        return len(self._buffer)

    def receive_data(self, data: bytes | bytearray) -> list[StreamEvent]:
        if self.broken is not None:
            raise RuntimeError("the stream's framing was lost; close the connection")
        self._buffer += data
        events: list[StreamEvent] = []
        while self._buffer and self.broken is None:
            event = self._next_event()
            if event is None:
                break
            events.append(event)
        return events

    def _next_event(self) -> StreamEvent | None:
        buffer = self._buffer
        # Between messages only CRLFs may appear: keep-alives (RFC 5626 §4.4.1, RFC 3261 §7.5).
        if buffer.startswith(b"\r\n\r\n"):
            del buffer[:4]
            return KeepAlivePing()
        if buffer.startswith(b"\r\n"):
            if len(buffer) == 2 or buffer[2:3] != b"\r":
                del buffer[:2]
                return KeepAlivePong()
            return None  # "\r\n\r": wait to see whether a ping is arriving
        if buffer == b"\r":
            return None
        end = find_head_end(buffer, max(0, self._search_from - 3))
        if end is None:
            self._search_from = len(buffer)
            if len(buffer) > self.max_message_size:
                return self._break(SipParseError(
                    f"header section longer than {self.max_message_size} octets",
                    status=513, fatal=True), None)
            return None
        head = parse_head(bytes(buffer[:end[0]]))
        try:
            length = content_length(head.headers, fatal=True)
            if length is None:
                raise SipParseError("no Content-Length on a stream transport",
                                    reason="Missing Content-Length", fatal=True)
        except SipParseError as exc:
            return self._break(exc, head)
        total = end[1] + length
        if total > self.max_message_size:
            return self._break(SipParseError(
                f"message of {total} octets exceeds the limit of {self.max_message_size}",
                status=513, fatal=True), head)
        if len(buffer) < total:
            return None
        body = bytes(buffer[end[1]:total])
        del buffer[:total]
        self._search_from = 0
        try:
            return MessageReceived(build_message(head, body))
        except SipParseError as exc:
            return MessageRejected(exc)

    def _break(self, error: SipParseError, head: Head | None) -> StreamBroken:
        error.fatal = True
        if head is not None:
            head.fail(error)
        self.broken = error
        self._buffer.clear()
        return StreamBroken(error)
