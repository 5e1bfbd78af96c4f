"""Fuzzing the MSRP core: whatever the bytes, the session answers, drops or closes — it never
raises and never leaves the parser holding more than its limits.

Bounded to a few seconds by default; SIPD_FUZZ_EXAMPLES=<n> runs n examples per test."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipd.msrp.parser import FrameParser
from sipd.msrp.session import MsrpSession

from .helpers import ALICE, BOB, send_line

EXAMPLES = int(os.environ.get("SIPD_FUZZ_EXAMPLES", "600"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                derandomize="SIPD_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SEEDS = [
    send_line("fz0001"),
    send_line("fz0002", body=b"a\r\nb\r\n-------fz0002x$\r\n", byte_range="1-*/*", flag="+"),
    send_line("fz0003", body=None, byte_range="1-0/0"),
    (f"MSRP fz0004 REPORT\r\nTo-Path: {BOB}\r\nFrom-Path: {ALICE}\r\nMessage-ID: m1234\r\n"
     f"Byte-Range: 1-5/5\r\nStatus: 000 200 OK\r\n-------fz0004$\r\n").encode(),
    (f"MSRP fz0005 200 OK\r\nTo-Path: {BOB}\r\nFrom-Path: {ALICE}\r\n-------fz0005$\r\n").encode(),
    send_line("fz0006").replace(b"SEND", b"AUTH"),
]
TOKENS = [b"\r\n", b"\r\n\r\n", b"-------", b"-------fz0001$\r\n", b"$", b"+", b"#", b":", b";",
          b"msrp://", b"msrps://", b"Byte-Range: ", b"1-*/*", b"*", b"/", b"0", b"-1",
          b"99999999999999999999", b"\x00", b"\xff", b" ", b"MSRP ", b"Message-ID: ",
          b"Failure-Report: no", b"Success-Report: yes", b"Status: 000 ", b"To-Path: "]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "token", "truncate", "dup"]))
        if action == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position:position + draw(st.integers(1, 40))]
        elif action == "token":
            data[position:position] = draw(st.sampled_from(TOKENS))
        elif action == "truncate":
            del data[position:]
        elif action == "dup":
            data[position:position] = data[position:position + draw(st.integers(1, 80))]
    return bytes(data)


@FUZZ
@given(mutated(), st.lists(st.integers(0, 2000), max_size=5))
def test_session_survives_anything(data, cuts):
    session = MsrpSession([BOB], [ALICE], active=False, max_message_size=4096,
                          max_header_bytes=2048)
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        session.receive_data(data[last:cut], 0.0)
        last = cut
        list(session.events())
    out = session.data_to_send(0.0)
    for frame in FrameParser().feed(out):  # what we answer is valid MSRP
        assert not hasattr(frame, "fatal")
    session.handle_timers(100.0)
    session.connection_lost("fuzz over")
    list(session.events())


@FUZZ
@given(st.binary(max_size=3000))
def test_parser_survives_random_bytes(data):
    parser = FrameParser(max_header_bytes=512, max_chunk_bytes=1024)
    parser.feed(data)
    parser.eof()


class _LineByLine(FrameParser):
    """The parser without its one-match fast path: every frame read line by line."""

    def _fast_head(self, match, out, buf=None):  # type: ignore[no-untyped-def]
        return -1


def _seen(items):  # type: ignore[no-untyped-def]
    out = []
    for item in items:
        if hasattr(item, "fatal"):
            out.append(("error", item.detail, item.status, item.transaction_id, item.fatal))
        else:
            out.append((type(item).__name__, item.transaction_id, getattr(item, "method", None),
                        getattr(item, "code", None), getattr(item, "comment", None),
                        list(item.headers), getattr(item, "body", None),
                        getattr(item, "continuation", None)))
    return out


@FUZZ
@given(mutated(), st.lists(st.integers(0, 2000), max_size=3))
def test_fast_path_reads_as_the_line_by_line_path(data, cuts):
    fast, slow = FrameParser(max_header_bytes=2048), _LineByLine(max_header_bytes=2048)
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        assert _seen(fast.feed(data[last:cut])) == _seen(slow.feed(data[last:cut]))
        assert fast.in_frame == slow.in_frame
        last = cut
    assert _seen([e for e in [fast.eof()] if e]) == _seen([e for e in [slow.eof()] if e])


class _GeneralWay(MsrpSession):
    """The session without its chat fast path: every frame through the parser and checks."""

    def _fast_frames(self, data, now):  # type: ignore[no-untyped-def]
        return 0


@FUZZ
@given(mutated(), st.lists(st.integers(0, 2000), max_size=3), st.booleans())
def test_chat_fast_path_answers_as_the_general_way(data, cuts, deliver_chunks):
    first = send_line("fz0000", message_id="first")  # passes every check: paths learnt
    sessions = [cls([BOB], [ALICE], active=False, max_message_size=4096, max_header_bytes=2048,
                    accept_types=["text/*"], deliver_chunks=deliver_chunks)
                for cls in (MsrpSession, _GeneralWay)]
    seen: list[list[str]] = [[], []]
    for session, log in zip(sessions, seen, strict=True):
        last = 0
        session.receive_data(first, 0.0)
        for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
            session.receive_data(data[last:cut], 0.0)
            last = cut
            log.extend(repr(event) for event in session.events())
            log.append(repr(session.data_to_send(0.0)))
    assert sessions[0]._fast_paths is not None
    assert seen[0] == seen[1]
