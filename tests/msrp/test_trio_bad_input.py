"""A raw MSRP client against a passive endpoint: garbage, a wrong To-Path, a lying Byte-Range,
a connection that stops in the middle of a chunk, and 10,000 small SENDs in a burst. The
endpoint answers or closes that connection, and keeps serving."""

from __future__ import annotations

import trio

from sipd.msrp.events import MessageAborted, MessageFailed, MessageReceived, ProtocolError
from sipd.msrp.message import MsrpResponse
from sipd.msrp.parser import FrameParser
from sipd.msrp.sdp import MsrpMedia
from sipd.msrp.trio.connection import ConnectionClosed
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.uri import parse_uri

from .helpers import send_line

RAW = parse_uri("msrp://127.0.0.1:9/rawclient1;tcp")


class RawClient:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.parser = FrameParser()
        self.frames: list = []

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def responses(self, count: int, timeout: float = 20) -> list[MsrpResponse]:
        with trio.fail_after(timeout):
            while len(self.frames) < count:
                data = await self.stream.receive_some(65536)
                assert data, f"closed after {len(self.frames)} of {count} frames"
                self.frames += self.parser.feed(data)
        return self.frames[:count]

    async def closed(self, timeout: float = 10) -> bool:
        with trio.fail_after(timeout):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return True
                if not data:
                    return True
                self.frames += self.parser.feed(data)


async def serve(nursery) -> MsrpEndpoint:
    endpoint = MsrpEndpoint(EndpointSettings(transport="tcp"))
    await nursery.start(endpoint.serve)
    return endpoint


async def bound_session(nursery, endpoint: MsrpEndpoint):
    """A passive session and a raw client whose first (good) SEND bound it."""
    reservation = await endpoint.reserve()
    ours = reservation.local_uri
    client = await RawClient.connect(endpoint.port)
    await client.stream.send_all(send_line("first1", to=ours, frm=RAW, message_id="first"))
    connection = await reservation.connect(MsrpMedia([RAW], ["*"]), active=False)
    await nursery.start(connection.run)
    (ok,) = await client.responses(1)
    assert ok.code == 200
    return client, connection, ours


async def events_until(connection, kind, timeout=20):
    seen = []
    with trio.fail_after(timeout):
        async for event in connection.events:
            seen.append(event)
            if isinstance(event, kind):
                return seen
    raise AssertionError(f"no {kind.__name__} in {seen}")


async def test_garbage_and_strangers_are_closed_and_others_still_served():
    async with trio.open_nursery() as nursery:
        endpoint = await serve(nursery)
        garbage = await RawClient.connect(endpoint.port)
        await garbage.stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await garbage.closed()
        stranger = await RawClient.connect(endpoint.port)
        await stranger.stream.send_all(
            send_line("strng1", to=parse_uri("msrp://127.0.0.1:1/nosuchsession;tcp"), frm=RAW))
        assert await stranger.closed()
        assert stranger.frames[0].code == 481
        client, connection, ours = await bound_session(nursery, endpoint)
        await client.stream.send_all(send_line("next01", to=ours, frm=RAW, message_id="second"))
        (_, ok) = await client.responses(2)
        assert ok.code == 200
        nursery.cancel_scope.cancel()


async def test_wrong_to_path_and_lying_byte_range_get_answers():
    async with trio.open_nursery() as nursery:
        endpoint = await serve(nursery)
        client, connection, ours = await bound_session(nursery, endpoint)
        other = parse_uri(f"msrp://127.0.0.1:{endpoint.port}/notthisone;tcp")
        await client.stream.send_all(
            send_line("wrong1", to=other, frm=RAW, message_id="w1")
            + send_line("lies01", to=ours, frm=RAW, message_id="l1", body=b"hello",
                        byte_range="1-50/50")
            + send_line("lies02", to=ours, frm=RAW, message_id="l2", body=b"hello",
                        byte_range="1-5/5").replace(b"-------lies02", b"-------xxxxxx")
            + send_line("fine01", to=ours, frm=RAW, message_id="f1", body=b"fine"))
        frames = await client.responses(5)
        assert [(f.transaction_id, f.code) for f in frames[1:]] == [
            ("wrong1", 481), ("lies01", 400), ("lies02", 400), ("fine01", 200)]
        assert "says 50 bytes" in frames[2].comment
        assert "end-line names transaction 'xxxxxx'" in frames[3].comment
        seen = await events_until(connection, MessageReceived)  # "first"
        seen = await events_until(connection, MessageReceived)
        assert [e.status for e in seen if isinstance(e, ProtocolError)] == [481, 400, 400]
        assert seen[-1].body == b"fine"
        nursery.cancel_scope.cancel()


async def test_connection_stopping_mid_chunk():
    async with trio.open_nursery() as nursery:
        endpoint = await serve(nursery)
        client, connection, ours = await bound_session(nursery, endpoint)
        await client.stream.send_all(send_line("part01", to=ours, frm=RAW, message_id="p1",
                                               body=b"a" * 100, byte_range="1-100/300",
                                               flag="+"))
        await client.stream.send_all(send_line("part02", to=ours, frm=RAW, message_id="p1",
                                               body=b"b" * 100, byte_range="101-200/300",
                                               flag="+")[:-40])
        await client.responses(2)
        await client.stream.aclose()
        seen = await events_until(connection, ConnectionClosed)
        aborted = [e for e in seen if isinstance(e, MessageAborted)]
        assert aborted and aborted[0].message_id == "p1"
        assert "middle of transaction part02" in aborted[0].reason
        assert seen[-1].by_peer
        nursery.cancel_scope.cancel()


async def test_ten_thousand_small_sends_in_a_burst():
    async with trio.open_nursery() as nursery:
        endpoint = await serve(nursery)
        client, connection, ours = await bound_session(nursery, endpoint)
        burst = b"".join(send_line(f"b{i:06d}", to=ours, frm=RAW, message_id=f"m{i:06d}",
                                   body=b"hi") for i in range(10_000))
        received = 0

        async def consume():
            nonlocal received
            async for event in connection.events:
                if isinstance(event, MessageReceived):
                    received += 1
                    if received == 10_000:
                        return

        async with trio.open_nursery() as inner:
            inner.start_soon(consume)
            inner.start_soon(client.stream.send_all, burst)
            frames = await client.responses(10_001, timeout=60)
        assert all(f.code == 200 for f in frames)
        assert {f.transaction_id for f in frames[1:]} == {f"b{i:06d}" for i in range(10_000)}
        assert received == 10_000
        nursery.cancel_scope.cancel()


async def test_close_while_the_peer_does_not_read():
    async with trio.open_nursery() as nursery:
        endpoint = await serve(nursery)
        client, connection, ours = await bound_session(nursery, endpoint)
        stuck = connection.send_message(b"x" * 20_000_000, "application/octet-stream")
        await trio.sleep(0.5)  # the socket buffers fill up; the client reads nothing
        with trio.fail_after(15):
            await connection.close("user hung up")
        seen = []
        async for event in connection.events:
            seen.append(event)
        failed = [e for e in seen if isinstance(e, MessageFailed)]
        assert failed and failed[0].message_id == stuck and failed[0].reason == "user hung up"
        assert isinstance(seen[-1], ConnectionClosed) and not seen[-1].by_peer
        nursery.cancel_scope.cancel()
