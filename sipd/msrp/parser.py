"""Incremental MSRP framing (RFC 4975 §7.1, §9): bytes in as they arrive, frames out.

    parser = FrameParser()
    for item in parser.feed(data):        # any split, several frames at once
        if isinstance(item, FrameError): ...   # answer item.status, or close when item.fatal
        else: ...                              # an MsrpRequest or MsrpResponse

A frame ends at its end-line, `-------` + its transaction-id + one of `$+#`; the body may hold
CRLFs and end-line look-alikes of other transactions. Input that breaks the rules but still
shows its transaction-id is skipped up to its end-line and comes out as a FrameError to answer
(400; 413 for a chunk past `max_chunk_bytes`, whose body is dropped while it streams past).
When a Byte-Range with a numeric end says where the body stops and an end-line of another
transaction stands exactly there, the frame ends there with a 400 ("end-line does not match"),
so a peer that got its end-line wrong is answered instead of having its next frames swallowed.
Input without a usable first line cannot be resynchronised: a fatal FrameError, after which
the parser takes nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import headers as h
from .errors import MsrpParseError
from .headers import Headers
from .message import MsrpRequest, MsrpResponse

Frame = MsrpRequest | MsrpResponse

_METHOD = re.compile(r"[A-Z]+")
_CODE = re.compile(r"\d{3}")
_IDENT_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-+%=")
_FLAGS = b"$+#"
_PREFIX = b"MSRP "
_MAX_FIRST_LINE = 1024
# Header names as we spell them, by their bytes: a name seen this way needs no syntax check.
_KNOWN_NAMES = {name.encode("ascii"): name for name in (
    h.TO_PATH, h.FROM_PATH, h.MESSAGE_ID, h.BYTE_RANGE, h.SUCCESS_REPORT, h.FAILURE_REPORT,
    h.STATUS, h.CONTENT_TYPE, h.USE_PATH, h.EXPIRES, h.MIN_EXPIRES, h.MAX_EXPIRES,
    h.WWW_AUTHENTICATE, h.AUTHORIZATION, h.AUTHENTICATION_INFO)}
_KNOWN_TEXT = {name: name for name in _KNOWN_NAMES.values()}
# The usual frame's whole head in one match (the fast path, `_fast_head`): the first line of a
# request or a response, well-formed header lines, then the blank line before a request's
# body or the frame's own end-line. Anything else (blank lines before the frame, a header line
# that is not `name:value`, a bare CR or LF, another transaction's end-line...) does not match
# and goes the line by line way, which says what is wrong.
_HEAD = re.compile(
    rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{0,63}) (?:([A-Z]+)|(\d{3})(?: ([^\r\n]*))?)\r\n"
    rb"((?:[A-Za-z][A-Za-z0-9!#$%&'*+\-.^_`|~]*:[^\r\n]*\r\n)*)"
    rb"(?:(\r\n)|-------\1([$+#])\r\n)")
_STREAM_FROM = 32 * 1024  # a body's declared length from which it streams (`_pieces`)
# A streaming body's read shorter than this has what is held searched at once: a slow link's
# reads are short, and a peer on one that cut a chunk short goes on at once, not in 16 MiB.
_SEARCH_BELOW = 16 * 1024
# A streaming body whose pieces come under this on average (a peer's tiny reads) goes back to
# the buffer: a piece costs some 40 bytes besides its own, and a search with its seam.
_PIECE_AVERAGE = 512
_SHORT_BODY = 4096  # bytes after a head, up to which `_fast_head` looks for any end-line
_HEADER_LINE = re.compile(r"([^:]+):([^\r]*)\r\n")  # of a head _HEAD took


@dataclass
class FrameError:
    """A frame that cannot be used. `status` is the response it deserves (400, 413);
    `head` is the frame's first line and headers as far as they could be read (to build that
    response), None when not even that; `fatal`: the connection cannot go on."""

    detail: str
    status: int = 400
    transaction_id: str | None = None
    head: Frame | None = None
    fatal: bool = False


class _State:
    START, HEADERS, BODY, DEAD = range(4)


class FrameParser:
    def __init__(self, *, max_header_bytes: int = 16384,
                 max_chunk_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_chunk_bytes = max_chunk_bytes
        self._buf = bytearray()
        self._state = _State.START
        self._reset_frame()

    def _reset_frame(self) -> None:
        self._frame: Frame | None = None
        self._tid = ""
        self._end_pattern = b""
        self._frame_start = 0
        self._body_start = 0
        self._scan_from = 0
        self._declared_length: int | None = None
        self._error: tuple[str, int] | None = None
        self._dropped = 0  # body bytes dropped while skipping
        self._pieces: list[bytes | memoryview] | None = None  # a streaming body (below)
        self._held = 0
        self._searched = 0  # pieces searched for the end-line
        self._first: tuple[bytes | bytearray, int] = (b"", 0)  # the read of the first piece
        self._head_unsearched = False  # `_fast_head` left a long read's body to stream unsearched
        self._unstreamed = False  # the body went back to the buffer: it stays there

    @property
    def in_frame(self) -> bool:
        """True while part of a frame has arrived and its end has not."""
        state = self._state
        if state == _State.HEADERS or state == _State.BODY:
            return True
        buf = self._buf
        return state == _State.START and bool(buf) and bool(buf.strip(b"\r\n"))

    @property
    def idle(self) -> bool:
        """True between frames with nothing held: the next bytes start a frame."""
        return self._state == _State.START and not self._buf

    def eof(self) -> FrameError | None:
        """The connection closed: an error describing the unfinished frame, if there is one."""
        if not self.in_frame:
            return None
        where = f"transaction {self._tid}" if self._tid else "a frame"
        detail = f"connection closed in the middle of {where}"
        if self._state == _State.BODY:
            received = self._held if self._pieces is not None else \
                len(self._buf) - self._body_start + self._dropped
            detail += f" ({received} body bytes received, no end-line)"
        self._state = _State.DEAD
        return FrameError(detail, 400, self._tid or None, self._frame, fatal=True)

    def feed(self, data: bytes | bytearray) -> list[Frame | FrameError]:
        if self._state == _State.DEAD:
            return []
        out: list[Frame | FrameError] = []
        start = 0
        if self._pieces is not None:
            start = self._stream_body(data, out)
            if start < 0:
                return out
        if isinstance(data, bytes) and not self._buf and self._state == _State.START:
            start = self._direct(data, start, out)
            if start < 0:
                return out
        if start:
            with memoryview(data) as view:
                self._buf += view[start:]
        else:
            self._buf += data
        pos = 0
        while True:
            if self._state == _State.START:
                if pos == len(self._buf):
                    break  # everything taken: the usual end of a feed
                match = _HEAD.match(self._buf, pos)
                if match is not None:
                    end = self._fast_head(match, out)
                    if end >= 0:
                        pos = end
                        continue
                pos, done = self._start(pos, out)
            elif self._state == _State.HEADERS:
                pos, done = self._headers(pos, out)
            elif self._state == _State.BODY:
                pos, done = self._body(pos, out)
            else:
                self._buf.clear()
                return out
            if done:
                break
        if pos:
            del self._buf[:pos]
            self._shift(pos)
        if self._state == _State.BODY:
            self._start_stream(self._buf, self._body_start, True)
        return out

    # -- a long body, streaming --------------------------------------------------------------
    # A chunk's body past _STREAM_FROM bytes, with a Byte-Range saying its length and nothing
    # wrong so far, is not gathered in the buffer: the reads are kept as they came (`_pieces`)
    # and joined once when the end-line comes: one copy of the body. The reads are not searched
    # for the end-line: the frame ends where the Byte-Range says, and only the end-line's place
    # is checked. Two things would have it end sooner, and both go back to the search: an
    # end-line anywhere else (an interrupted chunk, a look-alike, an end-line across reads, a
    # body longer than its Byte-Range) is found when the body's place does not hold it; and a
    # read that ends with CRLF, the end of a frame, or a short one (a slow link's) has the
    # pieces not searched yet searched for it (a sender that interrupted a chunk may wait for
    # its answer: it must not wait for bytes that never come; on a slow link its next chunks
    # must not wait for the place of the first). Each byte is searched once at most. Tiny
    # reads (under _PIECE_AVERAGE bytes on average) go back too. Going back puts the bytes in
    # the buffer, where the reading byte by byte above carries on from the first byte not
    # searched, for the rest of that body (each going back copies all the body held so far: a
    # peer sending a short read after each long one would else have the parser copy its whole
    # body again and again).

    def _start_stream(self, buf: bytes | bytearray, body_start: int, owned: bool) -> bool:
        """Streams the body from `buf[body_start:]` when it qualifies (`owned`: buf is the
        parser's own buffer, given away to the pieces)."""
        length = self._declared_length
        pattern = self._end_pattern
        held = len(buf) - body_start
        # whether the general reading searched the first piece; only `_fast_head` leaves one
        # unsearched (a long read not ending a frame), any other stays in the buffer: the
        # reading there goes on from where it stopped (a look-alike, an end-line cut short)
        searched = self._scan_from >= len(buf) - len(pattern) + 1
        if length is None or length < _STREAM_FROM or self._error is not None or \
                self._unstreamed or held < len(pattern) or \
                held > length or length > self.max_chunk_bytes or \
                not (searched or self._head_unsearched):
            return False
        self._pieces = [memoryview(buf)[body_start:]]
        self._searched = int(searched)
        self._first = (buf, body_start)
        self._held = held
        if owned:
            self._buf = bytearray()
        return True

    def _stream_body(self, data: bytes | bytearray, out: list[Frame | FrameError]) -> int:
        """The next read of a streaming body: -1 when it was all body, else where the bytes
        after the frame start in `data` (the frame out), or where the bytes not yet in the
        buffer start (the body back in it: 0, or all of `data`)."""
        pieces = self._pieces
        assert pieces is not None
        length = self._declared_length
        assert length is not None
        n = len(data)
        if n == 0:
            return -1
        end = length - self._held  # where the body ends in `data`
        if n <= end:  # all body, as far as the Byte-Range tells
            if isinstance(data, bytearray):
                data = bytes(data)
            pieces.append(data)
            self._held += n
            # tiny reads go back to the buffer, which holds them for less (a piece: ~40 bytes)
            tiny = n < _PIECE_AVERAGE and len(pieces) * _PIECE_AVERAGE > self._held + _STREAM_FROM
            if not tiny and ((n >= _SEARCH_BELOW and data[-2:] != b"\r\n") or
                             not self._end_line_held()):
                return -1
        else:
            pattern = self._end_pattern
            after = end + len(pattern)
            if n >= after + 3 and data[after] in _FLAGS and \
                    data[after + 1:after + 3] == b"\r\n" and data[end:after] == pattern:
                pieces.append(memoryview(data)[:end])
                body = b"".join(pieces)
                for piece in pieces:
                    if isinstance(piece, memoryview):
                        piece.release()
                self._pieces = None
                self._finish(body, chr(data[after]), out)
                return after + 3
        self._unstream()
        return 0 if n > end else n  # else `data` is in the buffer already

    def _end_line_held(self) -> bool:
        """Whether the pieces not searched yet hold the end-line (or the seams between them);
        they count as searched when they do not."""
        pieces = self._pieces
        assert pieces is not None
        pattern = self._end_pattern
        overlap = len(pattern) - 1
        # the last bytes before the first piece not searched, from as many pieces as they
        # take: an end-line may run over reads shorter than itself
        tail = b""
        index = self._searched
        while index > 0 and len(tail) < overlap:
            index -= 1
            tail = bytes(pieces[index][len(tail) - overlap:]) + tail
        for index in range(self._searched, len(pieces)):
            piece = pieces[index]
            if index == 0:  # a view of the read it came in: searched there, not copied
                buf, start = self._first
                if buf.find(pattern, start) >= 0:
                    return True
            else:
                assert isinstance(piece, bytes)  # only the first piece is a view
                if pattern in tail + piece[:overlap] or pattern in piece:
                    return True
            tail = (tail + bytes(piece[-overlap:]))[-overlap:]
        self._searched = len(pieces)
        return False

    def _unstream(self) -> None:
        """The streamed body back in the buffer, the search resuming at the first piece not
        searched (and the seam before it)."""
        pieces = self._pieces
        assert pieces is not None
        buf = bytearray()
        searched = 0
        for index, piece in enumerate(pieces):
            if index < self._searched:
                searched += len(piece)
            buf += piece
            if isinstance(piece, memoryview):
                piece.release()
        self._pieces = None
        self._first = (b"", 0)  # the read it came in, no longer held for the body's time
        self._unstreamed = True
        self._buf = buf
        self._frame_start = 0
        self._body_start = 0
        self._scan_from = max(0, searched - len(self._end_pattern) + 1)

    def _direct(self, data: bytes, pos: int, out: list[Frame | FrameError]) -> int:
        """Frames read straight from `data` while the parser holds nothing: -1 when all of it
        was taken (the last frame's body maybe streaming), else where the rest starts."""
        while pos < len(data):
            match = _HEAD.match(data, pos)
            if match is None:
                return pos
            end = self._fast_head(match, out, data)
            if end < 0:
                return pos
            if self._state == _State.BODY:
                if self._start_stream(data, end, False):
                    return -1
                self._shift(pos)  # the frame's bytes from `pos` on go to the buffer
                return pos
            pos = end
        return -1

    def _shift(self, pos: int) -> None:
        """The frame's offsets, for bytes from `pos` on now standing at 0."""
        self._frame_start -= pos
        self._body_start -= pos
        self._scan_from = max(0, self._scan_from - pos)

    # -- first line ------------------------------------------------------------------------

    def _fatal(self, detail: str, out: list[Frame | FrameError]) -> tuple[int, bool]:
        self._state = _State.DEAD
        out.append(FrameError(detail, 400, None, None, fatal=True))
        return len(self._buf), True

    def _start(self, pos: int, out: list[Frame | FrameError]) -> tuple[int, bool]:
        buf = self._buf
        while pos < len(buf) and buf[pos] in b"\r\n":  # blank lines between frames
            pos += 1
        available = len(buf) - pos
        if available == 0:
            return pos, True
        if not buf.startswith(_PREFIX, pos) and \
                not _PREFIX.startswith(bytes(buf[pos:pos + len(_PREFIX)])):
            return self._fatal(f"not MSRP: the data starts with {bytes(buf[pos:pos + 20])!r}", out)
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if available > _MAX_FIRST_LINE:
                return self._fatal(f"first line longer than {_MAX_FIRST_LINE} bytes", out)
            return pos, True
        try:
            line = buf[pos:eol].decode("utf-8")  # a response's comment is UTF-8 text
        except UnicodeDecodeError:
            return self._fatal("first line is not UTF-8", out)
        parts = line.split(" ", 3)
        if len(parts) < 3 or not h.is_ident(parts[1]):
            return self._fatal(f"bad first line {line[:80]!r} (expected 'MSRP <transaction-id> "
                               f"<method or status>')", out)
        self._reset_frame()
        self._tid = parts[1]
        self._end_pattern = b"\r\n-------" + self._tid.encode("ascii")
        self._frame_start = pos
        what = parts[2]
        if _CODE.fullmatch(what):
            comment = parts[3] if len(parts) > 3 else ""
            self._frame = MsrpResponse(self._tid, int(what), comment)
        elif _METHOD.fullmatch(what) and len(parts) == 3:
            self._frame = MsrpRequest(self._tid, what)
        else:
            self._frame = MsrpRequest(self._tid, what if _METHOD.fullmatch(what) else "?")
            self._error = (f"bad first line {line[:80]!r}", 400)
        self._state = _State.HEADERS
        return eol + 2, False

    def _fast_head(self, match: re.Match[bytes], out: list[Frame | FrameError],
                   buf: bytes | bytearray | None = None) -> int:
        """A frame whose head `_HEAD` matched: the frame out when its body is there too (the
        usual chat message or response), else the parser in the state the line by line
        reading would have left it in, at its body. -1, having changed nothing, for what the
        line by line reading must look at (not UTF-8, a head near the size limit, a response
        with a body)."""
        start, head_end = match.span()
        if head_end - start > self.max_header_bytes:
            return -1
        method, code, blank = match.group(2, 3, 6)
        if blank is not None and method is None:
            return -1  # a response with a blank line: the line by line reading
        raw = match.group(5)
        try:
            items = [(name, value.strip()) for name, value in
                     _HEADER_LINE.findall(raw.decode("utf-8"))] if raw else []
            comment = match.group(4)
            comment_text = comment.decode("utf-8") if comment else ""
        except UnicodeDecodeError:
            return -1
        tid = match.group(1).decode("ascii")
        headers = Headers(items)
        if blank is None:  # the end-line right after the headers: no body
            frame: Frame = (MsrpRequest(tid, method.decode("ascii"), headers, None,
                                        chr(match.group(7)[0])) if method is not None
                            else MsrpResponse(tid, int(code), comment_text, headers))
            out.append(frame)
            return head_end
        request = MsrpRequest(tid, method.decode("ascii"), headers)
        if buf is None:
            buf = self._buf
        pattern = b"\r\n-------" + match.group(1)
        unsearched = False
        # a long read: look where the Byte-Range says
        length = _explicit_length(headers) if len(buf) - head_end >= _SEARCH_BELOW else None
        if length is not None and length <= self.max_chunk_bytes:
            place = head_end + length
            after = place + len(pattern)
            if len(buf) >= after + 3:  # all here: the end-line there ends it
                if buf[after] in _FLAGS and buf[after + 1:after + 3] == b"\r\n" and \
                        buf.startswith(pattern, place):
                    request.body = _copy(buf, head_end, place)
                    request.continuation = chr(buf[after])
                    out.append(request)
                    return after + 3
            elif length >= _STREAM_FROM and buf[-2:] != b"\r\n" and \
                    not buf.startswith(pattern, head_end - 2):  # not an empty body
                unsearched = True  # it streams: searched only if need be (below)
        # Our end-line, an empty body putting it at the blank line. Over a short rest (a chat
        # message) the first end-line of any transaction is found faster, a short needle, and
        # must be ours, else the body scan below; over a long one our whole end-line is.
        short = len(buf) - head_end <= _SHORT_BODY
        index = -1 if unsearched else \
            buf.find(b"\r\n-------" if short else pattern, head_end - 2)
        if index >= 0 and (not short or buf.startswith(pattern, index)):
            if index - head_end > self.max_chunk_bytes:
                return -1  # too big a chunk, whole in one read: the line by line reading's 413
            after = index + len(pattern)
            if len(buf) >= after + 3 and buf[after] in _FLAGS and \
                    buf[after + 1:after + 3] == b"\r\n":
                request.body = _copy(buf, head_end, index)
                request.continuation = chr(buf[after])
                out.append(request)
                return after + 3
        # The body is not all there (or holds look-alikes of the end-line): on as the line by
        # line reading would have gone, the body scan resuming where this one stopped.
        self._reset_frame()
        self._frame = request
        self._tid = tid
        self._end_pattern = pattern
        self._frame_start = start
        self._body_start = head_end
        self._head_unsearched = unsearched
        self._scan_from = index if index >= 0 else head_end - 2 if unsearched else \
            max(head_end - 2, len(buf) - (8 if short else len(pattern) - 1))
        self._declared_length = length if length is not None else self._length_from_range()
        self._state = _State.BODY
        return head_end

    # -- headers ---------------------------------------------------------------------------

    def _headers(self, pos: int, out: list[Frame | FrameError]) -> tuple[int, bool]:
        buf = self._buf
        frame = self._frame
        assert frame is not None
        if self._error is None:
            done = self._whole_head(pos, out)
            if done is not None:
                return done
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - self._frame_start > self.max_header_bytes:
                    return self._skip_oversized_head(pos)
                return pos, True
            if eol - self._frame_start > self.max_header_bytes:
                return self._skip_oversized_head(pos)
            line = bytes(buf[pos:eol])
            if not line:
                self._state = _State.BODY
                self._body_start = eol + 2
                self._scan_from = eol  # an empty body may put the end-line right here
                self._declared_length = self._length_from_range()
                return eol + 2, False
            if line.startswith(b"-------"):
                return self._end_line_in_head(line, eol, out)
            self._header_line(line, frame.headers)
            pos = eol + 2

    def _whole_head(self, pos: int, out: list[Frame | FrameError]) -> tuple[int, bool] | None:
        """The header lines at once when all of them (and the blank line or end-line after
        them) have arrived, are UTF-8 and well formed, the usual frame: one decode and split
        instead of a look per line. None, having changed nothing, leaves the frame to the line
        by line reading, which waits for more or says what is wrong."""
        buf = self._buf
        limit = min(len(buf), self._frame_start + self.max_header_bytes + 2)
        start = pos - 2  # the CRLF ending the first line: an empty header block counts
        # Whichever comes first, the blank line or an end-line; each search stops where the
        # other was found (a chunk's body is not scanned for an end-line, nor the frames after
        # a response for a blank line).
        if isinstance(self._frame, MsrpResponse):
            end_line = buf.find(b"\r\n-------", start, limit)
            blank = buf.find(b"\r\n\r\n", start, end_line + 2 if end_line >= 0 else limit)
        else:
            blank = buf.find(b"\r\n\r\n", start, limit)
            end_line = buf.find(b"\r\n-------", start, blank if blank >= 0 else limit)
            if end_line >= 0:
                blank = -1
        if blank >= 0:
            stop = blank
        elif end_line >= 0:
            stop = end_line
            eol = buf.find(b"\r\n", end_line + 2)
            if eol < 0 or eol - self._frame_start > self.max_header_bytes:
                return None
        else:
            return None
        try:
            text = buf[pos:stop].decode("utf-8") if stop > pos else ""
        except UnicodeDecodeError:
            return None
        assert self._frame is not None
        if text:
            known_names = _KNOWN_TEXT
            items = []
            for line in text.split("\r\n"):
                name, colon, value = line.partition(":")
                known = known_names.get(name) if colon else None
                if known is None:
                    if not colon or not h.is_header_name(name):
                        return None
                    known = name
                items.append((known, value.strip()))
            add = self._frame.headers.add
            for name, value in items:
                add(name, value)
        if blank >= 0:
            self._state = _State.BODY
            self._body_start = blank + 4
            self._scan_from = blank + 2  # an empty body may put the end-line right here
            self._declared_length = self._length_from_range()
            return blank + 4, False
        return self._end_line_in_head(bytes(buf[end_line + 2:eol]), eol, out)

    def _skip_oversized_head(self, pos: int) -> tuple[int, bool]:
        if self._error is None:
            self._error = (f"headers larger than {self.max_header_bytes} bytes", 400)
        self._state = _State.BODY
        self._body_start = pos
        self._scan_from = max(pos - 2, 0)
        return pos, False

    def _header_line(self, line: bytes, headers: Headers) -> None:
        raw_name, raw_colon, raw_value = line.partition(b":")
        known = _KNOWN_NAMES.get(raw_name) if raw_colon else None
        if known is not None:
            try:
                headers.add(known, raw_value.decode("utf-8").strip())
            except UnicodeDecodeError:
                self._error = self._error or ("header line is not UTF-8", 400)
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._error = self._error or ("header line is not UTF-8", 400)
            return
        name, colon, value = text.partition(":")
        if not colon or not h.is_header_name(name):
            self._error = self._error or (f"malformed header line {text[:80]!r}", 400)
            return
        headers.add(name, value.strip())

    def _end_line_in_head(self, line: bytes, eol: int,
                          out: list[Frame | FrameError]) -> tuple[int, bool]:
        ident, flag = line[7:-1], line[-1:]
        if ident.decode("ascii", "replace") != self._tid:
            self._error = (f"end-line names transaction {ident.decode('ascii', 'replace')!r}, "
                           f"not {self._tid!r}", 400)
        elif flag not in (b"$", b"+", b"#"):
            self._error = self._error or (f"bad end-line flag {flag!r}", 400)
        self._finish(None, flag.decode("ascii", "replace"), out)
        return eol + 2, False

    def _length_from_range(self) -> int | None:
        assert self._frame is not None
        return _explicit_length(self._frame.headers)

    # -- body ------------------------------------------------------------------------------

    def _body(self, pos: int, out: list[Frame | FrameError]) -> tuple[int, bool]:
        self._head_unsearched = False  # searched from `_scan_from` on, below
        buf = self._buf
        pattern = self._end_pattern
        index = buf.find(pattern, self._scan_from)
        while index >= 0:
            after = index + len(pattern)
            if len(buf) < after + 3:
                self._scan_from = index
                return self._maybe_drop(pos)
            if buf[after] in _FLAGS and buf[after + 1:after + 3] == b"\r\n":
                if index - self._body_start > self.max_chunk_bytes:  # it came whole at once
                    self._error = self._error or (
                        f"chunk larger than {self.max_chunk_bytes} bytes", 413)
                body = _copy(buf, self._body_start, index)
                self._finish(body, chr(buf[after]), out)
                return after + 3, False
            index = buf.find(pattern, index + 1)
        self._scan_from = max(self._scan_from, len(buf) - len(pattern) + 1)
        if self._declared_length is not None:
            mismatch = self._foreign_end_line()
            if mismatch is not None:
                ident, flag, end = mismatch
                body = _copy(buf, self._body_start, end - len(ident) - 12)
                self._error = self._error or (
                    f"end-line names transaction {ident!r}, not {self._tid!r}", 400)
                self._finish(body, flag, out)
                return end, False
        return self._maybe_drop(pos)

    def _foreign_end_line(self) -> tuple[str, str, int] | None:
        """(transaction-id, flag, end offset) of a complete end-line of another transaction
        standing where the Byte-Range says the body ends."""
        assert self._declared_length is not None
        buf = self._buf
        at = self._body_start + self._declared_length
        if len(buf) < at + 9:
            return None
        if buf[at:at + 9] != b"\r\n-------":
            self._declared_length = None  # nothing there: stop looking
            return None
        i = at + 9
        while i < len(buf) and i - at - 9 <= 64 and buf[i] in _IDENT_BYTES:
            i += 1
        if i >= len(buf) or len(buf) < i + 3:
            return None
        if buf[i] not in _FLAGS or buf[i + 1:i + 3] != b"\r\n" or i == at + 9:
            self._declared_length = None
            return None
        return buf[at + 9:i].decode("ascii"), chr(buf[i]), i + 3

    def _maybe_drop(self, pos: int) -> tuple[int, bool]:
        """Past the chunk limit, or skipping a bad frame: forget body bytes as they stream by,
        keeping what could be the start of the end-line."""
        held = len(self._buf) - self._body_start
        if held > self.max_chunk_bytes:
            self._error = self._error or (f"chunk larger than {self.max_chunk_bytes} bytes", 413)
            self._declared_length = None
        if self._error is not None and self._declared_length is None:
            keep_from = max(self._body_start, self._scan_from)
            drop = keep_from - self._body_start
            if drop > 0:
                del self._buf[self._body_start:keep_from]
                self._dropped += drop
                self._scan_from -= drop
        return pos, True

    def _finish(self, body: bytes | None, flag: str, out: list[Frame | FrameError]) -> None:
        frame = self._frame
        assert frame is not None
        if self._error is not None:
            detail, status = self._error
            out.append(FrameError(detail, status, self._tid, frame))
        else:
            if isinstance(frame, MsrpRequest):
                frame.body = body
                frame.continuation = flag
            out.append(frame)
        self._state = _State.START
        self._reset_frame()


def _copy(buf: bytes | bytearray, start: int, stop: int) -> bytes:
    """buf[start:stop] as bytes in one copy (a bytearray slice would copy twice)."""
    if stop <= start:
        return b""
    with memoryview(buf) as view:
        return bytes(view[start:stop])


def _explicit_length(headers: Headers) -> int | None:
    """The body's length a Byte-Range with a numeric end gives, None without one."""
    value = headers.get(h.BYTE_RANGE)
    if value is None:
        return None
    try:
        byte_range = h.parse_byte_range(value)
    except MsrpParseError:
        return None
    if byte_range.end is None:
        return None
    return byte_range.end - byte_range.start + 1
