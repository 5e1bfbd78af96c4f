"""Long bodies, which the parser streams (kept as the reads came, joined once): the frames it
gives are those of the parser that gathers every byte in its buffer, whatever the splits,
look-alikes of the end-line, interrupted chunks and bodies that break their Byte-Range. A frame
may come out some reads later than the gathering parser gives it (a streaming body is searched
for its end-line only where its Byte-Range puts it, or when a read ends with CRLF or is short),
never another frame, and never later than a read that ends with CRLF or is short."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipd.msrp.message import MsrpRequest
from sipd.msrp.parser import FrameError, FrameParser

from .helpers import send_line

EXAMPLES = int(os.environ.get("SIPD_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                derandomize="SIPD_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SIZE = 40 * 1024  # past the size from which a body streams


class _Gathering(FrameParser):
    """The parser that never streams: every body gathered in its buffer."""

    def _start_stream(self, buf, body_start, owned):  # type: ignore[no-untyped-def]
        return False


def _seen(items):  # type: ignore[no-untyped-def]
    out = []
    for item in items:
        if isinstance(item, FrameError):
            out.append(("error", item.detail, item.status, item.transaction_id, item.fatal))
        else:
            out.append((type(item).__name__, item.transaction_id, list(item.headers),
                        getattr(item, "body", None), getattr(item, "continuation", None)))
    return out


def _both(data: bytes, cuts: list[int], *, as_bytearray: bool = False) -> list:  # type: ignore[type-arg]
    streaming, gathering = FrameParser(max_chunk_bytes=3 * SIZE), \
        _Gathering(max_chunk_bytes=3 * SIZE)
    got, expected = [], []
    last = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        piece = data[last:cut]
        got += streaming.feed(bytearray(piece) if as_bytearray else piece)
        expected += gathering.feed(piece)
        assert _seen(got) == _seen(expected)[:len(got)]
        if piece.endswith(b"\r\n") or len(piece) < 16 * 1024 or len(got) == len(expected):
            assert _seen(got) == _seen(expected)
            assert streaming.in_frame == gathering.in_frame
        last = cut
    got += [e for e in [streaming.eof()] if e]
    expected += [e for e in [gathering.eof()] if e]
    assert _seen(got) == _seen(expected)
    return got


def _body(seed: int, size: int = SIZE) -> bytes:
    return bytes((seed * 7 + i * 13) % 251 for i in range(size))


def test_a_long_body_in_many_reads_is_joined_whole():
    body = _body(1)
    data = send_line("st0001", body=body) + send_line("st0002", body=b"after")
    for step in (1000, 4096, 16384, 65536):
        got = _both(data, list(range(step, len(data), step)))
        assert [f.body for f in got] == [body, b"after"]  # type: ignore[union-attr]


def test_every_split_around_the_end_line_and_the_seams():
    body = _body(2)
    data = send_line("st0003", body=body) + send_line("st0004", body=_body(3))
    end = data.index(b"\r\n-------st0003")
    for cut in range(end - 30, end + 30):
        _both(data, [20000, cut])
        _both(data, [cut - 5000, cut])
        _both(data, [cut, cut + 1, cut + 2])


def test_look_alikes_of_the_end_line_across_and_within_reads():
    tricky = (b"\r\n-------st0005x$\r\n\r\n-------st0005\r\n-------st000"
              b"\r\n-------st0005$ \r\n-------st0005%\r\n")
    body = _body(4, SIZE // 2) + tricky + _body(5, SIZE // 2)
    data = send_line("st0005", body=body)
    where = data.index(tricky)
    for cut in range(where - 3, where + len(tricky) + 3):
        got = _both(data, [where - 10000, cut, cut + 7])
        assert got[0].body == body  # type: ignore[union-attr]


def test_an_interrupted_chunk_ends_at_its_end_line_before_its_byte_range():
    body = _body(6)
    head = send_line("st0006", body=body, byte_range=f"1-{2 * SIZE}/{2 * SIZE}", flag="+")
    data = head + send_line("st0007", body=_body(7), byte_range=f"{SIZE + 1}-{2 * SIZE}/*")
    for step in (3000, 30000):
        got = _both(data, list(range(step, len(data), step)))
        assert [(f.body, f.continuation) for f in got] == [  # type: ignore[union-attr]
            (body, "+"), (_body(7), "$")]


def test_an_interrupted_chunk_whose_sender_waits_comes_out_at_once():
    """A sender that cut a chunk short may wait for its answer before it sends more: the read
    that ends with the end-line gives the frame, although its Byte-Range is not reached."""
    body = _body(16)
    data = send_line("st0020", body=body, byte_range=f"1-{2 * SIZE}/{2 * SIZE}", flag="+")
    parser = FrameParser(max_chunk_bytes=3 * SIZE)
    assert parser.feed(data[:20000]) == []
    for split in (len(data) - 5, len(data) - 9):  # the end-line whole in the last read, or not
        parser = FrameParser(max_chunk_bytes=3 * SIZE)
        got = parser.feed(data[:20000]) + parser.feed(data[20000:split]) + \
            parser.feed(data[split:])
        assert [(f.body, f.continuation) for f in got] == [(body, "+")]  # type: ignore[union-attr]
        assert parser.idle


def test_on_a_slow_link_an_interrupted_chunk_comes_out_with_its_end_line():
    """Short reads (a slow link) are searched as they come: the chunk cut short comes out with
    the read that brings its end-line, although the next frame goes on in the same read."""
    body = _body(17)
    first = send_line("st0021", body=body, byte_range=f"1-{3 * SIZE}/{3 * SIZE}", flag="+")
    data = first + send_line("st0022", body=_body(18), byte_range=f"{SIZE + 1}-{2 * SIZE}/*")
    parser = FrameParser(max_chunk_bytes=4 * SIZE)
    got: list = []  # type: ignore[type-arg]
    for at in range(0, len(data), 1001):
        got += parser.feed(data[at:at + 1001])
        if at + 1001 >= len(first):
            break
    assert [(f.body, f.continuation) for f in got] == [(body, "+")]  # type: ignore[union-attr]


def test_an_end_line_over_several_short_reads_is_found():
    """A sender that writes its end-line in pieces (a slow link, small writes): the reads
    that bring it are searched together, not each with the one before only."""
    body = _body(21)
    first = send_line("st0023", body=body, byte_range=f"1-{2 * SIZE}/{2 * SIZE}", flag="+")
    data = first + send_line("st0024", body=_body(22), byte_range=f"{SIZE + 1}-{2 * SIZE}/*")
    end = first.index(b"\r\n-------st0023")
    for cuts in ([20000, end + 3, end + 5, end + 8, end + 40],
                 [20000, end + 1, end + 2, end + 3, end + 4, end + 30],
                 [end + 2, end + 4, end + 9, end + 12, end + 14, end + 20]):
        got = _both(data, cuts)
        assert [(f.body, f.continuation) for f in got][:1] == [(body, "+")]  # type: ignore[union-attr]


def test_an_empty_interrupted_chunk_in_a_long_read():
    """A chunk cut short before its first byte, its end-line right after the blank line (the
    empty body's form), then a long read: the end-line there ends it."""
    head = send_line("st0025", body=None, byte_range=f"1-{SIZE}/{SIZE}", flag="#")
    head = head.replace(b"-------st0025#", b"\r\n-------st0025#")
    data = head + send_line("st0026", body=_body(23))
    for cut in (len(head) + 17000, len(head) + 30000):
        got = _both(data, [cut])
        assert [(f.body, f.continuation) for f in got] == [  # type: ignore[union-attr]
            (b"", "#"), (_body(23), "$")]


def test_a_short_read_with_a_line_of_dashes_gives_its_interrupted_chunk_at_once():
    """A short body with a line of dashes (a look-alike of an end-line) cut short of a long
    Byte-Range, its sender waiting for the answer: the read gives the frame, and a body read
    up to a look-alike or a cut end-line goes on from there, not from after the blank line."""
    body = b"notes\r\n--------------------\r\nmore"
    data = send_line("st0027", body=body, byte_range=f"1-{2 * SIZE}/{2 * SIZE}", flag="+")
    got = FrameParser().feed(data)
    assert [(f.body, f.continuation) for f in got] == [(body, "+")]  # type: ignore[union-attr]
    empty = send_line("st0028", body=None, byte_range=f"1-{SIZE}/{SIZE}", flag="+")
    empty = empty.replace(b"-------st0028+", b"\r\n-------st0028+")
    for cut in range(len(empty) - 20, len(empty)):
        _both(empty + send_line("st0029"), [cut])


def test_a_body_with_a_star_end_streams_not_but_reads_the_same():
    body = _body(8)
    data = send_line("st0008", body=body, byte_range="1-*/*", flag="#")
    got = _both(data, list(range(5000, len(data), 5000)))
    assert got[0].body == body and got[0].continuation == "#"  # type: ignore[union-attr]


def test_a_body_past_its_byte_range_or_another_end_line_in_its_place():
    body = _body(9)
    short = send_line("st0009", body=body, byte_range=f"1-{SIZE - 100}/{SIZE}")
    _both(short, list(range(7000, len(short), 7000)))
    foreign = send_line("st0010", body=body).replace(b"-------st0010$", b"-------zz9999$")
    got = _both(foreign + send_line("st0011"), list(range(7000, len(foreign), 7000)))
    assert isinstance(got[0], FrameError) and got[0].status == 400


def test_too_long_a_chunk_is_413_while_streaming_or_not():
    body = _body(10, 4 * SIZE)
    data = send_line("st0012", body=body, byte_range=f"1-{SIZE}/{4 * SIZE}")
    got = _both(data + send_line("st0013"), list(range(9000, len(data), 9000)))
    assert isinstance(got[0], FrameError) and got[0].status == 413
    assert isinstance(got[1], MsrpRequest) and got[1].body == b"hello"


def test_the_connection_closing_in_a_streaming_body():
    data = send_line("st0014", body=_body(11))
    got = _both(data[:30000], [10000, 20000])
    assert isinstance(got[-1], FrameError) and got[-1].fatal
    assert "body bytes received" in got[-1].detail


def test_reads_as_bytearrays_too():
    body = _body(12)
    data = send_line("st0015", body=body) + send_line("st0016", body=body)
    got = _both(data, list(range(6000, len(data), 6000)), as_bytearray=True)
    assert [f.body for f in got] == [body, body]  # type: ignore[union-attr]


_PIECES = [_body(13, 2000), b"\r\n-------st0017", b"$", b"\r\n", b"\r\n-------st0017$\r\n",
           b"-------", b"\r\n\r\n", b"x", b"MSRP st0018 SEND\r\n"]


@FUZZ
@given(st.lists(st.sampled_from(_PIECES), max_size=6), st.integers(0, 3 * SIZE),
       st.lists(st.integers(0, 3 * SIZE), max_size=8), st.sampled_from("$+#"),
       st.booleans())
def test_streaming_reads_as_gathering(extra, at, cuts, flag, star):
    body = bytearray(_body(14, SIZE))
    position = at % (len(body) + 1)
    body[position:position] = b"".join(extra)
    byte_range = "1-*/*" if star else f"1-{SIZE}/{2 * SIZE}"
    data = send_line("st0017", body=bytes(body), byte_range=byte_range, flag=flag)
    _both(data + send_line("st0018", body=_body(15)), cuts)


class _Counting(FrameParser):
    """The parser, counting how often a streaming body went back to its buffer (a copy of all
    of the body held so far each time)."""

    unstreamed = 0

    def _unstream(self) -> None:
        self.unstreamed += 1
        super()._unstream()


def test_a_body_that_left_streaming_is_not_copied_back_again_and_again():
    # A look-alike of the end-line in a read that ends with CRLF puts the body back in the
    # buffer; short reads and long ones after it used to stream it anew and put it back again
    # (quadratic in the body's length): it stays in the buffer.
    lookalike = b"\r\n-------st0019x\r\n"
    body = _body(16, SIZE) + lookalike + _body(17, 7 * SIZE)
    data = send_line("st0019", body=body) + send_line("st0020")
    parser = _Counting(max_chunk_bytes=16 * SIZE)
    pos = data.index(lookalike) + len(lookalike)
    got = parser.feed(data[:20000]) + parser.feed(data[20000:pos])
    assert parser.unstreamed == 1
    while pos < len(data):
        got += parser.feed(data[pos:pos + 200])
        got += parser.feed(data[pos + 200:pos + 201])
        pos += 201
    assert [f.body for f in got] == [body, b"hello"]  # type: ignore[union-attr]
    assert parser.unstreamed == 1


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2 * SIZE), st.booleans()), min_size=1, max_size=3),
       st.lists(st.tuples(st.integers(0, 5), st.integers(-40, 40)), max_size=8),
       st.lists(st.integers(0, 4 * SIZE), max_size=3), st.booleans())
