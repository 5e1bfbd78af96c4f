"""Edge cases of the fast paths: the body scan that resumes where it stopped, big chunks full of
end-line look-alikes, reassembly without copies, the header index, the URI caches."""

import random

import pytest

from sipd.msrp.events import MessageDelivered, MessageReceived
from sipd.msrp.headers import Headers
from sipd.msrp.incoming import IncomingMessage
from sipd.msrp.message import MsrpRequest, MsrpResponse
from sipd.msrp.parser import FrameError, FrameParser
from sipd.msrp.uri import parse_path, parse_uri

from .helpers import Pair, send_line

TID = "a786hjs2"
# Every way a body can resemble our end-line without being it: a wrong flag, a longer
# transaction-id, no CRLF after the flag, a CR alone, another transaction's end-line, and a
# partial end-line at the very end of the body.
LOOK_ALIKES = (b"\r\n-------a786hjs2x\r\n", b"\r\n-------a786hjs2x$\r\n", b"\r\n-------a786hjs2$x",
               b"\r\n-------a786hjs2$\r", b"\r\n-------a786hjs2+ \r\n", b"\r\n-------other99$\r\n",
               b"-------a786hjs2$\r\n", b"\r\n-------a786hjs")


def big_body(size: int) -> bytes:
    """`size` bytes of noise with every look-alike sprinkled through it, one at the very end."""
    noise = bytearray(random.Random(4975).randbytes(size))
    step = size // (len(LOOK_ALIKES) + 1)
    for i, fake in enumerate(LOOK_ALIKES):
        at = step * (i + 1) - len(fake)
        noise[at - 1:at + len(fake)] = b"z" + fake  # no CRLF before: a look-alike stays one
    noise[-len(LOOK_ALIKES[-1]):] = LOOK_ALIKES[-1]
    return bytes(noise)


def test_end_line_split_at_every_position():
    body = b"x" * 100 + b"y".join(LOOK_ALIKES)  # no look-alike made whole by its neighbour
    frame = send_line(TID, body=body) + send_line("next0001")
    end = frame.index(b"-------" + TID.encode() + b"$\r\nMSRP")
    for cut in range(end - 20, end + len(TID) + 12):
        for second in (cut, cut + 1, cut + 5):  # two and three reads
            parser = FrameParser()
            out = parser.feed(frame[:cut]) + parser.feed(frame[cut:second])
            out += parser.feed(frame[second:])
            assert [type(f) for f in out] == [MsrpRequest, MsrpRequest], cut
            assert out[0].body == body and out[1].body == b"hello"
            assert not parser.in_frame


@pytest.mark.parametrize("read_size", [1, 7, 1000, 65536, 300_000])
def test_large_chunk_with_look_alikes_in_any_read_size(read_size):
    body = big_body(200_000)
    data = send_line(TID, body=body, flag="+") + send_line("t0000002", body=b"", flag="$",
                                                          byte_range="200001-200000/200000")
    if read_size == 1:
        data = send_line(TID, body=body[-5000:])  # byte by byte: a smaller one
        body = body[-5000:]
    parser = FrameParser()
    out = []
    for i in range(0, len(data), read_size):
        out += parser.feed(data[i:i + read_size])
    assert not [f for f in out if isinstance(f, FrameError)]
    assert out[0].body == body


def test_session_delivers_big_chunks_of_look_alikes_intact():
    pair = Pair(chunk_size=64 * 1024)
    body = big_body(300_000)
    message_id = pair.alice.send_message(body, "application/octet-stream")
    pair.pump()
    received = [e for e in pair.bob_events if isinstance(e, MessageReceived)]
    assert len(received) == 1 and received[0].body == body
    assert [e.message_id for e in pair.alice_events if isinstance(e, MessageDelivered)] \
        == [message_id]
    # 300 000 bytes went in five chunks, not 147
    assert sum(w.count(b" SEND\r\n") for w in pair.wire_to_bob) == 5


