import pytest

from sipd.msrp.events import (
    ChunkReceived,
    ConnectionFailed,
    MessageAborted,
    MessageDelivered,
    MessageFailed,
    MessageReceived,
    MessageSent,
    ProtocolError,
    ReportReceived,
    SessionBound,
)
from sipd.msrp.message import MsrpRequest, MsrpResponse
from sipd.msrp.parser import FrameParser
from sipd.msrp.session import MsrpSession, media_type_matches
from sipd.msrp.uri import parse_uri

from .helpers import ALICE, BOB, Pair, send_line


def frames(data: bytes) -> list:
    return FrameParser().feed(data)


def bob_session(**kwargs) -> MsrpSession:
    return MsrpSession([BOB], [ALICE], active=False, **kwargs)


def answer_to(session: MsrpSession, data: bytes) -> list:
    session.receive_data(data, 0.0)
    return frames(session.data_to_send(0.0))


def test_message_is_chunked_and_delivered():
    pair = Pair(chunk_size=100)
    body = bytes(range(256)) * 10
    message_id = pair.alice.send_message(body, "application/octet-stream")
    pair.pump()
    sends = [f for f in frames(b"".join(pair.wire_to_bob)) if isinstance(f, MsrpRequest)]
    assert len(sends) == 26 and all(len(s.body) <= 100 for s in sends)
    assert [s.continuation for s in sends] == ["+"] * 25 + ["$"]
    assert str(sends[1].byte_range) == "101-200/2560"
    (received,) = pair.of(pair.bob_events, MessageReceived)
    assert received.body == body and received.message_id == message_id
    assert received.content_type == "application/octet-stream"
    assert pair.of(pair.alice_events, MessageDelivered) == [MessageDelivered(message_id)]
    assert pair.of(pair.alice_events, MessageSent) == [MessageSent(message_id)]


def test_short_message_goes_between_chunks_of_a_long_one():
    pair = Pair(chunk_size=10)
    long_id = pair.alice.send_message(b"L" * 100, "text/plain")
    short_id = pair.alice.send_message(b"short", "text/plain")
    pair.pump()
    order = [f.message_id for f in frames(b"".join(pair.wire_to_bob))]
    assert order.index(short_id) < len(order) - 1 - order[::-1].index(long_id)
    received = [e.message_id for e in pair.of(pair.bob_events, MessageReceived)]
    assert received == [short_id, long_id]


def test_passive_side_waits_for_the_first_request():
    pair = Pair()
    pair.bob.send_message(b"from bob", "text/plain")
    assert pair.bob.data_to_send(0.0) == b""  # not bound yet
    pair.alice.send_empty()
    pair.pump()
    assert pair.of(pair.bob_events, SessionBound)
    assert pair.of(pair.alice_events, SessionBound)
    assert [e.body for e in pair.of(pair.alice_events, MessageReceived)] == [b"from bob"]
    assert not pair.of(pair.bob_events, MessageReceived)  # the empty SEND is no message


def test_success_report_and_its_timeout():
    pair = Pair()
    wanted = pair.alice.send_message(b"hello", "text/plain", success_report=True)
    pair.pump()
    (report,) = pair.of(pair.alice_events, ReportReceived)
    assert report.status.code == 200 and str(report.byte_range) == "1-5/5"
    assert pair.of(pair.alice_events, MessageDelivered) == [
        MessageDelivered(wanted, 200, "OK", by_report=True)]
    # a receiver that never reports: failed with 408 after the report timeout
    lonely = MsrpSession([ALICE], [BOB], active=True, report_timeout=5)
    message_id = lonely.send_message(b"x", "text/plain", success_report=True)
    (send,) = frames(lonely.data_to_send(0.0))
    lonely.receive_data(
        (b"MSRP " + send.transaction_id.encode() + b" 200 OK\r\nTo-Path: " + str(ALICE).encode()
         + b"\r\nFrom-Path: " + str(BOB).encode() + b"\r\n-------" + send.transaction_id.encode()
         + b"$\r\n"), 1.0)
    assert lonely.next_deadline() == 6.0
    lonely.handle_timers(6.0)
    failed = [e for e in lonely.events() if isinstance(e, MessageFailed)]
    assert failed == [MessageFailed(message_id, 408, "no success report within 5 s")]