def test_interrupted_chunks_read_in_pieces_around_their_end_lines(chunks, near, cuts, empty):
    """Chunks cut short of their Byte-Range (or not), one after the other, read in long reads
    and in short ones around their end-lines (an end-line over several reads, the body's end
    and its place split): the frames of the gathering parser, by the read that ends a frame
    or a short one."""
    data = b""
    if empty:  # a chunk cut short before its first byte, its end-line at the blank line
        head = send_line("st0030", body=None, byte_range=f"1-{SIZE}/{SIZE}", flag="+")
        data += head.replace(b"-------st0030+", b"\r\n-------st0030+")
    for number, (size, cut_short) in enumerate(chunks):
        declared = size + SIZE if cut_short else size
        data += send_line(f"st004{number}", body=_body(number, size),
                          byte_range=f"1-{declared}/{declared}", flag="+" if cut_short else "$")
    ends = [i for i in range(len(data)) if data.startswith(b"\r\n-------st00", i)]
    points = [ends[which % len(ends)] + offset for which, offset in near] + cuts
    _both(data, [max(0, p) for p in points])


def test_tiny_reads_go_to_the_buffer_and_a_slow_links_stream():
    """A body in reads of a few bytes would cost some 40 bytes a piece kept (and a search
    each): it goes to the buffer, once; reads of a packet's size stream on."""
    body = _body(24, 3 * SIZE)
    data = send_line("st0031", body=body) + send_line("st0032")
    for step, unstreamed in ((2, 1), (100, 1), (1448, 0)):
        parser = _Counting(max_chunk_bytes=4 * SIZE)
        got = parser.feed(data[:20000])
        for at in range(20000, len(data), step):
            got += parser.feed(data[at:at + step])
        assert [f.body for f in got] == [body, b"hello"]  # type: ignore[union-attr]
        assert parser.unstreamed == unstreamed