def test_reassembly_of_overlapping_and_out_of_order_chunks():
    incoming = IncomingMessage("m1", None)
    incoming.add(5, b"EFGH", 10, False, None, Headers())
    incoming.add(1, b"ABCDEF", 10, False, "text/plain", Headers())  # overlaps the first
    incoming.add(9, b"IJ", 10, True, None, Headers())
    assert incoming.complete and incoming.body() == b"ABCDEFGHIJ"
    single = IncomingMessage("m2", None)
    piece = b"whole message"
    single.add(1, piece, len(piece), True, "text/plain", Headers())
    assert single.body() is piece  # one chunk is handed over as it came


def test_header_index_follows_changes():
    headers = Headers([("to-path", "a"), ("To-Path", "b")])
    assert headers.get("TO-PATH") == "a"  # the first one, any case
    headers.add("Byte-Range", "1-1/1")
    assert headers.get("byte-range") == "1-1/1"
    headers.set("To-Path", "c")
    assert headers.get("To-Path") == "c" and headers.get_all("to-path") == ["c"]
    headers.remove("Byte-Range")
    assert headers.get("Byte-Range") is None and "Byte-Range" not in headers


def test_uri_caches_give_fresh_paths_and_still_refuse_bad_ones():
    text = "msrp://127.0.0.1:7001/abc;tcp msrp://127.0.0.1:7002/def;tcp"
    first = parse_path(text)
    first.append(parse_uri("msrp://127.0.0.1:7003/ghi;tcp"))  # the caller's own list
    assert len(parse_path(text)) == 2
    for _ in range(2):
        with pytest.raises(Exception, match="transport"):
            parse_uri("msrp://127.0.0.1:7001/abc")


def test_unknown_header_names_still_checked():
    data = send_line(TID, extra="Bad Name: x")
    (error,) = FrameParser().feed(data)
    assert isinstance(error, FrameError) and error.status == 400
    known_not_utf8 = send_line(TID).replace(b"Message-ID: m1", b"Message-ID: \xff")
    (error,) = FrameParser().feed(known_not_utf8)
    assert isinstance(error, FrameError) and "UTF-8" in error.detail


def test_response_after_big_body_in_one_read():
    body = big_body(70_000)
    data = send_line(TID, body=body) + (
        b"MSRP zz99 200 OK\r\nTo-Path: msrp://127.0.0.1:7001/alice0001;tcp\r\n"
        b"From-Path: msrp://127.0.0.1:7002/bob00002;tcp\r\n-------zz99$\r\n")
    out = FrameParser().feed(data)
    assert [type(f) for f in out] == [MsrpRequest, MsrpResponse]
    assert out[0].body == body


def _bound_bob(**options):  # type: ignore[no-untyped-def]
    """Bob's session after one SEND passed every check (the chat fast path knows its paths)."""
    from sipd.msrp.session import MsrpSession

    from .helpers import ALICE, BOB
    bob = MsrpSession([BOB], [ALICE], active=False, accept_types=["text/*"], **options)
    bob.receive_data(send_line("first001", message_id="first"), 0.0)
    assert b" 200 OK" in bob.data_to_send(0.0)
    list(bob.events())
    assert bob._fast_paths is not None
    return bob


def _codes(data: bytes) -> list[int]:
    return [f.code for f in FrameParser().feed(data) if isinstance(f, MsrpResponse)]


def test_chat_fast_path_keeps_every_check():
    from sipd.msrp.events import ProtocolError

    from .helpers import ALICE, BOB
    bob = _bound_bob(max_message_size=10)
    other = parse_uri("msrp://127.0.0.1:7002/someone9;tcp")
    cases = [
        (send_line("t0000001", to=other), 481),                     # not this session
        (send_line("t0000002", frm=other), 481),                    # not the peer
        (send_line("t0000003", byte_range="1-4/4"), 400),           # 5 bytes said 4
        (send_line("t0000004", byte_range="1-6/6"), 400),
        (send_line("t0000005", content_type="image/png"), 415),     # not accepted
        (send_line("t0000006", body=b"x" * 11), 413),               # past the size limit
        (send_line("t0000007").replace(b"-------t0000007$", b"-------t0000008$")
         + send_line("t0000009", message_id="m9"), 400),             # foreign end-line
    ]
    for data, code in cases:
        bob.receive_data(data, 0.0)
        events = list(bob.events())
        assert not [e for e in events if isinstance(e, MessageReceived)
                    and e.message_id == "m1"]
        assert any(isinstance(e, ProtocolError) and e.status == code for e in events), data
        assert code in _codes(bob.data_to_send(0.0)), data
    # a body holding our end-line's look-alikes arrives whole, and its duplicate is only
    # answered
    bob = _bound_bob()
    body = b"a\r\n-------t0000010x$\r\n-------t0000010$x\r\nb"
    for bodies in ([body], []):
        bob.receive_data(send_line("t0000010", message_id="look", body=body), 0.0)
        assert [e.body for e in bob.events() if isinstance(e, MessageReceived)] == bodies
        assert _codes(bob.data_to_send(0.0)) == [200]
    assert ALICE and BOB