def test_transaction_timeout_fails_the_message():
    alice = MsrpSession([ALICE], [BOB], active=True, transaction_timeout=30)
    message_id = alice.send_message(b"x" * 10, "text/plain")
    alice.data_to_send(100.0)
    assert alice.next_deadline() == 130.0
    alice.handle_timers(129.0)
    assert not [e for e in alice.events() if isinstance(e, MessageFailed)]
    alice.handle_timers(130.0)
    (failed,) = [e for e in alice.events() if isinstance(e, MessageFailed)]
    assert failed.message_id == message_id and failed.code == 408
    assert alice.next_deadline() is None


def test_failure_report_partial_and_no():
    bob = bob_session()
    assert answer_to(bob, send_line("tx001", extra="Failure-Report: partial")) == []
    assert answer_to(bob, send_line("tx002", message_id="m2", extra="Failure-Report: no")) == []
    (error,) = answer_to(bob, send_line("tx003", message_id="m3", body=b"x" * 5,
                                        byte_range="1-9/9", extra="Failure-Report: partial"))
    assert error.code == 400
    # the sender side: no responses expected, so no timeouts and no "delivered"
    alice = MsrpSession([ALICE], [BOB], active=True)
    alice.send_message(b"x", "text/plain", failure_report="no")
    alice.data_to_send(0.0)
    assert alice.next_deadline() == 30.0  # the entry is kept to match a late error
    alice.handle_timers(31.0)
    assert not [e for e in alice.events() if isinstance(e, (MessageFailed, MessageDelivered))]


@pytest.mark.parametrize("data, code, words", [
    (send_line("t4811", to=parse_uri("msrp://127.0.0.1:7002/someoneelse;tcp")), 481,
     "not this session"),
    (send_line("t4812", frm=parse_uri("msrp://127.0.0.1:7001/stranger;tcp")), 481, "not the peer"),
    (send_line("t4001", body=b"hello", byte_range="1-3/3"), 400, "says 3 bytes"),
    (send_line("t4002", body=b"hello", byte_range="1-10/10"), 400, "says 10 bytes"),
    (send_line("t4003", body=b"hello", byte_range="3-*/4"), 400, "pass the total"),
    (send_line("t4004", body=b"hello", byte_range="1-x/5"), 400, "bad Byte-Range"),
    (send_line("t4005", message_id="!"), 400, "Message-ID"),
    (send_line("t4006", content_type=None), 400, "Content-Type"),
    (send_line("t4151", content_type="image/png"), 415, "not among"),
    (send_line("t4131", body=b"x" * 10, byte_range="1-10/5000"), 413, "larger than"),
    (send_line("t4031").replace(b"SEND", b"AUTH"), 403, "not a relay"),
    (send_line("t5011").replace(b"SEND", b"FROBNICATE"), 501, "FROBNICATE"),
    (send_line("t4007", extra="Success-Report: maybe"), 400, "Success-Report"),
])
def test_bad_requests_get_clear_answers(data, code, words):
    bob = bob_session(accept_types=["text/*", "message/cpim"], max_message_size=1000)
    (response,) = answer_to(bob, data)
    assert isinstance(response, MsrpResponse)
    assert response.code == code and words in response.comment
    assert response.to_path[0].same_as(frames(data)[0].from_path[0])
    assert not [e for e in bob.events() if isinstance(e, MessageReceived)]
    # and the session goes on
    (ok,) = answer_to(bob, send_line("tgood1", message_id="fine"))
    assert ok.code == 200


def test_a_to_path_with_our_session_id_behind_a_rewritten_host_is_ours():
    # A SIP ALG or SBC rewrote the host and port of our a=path (RFC 6714 session matching).
    bob = bob_session()
    rewritten = parse_uri(f"msrp://203.0.113.7:40000/{BOB.session_id};tcp")
    (ok,) = answer_to(bob, send_line("trw001", to=rewritten))
    assert ok.code == 200
    assert [e for e in bob.events() if isinstance(e, MessageReceived)]
    secure = parse_uri(f"msrps://127.0.0.1:7002/{BOB.session_id};tcp")
    (refused,) = answer_to(bob, send_line("trw002", to=secure, message_id="m2"))
    assert refused.code == 481


