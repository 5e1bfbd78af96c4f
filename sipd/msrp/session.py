"""The sans-I/O MSRP session (RFC 4975): bytes and time in, bytes and events out.

    session = MsrpSession(local_path=[our_uri], remote_path=their_path, active=True)
    session.send_message(b"hello", "text/plain")         # queued; returns the Message-ID
    transport.write(session.data_to_send(now))           # chunks, responses, REPORTs
    session.receive_data(data, now)                      # what the peer sent
    for event in session.events(): ...                   # MessageReceived, MessageDelivered...
    session.handle_timers(now)                           # at session.next_deadline()

Outgoing messages are cut into chunks of `chunk_size` bytes; a message queued while a long one
is going out gets its chunks in between (the queue is served round-robin, chunk by chunk).
Each chunk sent with Failure-Report yes is a transaction that must be answered within
`transaction_timeout` seconds (408 otherwise). The outcome of each message is one event:
MessageDelivered (every chunk answered 200; with Success-Report, REPORTs covering the whole
message) or MessageFailed (an error response or REPORT, no answer in time, the connection gone).

Incoming requests are checked strictly and answered: To-Path not this session 481, a method
other than SEND/REPORT 501 (AUTH 403: we are no relay), a malformed request or a Byte-Range
that contradicts the body 400, a message past `max_message_size` 413, a Content-Type outside
`accept_types` 415. Chunks are put together in any order; `#` aborts a message. Responses and
REPORTs follow the request's Failure-Report and Success-Report (defaults yes and no; `partial`:
errors only). An owner that stores what arrives (file transfer) can hold the success REPORT
until it has (`owner_confirms`, `confirm_incoming`) and give a message up after its chunks were
answered (`refuse_incoming`: a failure REPORT now, its later chunks answered with the code).

The passive side (RFC 6135) sends nothing until the first request binds the connection; the
active side sends its first message, or an empty SEND (`send_empty`), at once.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from . import headers as h
from .errors import MsrpParseError
from .events import (
    ChunkReceived,
    ConnectionFailed,
    Event,
    MessageAborted,
    MessageAnswered,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    MessageSent,
    ProtocolError,
    ReportReceived,
    SessionBound,
    UnmatchedResponse,
)
from .headers import ByteRange, Headers, Status
from .incoming import IncomingMessage
from .message import (
    REASONS,
    MsrpRequest,
    MsrpResponse,
    new_message_id,
    new_transaction_id,
)
from .outgoing import BodySource, BytesSource, OutgoingMessage
from .parser import FrameError, FrameParser
from .uri import MsrpUri, format_path

TRANSACTION_TIMEOUT = 30.0
DEFAULT_CHUNK_SIZE = 2048
MAX_OPEN_INCOMING = 32  # messages with chunks still missing, per session
_RECENT = 1024  # finished messages remembered (late REPORTs, duplicate chunks)
# A chat message as MSRP senders usually write it (sipd does), and the 200 answering one:
# frames read at once by `_fast_frames`, without the general parse; every check of the
# general way is made on them (docs/decisions.md, MSRP). Values are printable ASCII here;
# anything else, another order of the headers or more of them, goes the general way.
_IDENT = rb"[A-Za-z0-9][A-Za-z0-9.\-+%=]{0,63}"
_CHAT_FRAME = re.compile(
    rb"MSRP (" + _IDENT + rb") (?:"
    rb"200 OK\r\nTo-Path: [\t -~]*\r\nFrom-Path: [\t -~]*\r\n-------\1\$\r\n|"
    rb"SEND\r\nTo-Path: ([\t -~]+)\r\nFrom-Path: ([\t -~]+)\r\n"
    rb"Message-ID: (" + _IDENT + rb")\r\nByte-Range: 1-([1-9][0-9]{0,18})/([1-9][0-9]{0,18})\r\n"
    rb"Content-Type: ([\t -~]+)\r\n\r\n)")


@dataclass(slots=True)
class _Transaction:
    transaction_id: str
    message: OutgoingMessage
    start: int
    end: int
    deadline: float
    expects_response: bool
    done: bool = False


def media_type_matches(content_type: str, accepted: Iterable[str]) -> bool:
    """`text/plain` against accept-types such as `*`, `text/*`, `text/plain`."""
    content_type = content_type.lower()
    major = content_type.split("/", 1)[0]
    for item in accepted:
        item = item.lower().split(";", 1)[0].strip()
        if item in ("*", "*/*", content_type) or item == f"{major}/*":
            return True
    return False


class MsrpSession:
    def __init__(
        self,
        local_path: list[MsrpUri],
        remote_path: list[MsrpUri] | None = None,
        *,
        active: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_message_size: int | None = 16 * 1024 * 1024,
        accept_types: Iterable[str] = ("*",),
        transaction_timeout: float = TRANSACTION_TIMEOUT,
        report_timeout: float = TRANSACTION_TIMEOUT,
        frame_timeout: float = TRANSACTION_TIMEOUT,
        max_header_bytes: int = 16384,
        max_chunk_bytes: int | None = None,
        deliver_chunks: bool = False,
        owner_confirms: bool = False,
        parser: FrameParser | None = None,
    ) -> None:
        """`local_path`: our relays' Use-Path URIs then our own URI (our a=path);
        `remote_path`: the peer's a=path (can come later, `set_remote_path`); `active`: we
        opened the connection (we may send at once) rather than wait for the peer's first
        request. `deliver_chunks`: ChunkReceived events instead of whole messages kept in
        memory (file transfer). `owner_confirms`: a success REPORT asked for waits until the
        owner has stored the message (`confirm_incoming`; file transfer). `parser`: one that
        already read from the connection (the relay client's, holding what arrived after the
        AUTH)."""
        if not local_path:
            raise ValueError("local_path needs at least our own URI")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._paths_text: str | None = None  # To-Path and From-Path of our SENDs
        # To-Path and From-Path of our responses, by the request's From-Path, To-Path, SEND
        self._answer_paths: dict[tuple[str | None, str | None, bool], str] = {}
        self._local_path = list(local_path)
        self._remote_path = list(remote_path) if remote_path else None
        self.active = active
        self.chunk_size = chunk_size
        self.max_message_size = max_message_size
        self.accept_types = tuple(accept_types)
        self.transaction_timeout = transaction_timeout
        self.report_timeout = report_timeout
        self.frame_timeout = frame_timeout
        self.deliver_chunks = deliver_chunks
        self.owner_confirms = owner_confirms
        self.parser = parser or FrameParser(
            max_header_bytes=max_header_bytes,
            max_chunk_bytes=max_chunk_bytes or max(chunk_size, max_message_size or 0, 65536))
        self.bound = False
        self.closed_reason: str | None = None
        self._events: deque[Event] = deque()
        self._control = bytearray()  # responses and REPORTs: they go before any chunk
        self._queue: deque[OutgoingMessage] = deque()
        self._messages: dict[str, OutgoingMessage] = {}  # unfinished, ours
        self._recent: OrderedDict[str, OutgoingMessage] = OrderedDict()
        self._transactions: dict[str, _Transaction] = {}
        self._timeouts: deque[_Transaction] = deque()  # in deadline order
        self._reports_due: deque[OutgoingMessage] = deque()
        self._incoming: dict[str, IncomingMessage] = {}
        self._finished_incoming: OrderedDict[str, None] = OrderedDict()
        self._refused: OrderedDict[str, tuple[int, str]] = OrderedDict()  # by the owner
        # complete, with a success REPORT asked for, waiting for the owner (owner_confirms)
        self._unconfirmed: OrderedDict[str, tuple[list[MsrpUri], int]] = OrderedDict()
        self._last_data = 0.0
        self._bind_tid: str | None = None
        # For `_fast_frames`, set once a SEND went through every check the general way: its
        # To-Path and From-Path values, the From-Path, the start of a 200 answering them.
        self._fast_paths: tuple[bytes, bytes, list[MsrpUri], bytes, str, str] | None = None
        self._fast_types: dict[bytes, str] = {}  # Content-Type values we accept, parsed

    # -- paths ---------------------------------------------------------------------------

    @property
    def local_path(self) -> list[MsrpUri]:
        """Our a=path: our relay's Use-Path (if any), then our URI."""
        return self._local_path

    @local_path.setter
    def local_path(self, path: list[MsrpUri]) -> None:
        self._local_path = list(path)
        self._paths_text = None
        self._fast_paths = None

    @property
    def remote_path(self) -> list[MsrpUri] | None:
        return self._remote_path

    @remote_path.setter
    def remote_path(self, path: list[MsrpUri] | None) -> None:
        self._remote_path = list(path) if path else None
        self._paths_text = None
        self._fast_paths = None

    @property
    def local_uri(self) -> MsrpUri:
        return self._local_path[-1]

    def set_remote_path(self, remote_path: list[MsrpUri]) -> None:
        if not remote_path:
            raise ValueError("remote_path needs at least the peer's URI")
        self.remote_path = list(remote_path)

    def _to_path(self) -> list[MsrpUri]:
        assert self.remote_path is not None
        return self.local_path[:-1] + self.remote_path

    # -- our messages ----------------------------------------------------------------------

    def send_message(self, body: bytes | BodySource, content_type: str | None = "text/plain", *,
                     message_id: str | None = None, success_report: bool = False,
                     failure_report: str = "yes",
                     headers: Iterable[tuple[str, str]] = ()) -> str:
        """Queues a message; its chunks leave through `data_to_send`. Returns its Message-ID.
        `headers`: extra headers for its first chunk (Content-Disposition...)."""
        if self.closed_reason is not None:
            raise RuntimeError(f"MSRP session is closed: {self.closed_reason}")
        if failure_report not in ("yes", "no", "partial"):
            raise ValueError("failure_report: yes, no or partial")
        source = BytesSource(body) if isinstance(body, (bytes, bytearray)) else body
        if source.size and not content_type:
            raise ValueError("a message with a body needs a content type")
        message_id = message_id or new_message_id()
        if message_id in self._messages:
            raise ValueError(f"message {message_id} is already being sent")
        message = OutgoingMessage(message_id, source, content_type, success_report,
                                  failure_report, Headers(headers))
        self._messages[message_id] = message
        self._queue.append(message)
        return message_id

    def send_empty(self) -> str:
        """An empty SEND (RFC 6135): binds the connection when we are the active side and
        have nothing else to say. Its outcome is no event (a failure shows in the binding)."""
        message_id = self.send_message(b"", None)
        self._messages[message_id].silent = True
        return message_id

    def _tell(self, message: OutgoingMessage, event: Event) -> None:
        if not message.silent:
            self._events.append(event)

    def abort_message(self, message_id: str) -> bool:
        """Stops one of our messages: its next chunk goes out empty with the `#` flag. False
        when the message is not (or no longer) being sent."""
        message = self._messages.get(message_id)
        if message is None or message.all_sent or message.aborted:
            return False
        message.aborted = True
        return True

    def refuse_incoming(self, message_id: str, code: int, comment: str) -> None:
        """The owner cannot take an incoming message after all (a full disk, a file that is
        not what was offered): a failure REPORT tells the sender now, and the message's later
        chunks are answered `code` (413: stop sending)."""
        incoming = self._incoming.pop(message_id, None)
        unconfirmed = self._unconfirmed.pop(message_id, None)
        self._refused[message_id] = (code, comment)
        while len(self._refused) > _RECENT:
            self._refused.popitem(last=False)
        if self.remote_path is None or self.closed_reason is not None:
            return
        total = incoming.expected_size if incoming is not None else \
            unconfirmed[1] if unconfirmed is not None else None
        report = MsrpRequest(new_transaction_id(), "REPORT")
        report.headers.add(h.TO_PATH, format_path(self._to_path()))
        report.headers.add(h.FROM_PATH, str(self.local_uri))
        report.headers.add(h.MESSAGE_ID, message_id)
        report.headers.add(h.BYTE_RANGE, str(ByteRange(1, total, total)))
        report.headers.add(h.STATUS, str(Status(code, comment.replace("\r", " ")
                                                 .replace("\n", " "))))
        self._control += report.serialize()

    def confirm_incoming(self, message_id: str) -> bool:
        """With `owner_confirms`: the owner has stored a complete incoming message; the
        success REPORT its sender asked for goes now. False when none is waiting."""
        waiting = self._unconfirmed.pop(message_id, None)
        if waiting is None or self.closed_reason is not None:
            return False
        from_path, size = waiting
        self._send_report(from_path, message_id, size, Status(200, "OK"))
        return True

    @property
    def pending_messages(self) -> list[str]:
        """Our messages without an outcome yet."""
        return list(self._messages)

    # -- output ----------------------------------------------------------------------------

    @property
    def has_data_to_send(self) -> bool:
        return bool(self._control) or (self._may_send_requests and bool(self._queue))

    @property
    def _may_send_requests(self) -> bool:
        return (self.closed_reason is None and self.remote_path is not None
                and (self.active or self.bound))

    def data_to_send(self, now: float, limit: int = 256 * 1024) -> bytes:
        """Bytes for the connection: responses and REPORTs first, then chunks of the queued
        messages until about `limit` bytes."""
        parts = self.output(now, limit)
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def output(self, now: float, limit: int = 256 * 1024) -> list[bytes | memoryview]:
        """What `data_to_send` would return, in pieces to be written in order (a chunk's body
        is a view of the message: a writer that takes pieces, writev, copies it once)."""
        parts: list[bytes | memoryview] = [bytes(self._control)] if self._control else []
        self._control.clear()
        size = len(parts[0]) if parts else 0
        queue = self._queue
        while queue and size < limit and self._may_send_requests:
            message = queue.popleft()
            for part in self._next_chunk(message, now):
                parts.append(part)
                size += len(part)
            if not message.all_sent and not message.finished:
                queue.append(message)  # round-robin: another message's chunk goes next
        return parts

    def _next_chunk(self, message: OutgoingMessage, now: float) -> list[bytes | memoryview]:
        if message.aborted:
            _, parts = self._chunk_frame(message, message.next_start, b"", "#")
            message.next_start = message.size + 1
            self._tell(message, MessageFailed(message.message_id, None, "aborted by us"))
            self._forget(message)
            return parts
        chunk = message.next_chunk(self.chunk_size)
        start = chunk.start
        end = start + len(chunk.data) - 1
        transaction_id, parts = self._chunk_frame(message, start, chunk.data,
                                                  "$" if chunk.last else "+")
        expects = message.failure_report == "yes"
        transaction = _Transaction(transaction_id, message, start, end,
                                   now + self.transaction_timeout, expects)
        self._transactions[transaction_id] = transaction
        self._timeouts.append(transaction)
        if expects:
            message.outstanding += 1
        if self.active and not self.bound and self._bind_tid is None:
            self._bind_tid = transaction_id
        if chunk.last:
            self._tell(message, MessageSent(message.message_id))
            if not expects:
                self._all_answered(message, now)
        return parts

    def _chunk_frame(self, message: OutgoingMessage, start: int, data: bytes | memoryview,
                     flag: str) -> tuple[str, list[bytes | memoryview]]:
        """The SEND of one chunk on the wire: (transaction-id, [head, body, end-line]), or
        [head and end-line] for a chunk without a body. Written here rather than through
        MsrpRequest and Headers: a chat message is one chunk, and this is its cost; the
        values were checked for line breaks when the message was queued."""
        transaction_id = new_transaction_id()
        length = len(data)
        end = str(start + length - 1) if flag != "#" else "*"
        paths = self._paths_text
        if paths is None:
            paths = self._paths_text = (f"{h.TO_PATH}: {format_path(self._to_path())}\r\n"
                                        f"{h.FROM_PATH}: {self.local_uri}\r\n")
        head = (f"MSRP {transaction_id} SEND\r\n{paths}{message.head_text}"
                f"{h.BYTE_RANGE}: {start}-{end}/{message.size}\r\n")
        if start == 1:
            head += message.extra_text
            if not length and not message.content_type:
                return transaction_id, [f"{head}-------{transaction_id}{flag}\r\n".encode()]
        elif not length:
            return transaction_id, [f"{head}-------{transaction_id}{flag}\r\n".encode()]
        return transaction_id, [f"{head}{message.type_text}\r\n".encode(), data,
                                f"\r\n-------{transaction_id}{flag}\r\n".encode()]

    # -- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray, now: float) -> None:
        self._last_data = now
        if type(data) is bytes and self.parser.idle and self.closed_reason is None:
            taken = self._fast_frames(data, now)
            if taken:
                if taken == len(data):
                    return
                data = data[taken:]
        for item in self.parser.feed(data):
            self.receive_frame(item, now)

    def _fast_frames(self, data: bytes, now: float) -> int:
        """Reads the whole chat SENDs and 200s at the start of `data` (the parser holding
        nothing): how many bytes they took. The first frame of another kind, or that would
        be answered otherwise than 200 or needs more care, stops it: the parser takes it."""
        pos = 0
        size = len(data)
        transactions = self._transactions
        while pos < size:
            match = _CHAT_FRAME.match(data, pos)
            if match is None:
                break
            if match.group(2) is None:  # a 200
                transaction = transactions.pop(match.group(1).decode("ascii"), None)
                if transaction is None:
                    break  # not ours: the relay client's, or unmatched
                self._answered(transaction, 200, "OK", now)
                pos = match.end()
                continue
            end = self._fast_send(match, data)
            if end < 0:
                break
            pos = end
        return pos

    def _fast_send(self, match: re.Match[bytes], data: bytes) -> int:
        """A chat message in one chunk, read by `_CHAT_FRAME`: answered 200 and handed over when
        it passes the checks of `_request` and `_send` (the paths as the last SEND that passed
        them, the Byte-Range against the body, the end-line, the type, no earlier chunk of its
        Message-ID); the offset after it, or -1 (nothing done) for the general way."""
        known = self._fast_paths
        tid, to_path, from_path, message_id, end, total, type_value = match.groups()
        if known is None or to_path != known[0] or from_path != known[1] or end != total:
            return -1
        length = int(end)
        body_start = match.end()
        parser = self.parser
        if body_start - match.start() > parser.max_header_bytes or \
                length > parser.max_chunk_bytes:
            return -1  # the parser's limits: its way says what is wrong
        stop = body_start + length
        end_line = b"\r\n-------" + tid + b"$\r\n"
        # Our end-line where the Byte-Range says, and no end-line of any transaction before
        # it (an empty body would put one at the blank line).
        if not data.startswith(end_line, stop) or data.find(
                b"\r\n-------" if length <= 4096 else end_line[:-3], body_start - 2, stop) >= 0:
            return -1  # (a short needle finds any end-line faster, a long one ours)
        content_type = self._fast_types.get(type_value)
        if content_type is None:
            try:
                content_type = h.parse_content_type(type_value.decode("ascii"))
            except MsrpParseError:
                return -1
            if self.accept_types and not media_type_matches(content_type, self.accept_types):
                return -1
            if len(self._fast_types) < 16:
                self._fast_types[type_value] = content_type
        mid = message_id.decode("ascii")
        if mid in self._incoming or mid in self._refused or mid in self._finished_incoming \
                or len(self._incoming) >= MAX_OPEN_INCOMING \
                or (self.max_message_size is not None and length > self.max_message_size):
            return -1
        self._control += b"MSRP %s%s%s$\r\n" % (tid, known[3], tid)
        body = data[body_start:stop]
        headers = Headers(((h.TO_PATH, known[4]), (h.FROM_PATH, known[5]), (h.MESSAGE_ID, mid),
                           (h.BYTE_RANGE, f"1-{length}/{length}"),
                           (h.CONTENT_TYPE, type_value.decode("ascii").strip())))
        if self.deliver_chunks:
            self._events.append(ChunkReceived(mid, 1, body, length, content_type, headers))
        self._complete(mid, length, content_type, body, headers, list(known[2]), False)
        return stop + len(end_line)

    def take_over(self, frames: Iterable[MsrpRequest | MsrpResponse | FrameError],
                  now: float) -> None:
        """Takes over a connection another reader started with this session's parser (the
        listener reads the first frame to find the session; a relay link its AUTH): the
        frames it read, and the bytes the parser holds, count as arrived at `now`. (Counted
        from 0, a frame the parser holds the start of would have timed out at once.)"""
        self._last_data = now
        for frame in frames:
            self.receive_frame(frame, now)

    def receive_frame(self, item: MsrpRequest | MsrpResponse | FrameError, now: float) -> None:
        """A frame parsed elsewhere (the listener reads the first one to find the session)."""
        if isinstance(item, FrameError):
            self._frame_error(item)
        elif isinstance(item, MsrpResponse):
            self._response(item, now)
        else:
            self._request(item, now)

    def connection_lost(self, reason: str) -> None:
        """The connection is gone: every message still in flight fails with `reason`."""
        error = self.parser.eof()
        if error is not None:
            reason = f"{reason}; {error.detail}"
        self._close(reason)

    def close(self, reason: str = "closed") -> None:
        """We end the session: nothing more goes out; unfinished messages fail."""
        self._close(reason)

    def _close(self, reason: str) -> None:
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        for message in list(self._messages.values()):
            if not message.finished:
                self._fail(message, None, reason)
        for incoming in self._incoming.values():
            self._events.append(MessageAborted(incoming.message_id, reason))
        self._incoming.clear()
        self._queue.clear()
        self._transactions.clear()
        self._timeouts.clear()

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def events(self) -> Iterator[Event]:
        while self._events:
            yield self._events.popleft()

    def take_events(self) -> deque[Event]:
        """All the events so far at once (what `events` would give), in order."""
        events = self._events
        self._events = deque()
        return events

    # -- time ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        timeouts = self._timeouts
        while timeouts and timeouts[0].done:
            timeouts.popleft()
        deadline = timeouts[0].deadline if timeouts else None
        reports = self._reports_due
        while reports and reports[0].finished:
            reports.popleft()
        if reports:
            report = reports[0].report_deadline
            assert report is not None
            deadline = report if deadline is None else min(deadline, report)
        if self.parser.in_frame and self.closed_reason is None:
            frame = self._last_data + self.frame_timeout
            deadline = frame if deadline is None else min(deadline, frame)
        return deadline

    def handle_timers(self, now: float) -> None:
        while self._timeouts and (self._timeouts[0].done or self._timeouts[0].deadline <= now):
            transaction = self._timeouts.popleft()
            if transaction.done:
                continue
            transaction.done = True
            self._transactions.pop(transaction.transaction_id, None)
            if transaction.expects_response and not transaction.message.finished:
                self._fail(transaction.message, 408,
                           f"no response to the chunk at bytes {transaction.start}-"
                           f"{transaction.end} within {self.transaction_timeout:g} s")
        while self._reports_due and (self._reports_due[0].finished or
                                     (self._reports_due[0].report_deadline or 0) <= now):
            message = self._reports_due.popleft()
            if not message.finished:
                self._fail(message, 408, f"no success report within {self.report_timeout:g} s")
        if self.parser.in_frame and self.closed_reason is None and \
                now >= self._last_data + self.frame_timeout:
            reason = (f"the peer stopped in the middle of a frame for "
                      f"{self.frame_timeout:g} s")
            self._events.append(ConnectionFailed(reason))
            self._close(reason)

    # -- outcome of our messages ---------------------------------------------------------

    def _forget(self, message: OutgoingMessage) -> None:
        message.finished = True
        self._messages.pop(message.message_id, None)
        self._recent[message.message_id] = message
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    def _fail(self, message: OutgoingMessage, code: int | None, reason: str) -> None:
        if message.finished and not message.delivered:
            return
        message.delivered = False
        if message in self._queue:
            self._queue.remove(message)
        self._tell(message, MessageFailed(message.message_id, code, reason))
        self._forget(message)

    def _all_answered(self, message: OutgoingMessage, now: float) -> None:
        """Every chunk is out and answered (or needs no answer)."""
        if message.success_report:
            message.report_deadline = now + self.report_timeout
            self._reports_due.append(message)
            self._tell(message, MessageAnswered(message.message_id))
        elif message.failure_report == "yes":
            message.delivered = True
            self._tell(message, MessageDelivered(message.message_id))
            self._forget(message)
        else:
            self._forget(message)  # partial / no: only failures would be told

    def _response(self, response: MsrpResponse, now: float) -> None:
        transaction = self._transactions.pop(response.transaction_id, None)
        if transaction is None:
            self._events.append(UnmatchedResponse(response))
            return
        self._answered(transaction, response.code, response.comment, now)

    def _answered(self, transaction: _Transaction, code: int, comment: str, now: float) -> None:
        transaction.done = True
        message = transaction.message
        if transaction.transaction_id == self._bind_tid and code == 200 and not self.bound:
            self.bound = True
            self._events.append(SessionBound())
        if not transaction.expects_response or message.finished:
            if code != 200 and not message.finished:
                self._fail(message, code, comment or f"{code}")
            return
        message.outstanding -= 1
        if code != 200:
            self._fail(message, code, comment or f"{code} response")
            return
        if message.all_sent and message.outstanding == 0:
            self._all_answered(message, now)

    def _report(self, request: MsrpRequest) -> None:
        try:
            message_id = request.message_id
            status = request.status
            byte_range = request.byte_range
        except MsrpParseError as exc:
            self._events.append(ProtocolError(f"bad REPORT: {exc.detail}"))
            return
        if message_id is None or status is None:
            self._events.append(ProtocolError("REPORT without Message-ID or Status"))
            return
        message = self._messages.get(message_id) or self._recent.get(message_id)
        if message is None:
            self._events.append(ProtocolError(f"REPORT for unknown message {message_id}"))
            return
        self._events.append(ReportReceived(message_id, status, byte_range))
        if status.code != 200:
            if not message.finished or message.delivered:
                self._fail(message, status.code, status.comment or f"REPORT {status.code}")
            return
        if message.finished:
            return
        first = byte_range.start if byte_range else 1
        last = (byte_range.end if byte_range and byte_range.end is not None else message.size)
        if message.success_report and message.add_success_range(first, last):
            message.delivered = True
            self._events.append(MessageDelivered(message_id, 200, status.comment, by_report=True))
            self._forget(message)

    # -- incoming requests -----------------------------------------------------------------

    def _frame_error(self, error: FrameError) -> None:
        if error.fatal:
            self._events.append(ConnectionFailed(f"unusable MSRP input: {error.detail}"))
            self._close(f"unusable MSRP input: {error.detail}")
            return
        self._events.append(ProtocolError(error.detail, error.status))
        head = error.head
        if isinstance(head, MsrpRequest) and head.method != "REPORT":
            self._answer(head, error.status, error.detail, check_reports=False)
            if error.status == 413:
                self._abort_incoming(head, error.detail)

    def _answer(self, request: MsrpRequest, code: int, comment: str | None = None, *,
                check_reports: bool = True) -> None:
        """Queues the response to `request` if its Failure-Report wants one."""
        if check_reports:
            try:
                failure_report = request.failure_report
            except MsrpParseError:
                failure_report = "yes"
            if failure_report == "no" or (failure_report == "partial" and code == 200):
                return
        paths = self._response_paths(request)
        if paths is None:
            self._events.append(ProtocolError(
                f"cannot answer {request.method} {request.transaction_id} ({code}): "
                f"no usable From-Path"))
            return
        comment = comment.replace("\r", " ").replace("\n", " ") if comment else \
            REASONS.get(code, "")
        tid = request.transaction_id
        line = f"MSRP {tid} {code:03d} {comment}" if comment else f"MSRP {tid} {code:03d}"
        self._control += f"{line}\r\n{paths}-------{tid}$\r\n".encode()

    def _response_paths(self, request: MsrpRequest) -> str | None:
        """The To-Path and From-Path lines of a response to `request`; None when it has no
        usable From-Path and we know no peer to answer."""
        key = (request.headers.get(h.FROM_PATH), request.headers.get(h.TO_PATH),
               request.method == "SEND")
        paths = self._answer_paths.get(key)
        if paths is None:
            their_path = self._path_of(request, h.FROM_PATH)
            our_path = self._path_of(request, h.TO_PATH)
            if their_path:
                to_path = their_path[:1] if request.method == "SEND" else their_path
            elif self.remote_path:
                to_path = self.remote_path[:1]
            else:
                return None
            from_path = our_path[:1] if our_path else [self.local_uri]
            paths = (f"{h.TO_PATH}: {format_path(to_path)}\r\n"
                     f"{h.FROM_PATH}: {format_path(from_path)}\r\n")
            if their_path:  # the same request paths get the same response paths
                if len(self._answer_paths) >= 64:
                    self._answer_paths.clear()
                self._answer_paths[key] = paths
        return paths

    @staticmethod
    def _path_of(request: MsrpRequest, name: str) -> list[MsrpUri] | None:
        try:
            return request.from_path if name == h.FROM_PATH else request.to_path
        except MsrpParseError:
            return None

    def _request(self, request: MsrpRequest, now: float) -> None:
        if self.closed_reason is not None:
            return
        try:
            to_path = request.to_path
            from_path = request.from_path
        except MsrpParseError as exc:
            self._reject(request, 400, exc.detail)
            return
        if not to_path or not from_path:
            self._reject(request, 400, "To-Path and From-Path are required")
            return
        if len(to_path) != 1 or not self._names_us(to_path[0]):
            self._reject(request, 481, f"To-Path {' '.join(map(str, to_path))} is not "
                                       f"this session ({self.local_uri})")
            return
        if self.remote_path and from_path[-1].session_id != self.remote_path[-1].session_id:
            self._reject(request, 481, f"From-Path {from_path[-1]} is not the peer of this "
                                       f"session ({self.remote_path[-1]})")
            return
        if not self.bound:
            self.bound = True
            self._events.append(SessionBound(from_path))
        if request.method == "SEND":
            if self._fast_paths is None:
                self._learn_paths(request, from_path)
            self._send(request, from_path)
        elif request.method == "REPORT":
            self._report(request)
        elif request.method == "AUTH":
            self._reject(request, 403, "this endpoint is not a relay")
        else:
            self._reject(request, 501, f"method {request.method} not understood")

    def _names_us(self, uri: MsrpUri) -> bool:
        """Whether a request's To-Path is this session. RFC 4975 §6.1 compares whole URIs; we
        compare the session-id (our unguessable secret, by which the listener already routed
        the connection) and the scheme, as RFC 6714's session matching and python-sipsimple
        do: a middlebox that rewrote our a=path's host or port (a SIP ALG, an SBC) does not
        cut the session."""
        local = self.local_uri
        return uri.session_id == local.session_id and uri.secure == local.secure

    def _learn_paths(self, request: MsrpRequest, from_path: list[MsrpUri]) -> None:
        """A SEND passed the path checks: the next ones with the same To-Path and From-Path
        can be read by `_fast_frames`."""
        to_text, from_text = request.headers.get(h.TO_PATH), request.headers.get(h.FROM_PATH)
        paths = self._response_paths(request)
        if to_text is None or from_text is None or paths is None:
            return
        try:
            self._fast_paths = (to_text.encode("ascii"), from_text.encode("ascii"),
                                list(from_path), f" 200 OK\r\n{paths}-------".encode("ascii"),
                                to_text, from_text)
        except UnicodeEncodeError:
            return

    def _reject(self, request: MsrpRequest, code: int, detail: str) -> None:
        self._events.append(ProtocolError(detail, code))
        if request.method != "REPORT":
            self._answer(request, code, detail)

    def _send(self, request: MsrpRequest, from_path: list[MsrpUri]) -> None:
        try:
            message_id = request.message_id
            byte_range = request.byte_range
            success_report = request.success_report
            request.failure_report  # noqa: B018 - validates it
            content_type = request.content_type
        except MsrpParseError as exc:
            self._reject(request, 400, exc.detail)
            return
        if message_id is None:
            self._reject(request, 400, "SEND without Message-ID")
            return
        body = request.body or b""
        flag = request.continuation
        if byte_range is None:
            byte_range = ByteRange(1, len(body), len(body) if flag == "$" else None)
        detail = self._range_lie(byte_range, len(body), flag)
        if detail is not None:
            self._reject(request, 400, detail)
            return
        refused = self._refused.get(message_id)
        if refused is not None:
            self._answer(request, *refused)  # the owner gave this message up
            return
        if message_id in self._finished_incoming:
            self._answer(request, 200)  # a duplicate chunk of a message already handed over
            return
        incoming = self._incoming.get(message_id)
        if incoming is None:
            if not body and flag == "$" and byte_range.start == 1 and content_type is None:
                # An empty SEND without a type: binding, or a keep-alive. One with a
                # Content-Type is a message of zero octets (RFC 4975 allows it: an empty file).
                self._answer(request, 200)
                return
            if len(self._incoming) >= MAX_OPEN_INCOMING:
                self._reject(request, 413, f"more than {MAX_OPEN_INCOMING} unfinished messages")
                return
            if content_type is not None and self.accept_types and \
                    not media_type_matches(content_type, self.accept_types):
                self._reject(request, 415, f"{content_type} is not among the accepted types "
                                           f"{' '.join(self.accept_types)}")
                return
            if byte_range.start == 1 and body and content_type is None:
                self._reject(request, 400, "SEND with a body needs a Content-Type")
                return
            length = len(body)
            if flag == "$" and byte_range.start == 1 and byte_range.total in (None, length) \
                    and (self.max_message_size is None or length <= self.max_message_size):
                # the whole message in one chunk (a chat message): nothing to put together
                self._answer(request, 200)
                if self.deliver_chunks:
                    self._events.append(ChunkReceived(message_id, 1, body, length,
                                                      content_type, request.headers))
                self._complete(message_id, length, content_type, body, request.headers,
                               from_path, success_report)
                return
            incoming = IncomingMessage(message_id, self.max_message_size,
                                       keep_data=not self.deliver_chunks)
            self._incoming[message_id] = incoming
        if flag == "#":
            self._answer(request, 200)
            self._abort_incoming(request, "aborted by the sender")
            return
        try:
            incoming.add(byte_range.start, body, byte_range.total, flag == "$", content_type,
                         request.headers)
        except MsrpParseError as exc:
            self._reject(request, exc.status, exc.detail)
            self._abort_incoming(request, exc.detail)
            return
        self._answer(request, 200)
        if self.deliver_chunks and (body or incoming.expected_size == 0):
            self._events.append(ChunkReceived(message_id, byte_range.start, body,
                                              incoming.expected_size, incoming.content_type,
                                              request.headers))
        if incoming.complete:
            del self._incoming[message_id]
            self._complete(message_id, incoming.expected_size or 0, incoming.content_type,
                           b"" if self.deliver_chunks else incoming.body(), incoming.headers,
                           from_path, success_report)

    def _complete(self, message_id: str, size: int, content_type: str | None, body: bytes,
                  headers: Headers, from_path: list[MsrpUri], success_report: bool) -> None:
        """An incoming message has all its chunks (`body`: all of it, unless they were
        handed over one by one)."""
        self._finished_incoming[message_id] = None
        while len(self._finished_incoming) > _RECENT:
            self._finished_incoming.popitem(last=False)
        if not self.deliver_chunks:
            self._events.append(MessageReceived(message_id, content_type, body, headers,
                                                from_path))
        if success_report and self.owner_confirms:
            self._unconfirmed[message_id] = (from_path, size)
            while len(self._unconfirmed) > _RECENT:
                self._unconfirmed.popitem(last=False)
        elif success_report:
            self._send_report(from_path, message_id, size, Status(200, "OK"))

    @staticmethod
    def _range_lie(byte_range: ByteRange, length: int, flag: str) -> str | None:
        """Why the Byte-Range cannot describe a chunk of `length` bytes, or None."""
        if byte_range.end is not None:
            declared = byte_range.end - byte_range.start + 1
            if length > declared or (flag == "$" and length != declared):
                return (f"Byte-Range {byte_range} says {declared} bytes, "
                        f"the chunk has {length}")
        if byte_range.total is not None and byte_range.start + length - 1 > byte_range.total:
            return f"Byte-Range {byte_range}: the chunk's {length} bytes pass the total"
        return None

    def _abort_incoming(self, request: MsrpRequest, reason: str) -> None:
        try:
            message_id = request.message_id
        except MsrpParseError:
            return
        if message_id is not None and self._incoming.pop(message_id, None) is not None:
            self._finished_incoming[message_id] = None
            self._events.append(MessageAborted(message_id, reason))

    def _send_report(self, from_path: list[MsrpUri], message_id: str, size: int,
                     status: Status) -> None:
        report = MsrpRequest(new_transaction_id(), "REPORT")
        report.headers.add(h.TO_PATH, " ".join(map(str, from_path)))
        report.headers.add(h.FROM_PATH, str(self.local_uri))
        report.headers.add(h.MESSAGE_ID, message_id)
        report.headers.add(h.BYTE_RANGE, str(ByteRange(1, size, size)))
        report.headers.add(h.STATUS, str(status))
        self._control += report.serialize()