def test_chat_fast_path_hands_over_as_the_general_way():
    bob = _bound_bob()
    data = send_line("t0000011", message_id="one", body=b"first") + \
        send_line("t0000012", message_id="two", body=b"second", extra="X-Other: 1") + \
        send_line("t0000013", message_id="three", body=b"third")
    bob.receive_data(data, 0.0)
    received = [e for e in bob.events() if isinstance(e, MessageReceived)]
    assert [(e.message_id, e.body, e.content_type) for e in received] == [
        ("one", b"first", "text/plain"), ("two", b"second", "text/plain"),
        ("three", b"third", "text/plain")]
    assert list(received[0].headers) == [
        ("To-Path", "msrp://127.0.0.1:7002/bob00002;tcp"),
        ("From-Path", "msrp://127.0.0.1:7001/alice0001;tcp"), ("Message-ID", "one"),
        ("Byte-Range", "1-5/5"), ("Content-Type", "text/plain")]
    assert received[1].headers.get("X-Other") == "1"
    assert _codes(bob.data_to_send(0.0)) == [200, 200, 200]


def test_a_200_for_no_transaction_of_ours_is_unmatched():
    from sipd.msrp.events import UnmatchedResponse
    pair = Pair()
    pair.alice.send_message(b"hi", "text/plain")
    pair.pump()
    stray = (b"MSRP zz99 200 OK\r\nTo-Path: msrp://127.0.0.1:7001/alice0001;tcp\r\n"
             b"From-Path: msrp://127.0.0.1:7002/bob00002;tcp\r\n-------zz99$\r\n")
    pair.alice.receive_data(stray, 0.0)
    assert [type(e) for e in pair.alice.events()] == [UnmatchedResponse]


@pytest.mark.parametrize("field", ["message_id", "content_type", "name", "value"])
@pytest.mark.parametrize("breaker", ["\r", "\n"])
def test_line_breaks_in_headers_of_our_messages_are_refused(field, breaker):
    from sipd.msrp.session import MsrpSession

    from .helpers import ALICE, BOB
    session = MsrpSession([ALICE], [BOB])
    values = {"message_id": "m1", "content_type": "text/plain", "name": "X-Name",
              "value": "v"}
    values[field] += breaker + "Evil: yes"
    with pytest.raises(ValueError, match="line break"):
        session.send_message(b"hi", values["content_type"], message_id=values["message_id"],
                             headers=[(values["name"], values["value"])])
    assert session.data_to_send(0.0) == b""


def test_chat_fast_path_keeps_the_parser_limits():
    from sipd.msrp.events import ProtocolError
    bob = _bound_bob(max_header_bytes=600, max_message_size=None, max_chunk_bytes=1000)
    long_type = "text/plain;" + ";".join(f"p{i}=v" for i in range(150))
    bob.receive_data(send_line("t0000020", content_type=long_type), 0.0)
    events = list(bob.events())
    assert not [e for e in events if isinstance(e, MessageReceived)]
    assert [e.status for e in events if isinstance(e, ProtocolError)] == [400]
    assert _codes(bob.data_to_send(0.0)) == [400]
    bob.receive_data(send_line("t0000021", body=b"x" * 1001), 0.0)  # whole in one read
    events = list(bob.events())
    assert not [e for e in events if isinstance(e, MessageReceived)]
    assert [e.status for e in events if isinstance(e, ProtocolError)] == [413]
    assert _codes(bob.data_to_send(0.0)) == [413]