def test_chunks_in_any_order_with_star_totals():
    bob = bob_session()
    parts = [(b"world", "7-11/*", "$"), (b"hello ", "1-6/*", "+")]
    for i, (body, rng, flag) in enumerate(parts):
        bob.receive_data(send_line(f"tord{i}", body=body, byte_range=rng, flag=flag), 0)
    (message,) = [e for e in bob.events() if isinstance(e, MessageReceived)]
    assert message.body == b"hello world"
    # unknown end ("*") with the total known, out of order
    bob2 = bob_session()
    bob2.receive_data(send_line("tord3", message_id="m9", body=b"def", byte_range="4-*/6"), 0)
    bob2.receive_data(send_line("tord4", message_id="m9", body=b"abc", byte_range="1-*/6",
                                flag="+"), 0)
    assert [e.body for e in bob2.events() if isinstance(e, MessageReceived)] == [b"abcdef"]


def test_interrupted_chunk_and_abort():
    bob = bob_session()
    # a chunk cut short ('+'): fewer bytes than its range said is allowed
    bob.receive_data(send_line("tint1", message_id="mx", body=b"abc", byte_range="1-10/10",
                               flag="+"), 0)
    bob.receive_data(send_line("tint2", message_id="mx", body=b"defghij", byte_range="4-10/10"), 0)
    assert [e.body for e in bob.events() if isinstance(e, MessageReceived)] == [b"abcdefghij"]
    bob.receive_data(send_line("tab01", message_id="my", body=b"abc", byte_range="1-3/9",
                               flag="+"), 0)
    bob.receive_data(send_line("tab02", message_id="my", body=b"", byte_range="4-*/9",
                               flag="#"), 0)
    events = list(bob.events())
    assert [e for e in events if isinstance(e, MessageAborted)] == [
        MessageAborted("my", "aborted by the sender")]
    assert not [e for e in events if isinstance(e, MessageReceived)]


def test_we_abort_a_message():
    pair = Pair(chunk_size=4)
    message_id = pair.alice.send_message(b"0123456789abcdef", "text/plain")
    pair.alice.data_to_send(0.0, limit=1)  # one chunk goes
    assert pair.alice.abort_message(message_id)
    pair.bob.receive_data(b"".join(pair.wire_to_bob), 0.0)
    pair.pump()
    assert pair.of(pair.alice_events, MessageFailed) == [
        MessageFailed(message_id, None, "aborted by us")]


def test_error_response_and_late_failure_report():
    alice = MsrpSession([ALICE], [BOB], active=True)
    first = alice.send_message(b"a", "text/plain")
    second = alice.send_message(b"b", "text/plain")
    sends = frames(alice.data_to_send(0.0))

    def respond(send, code, comment):
        return (f"MSRP {send.transaction_id} {code} {comment}\r\nTo-Path: {ALICE}\r\n"
                f"From-Path: {BOB}\r\n-------{send.transaction_id}$\r\n").encode()

    alice.receive_data(respond(sends[0], 200, "OK") + respond(sends[1], 413, "Too big"), 0.0)
    report = (f"MSRP rep001 REPORT\r\nTo-Path: {ALICE}\r\nFrom-Path: {BOB}\r\n"
              f"Message-ID: {first}\r\nByte-Range: 1-1/1\r\nStatus: 000 481 Gone\r\n"
              f"-------rep001$\r\n").encode()
    alice.receive_data(report, 0.0)
    events = list(alice.events())
    outcomes = [e for e in events if isinstance(e, (MessageDelivered, MessageFailed))]
    assert outcomes == [MessageDelivered(first), MessageFailed(second, 413, "Too big"),
                        MessageFailed(first, 481, "Gone")]
    assert alice.data_to_send(0.0) == b""  # REPORTs are never answered


def test_connection_lost_fails_what_is_in_flight():
    pair = Pair(chunk_size=10)
    pending = pair.alice.send_message(b"x" * 100, "text/plain")
    pair.alice.data_to_send(0.0, limit=30)
    pair.bob.receive_data(send_line("tlost", body=b"abc", byte_range="1-3/9", flag="+")[:-5], 0)
    pair.alice.connection_lost("connection reset by peer")
    pair.bob.connection_lost("connection reset by peer")
    (failed,) = [e for e in pair.alice.events() if isinstance(e, MessageFailed)]
    assert failed == MessageFailed(pending, None, "connection reset by peer")
    with pytest.raises(RuntimeError):
        pair.alice.send_message(b"late", "text/plain")


def test_peer_stopping_mid_frame_times_out():
    bob = bob_session(frame_timeout=30)
    bob.receive_data(send_line("tstop")[:40], 10.0)
    assert bob.next_deadline() == 40.0
    bob.handle_timers(40.0)
    (failed,) = [e for e in bob.events() if isinstance(e, ConnectionFailed)]
    assert "middle of a frame" in failed.reason


def test_a_connection_taken_over_mid_frame_times_out_from_then_not_from_zero():
    # The listener (or a relay link) read the first frame and the start of the next before
    # the session existed; its parser comes with them. Counted from 0, the frame it holds the
    # start of timed out at once (the clock is trio's, far from 0): a relayed file failed at
    # its first bytes whenever the relay's first write held more than one frame.
    parser = FrameParser()
    second = send_line("tnext", message_id="m2")
    first = parser.feed(send_line("tfirst") + second[:40])
    assert len(first) == 1 and parser.in_frame
    bob = bob_session(parser=parser, frame_timeout=30)
    bob.take_over(first, 5000.0)
    assert bob.next_deadline() == 5030.0
    bob.handle_timers(5001.0)
    bob.receive_data(second[40:], 5002.0)
    events = list(bob.events())
    assert not [e for e in events if isinstance(e, ConnectionFailed)]
    assert len([e for e in events if isinstance(e, MessageReceived)]) == 2


def test_garbage_closes_the_session():
    bob = bob_session()
    bob.receive_data(b"\x16\x03\x01\x02\x00 TLS where TCP was expected", 0)
    (failed,) = [e for e in bob.events() if isinstance(e, ConnectionFailed)]
    assert "not MSRP" in failed.reason and bob.closed_reason


def test_deliver_chunks_for_files():
    bob = bob_session(deliver_chunks=True)
    bob.receive_data(send_line("tf001", message_id="f1", body=b"ab", byte_range="1-2/4",
                               flag="+", content_type="application/octet-stream"), 0)
    bob.receive_data(send_line("tf002", message_id="f1", body=b"cd", byte_range="3-4/4",
                               content_type="application/octet-stream"), 0)
    chunks = [e for e in bob.events() if isinstance(e, ChunkReceived)]
    assert [(c.start, c.data, c.total) for c in chunks] == [(1, b"ab", 4), (3, b"cd", 4)]


def test_an_empty_message_with_a_type_is_a_message():
    """RFC 4975 allows a zero-length body: an empty SEND with a Content-Type is a message (an
    empty file), delivered, reported; one without is a keep-alive."""
    pair = Pair()
    wanted = pair.alice.send_message(b"", "application/octet-stream", success_report=True)
    pair.pump()
    (received,) = pair.of(pair.bob_events, MessageReceived)
    assert received.message_id == wanted and received.body == b""
    assert received.content_type == "application/octet-stream"
    (delivered,) = pair.of(pair.alice_events, MessageDelivered)
    assert delivered.message_id == wanted and delivered.by_report
    bob = bob_session(deliver_chunks=True, owner_confirms=True)
    bob.receive_data(send_line("tf003", message_id="e1", body=b"", byte_range="1-0/0",
                               content_type="application/octet-stream",
                               extra="Success-Report: yes\r\n"), 0)
    chunks = [e for e in bob.events() if isinstance(e, ChunkReceived)]
    assert [(c.message_id, c.data, c.total) for c in chunks] == [("e1", b"", 0)]
    bob.receive_data(send_line("tf004", message_id="k1", body=b"", byte_range="1-0/0",
                               content_type=None), 0)
    assert not [e for e in bob.events() if isinstance(e, ChunkReceived)]  # a keep-alive


def test_burst_of_small_sends():
    bob = bob_session()
    data = b"".join(send_line(f"burst{i:05d}", message_id=f"msg{i:05d}", body=b"hi")
                    for i in range(10_000))
    bob.receive_data(data, 0.0)
    responses = frames(bob.data_to_send(0.0, limit=10**9))
    assert len(responses) == 10_000 and all(r.code == 200 for r in responses)
    assert len([e for e in bob.events() if isinstance(e, MessageReceived)]) == 10_000


def test_protocol_errors_are_events():
    bob = bob_session()
    bob.receive_data(send_line("terr1", body=b"hello", byte_range="1-3/3"), 0)
    assert [e.status for e in bob.events() if isinstance(e, ProtocolError)] == [400]


def test_media_type_matches():
    assert media_type_matches("text/plain", ["*"])
    assert media_type_matches("Text/Plain", ["text/*"])
    assert media_type_matches("message/cpim", ["text/plain", "message/cpim"])
    assert not media_type_matches("image/png", ["text/*"])
