"""sipd.msrp.trio.tls_stream.TlsStream over real TCP sockets on 127.0.0.1: all the records a
read brings in one receive_some, and the behaviour of trio's SSLStream where MSRP relies on it
(close_notify, an EOF without it, handshake and certificate errors, closing under a waiting
receive, one receiver and one sender at a time)."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from sipd.msrp.sdp import Fingerprint
from sipd.msrp.trio.tls import ensure_identity, peer_context, server_context
from sipd.msrp.trio.tls_stream import TlsStream

Wrap = Callable[..., trio.abc.Stream]


def _trio_stream(tcp: trio.SocketStream, context: ssl.SSLContext,
                 **kwargs: object) -> trio.abc.Stream:
    return trio.SSLStream(tcp, context, **kwargs)  # type: ignore[arg-type]


@asynccontextmanager
async def _pair(tmp_path: Path, client: Wrap = TlsStream, server: Wrap = TlsStream,
                client_context: ssl.SSLContext | None = None,
                ) -> AsyncIterator[tuple[trio.abc.Stream, trio.abc.Stream, trio.SocketStream]]:
    """(client, server, the client's TCP stream), both handshaken."""
    identity = ensure_identity(tmp_path / "state")
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    accepted: list[trio.abc.Stream] = []
    async with trio.open_nursery() as nursery:
        async def accept() -> None:
            stream = server(await listeners[0].accept(), server_context(identity),
                            server_side=True)
            await stream.do_handshake()  # type: ignore[attr-defined]
            accepted.append(stream)

        nursery.start_soon(accept)
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        stream = client(tcp, client_context or peer_context(identity), server_hostname=None)
        await stream.do_handshake()  # type: ignore[attr-defined]
    try:
        yield stream, accepted[0], tcp
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()
            await accepted[0].aclose()
            await listeners[0].aclose()


async def _read_all(stream: trio.abc.Stream, size: int) -> list[bytes]:
    reads = []
    got = 0
    while got < size:
        data = await stream.receive_some(256 * 1024)
        assert data
        reads.append(data)
        got += len(data)
    return reads


@pytest.mark.parametrize("sender", ["ours", "trio"])
async def test_a_read_gives_every_record_it_completed(tmp_path, sender):
    data = os.urandom(1_000_000)
    wrap: Wrap = TlsStream if sender == "ours" else _trio_stream
    async with _pair(tmp_path, client=wrap) as (client, server, _):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, data)  # 62 records and more
            await trio.sleep(0.2)  # in flight before the reads, as far as the buffers take
            reads = await _read_all(server, len(data))
        assert b"".join(reads) == data
        assert max(map(len, reads)) > 16384  # not one record per read
        assert all(isinstance(read, bytes) and len(read) <= 256 * 1024 for read in reads)
        await server.send_all(b"back")
        assert await client.receive_some(10) == b"back"


async def test_max_bytes_is_kept_and_the_rest_comes_next(tmp_path):
    data = os.urandom(100_000)
    async with _pair(tmp_path) as (client, server, _):
        reads: list[bytes] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, data)
            while sum(map(len, reads)) < len(data):
                reads.append(await server.receive_some(1000))
        assert b"".join(reads) == data and max(map(len, reads)) <= 1000
        with pytest.raises(ValueError):
            await server.receive_some(0)


@pytest.mark.parametrize("closer", ["ours", "trio"])
async def test_close_notify_is_the_end_of_the_stream(tmp_path, closer):
    wrap: Wrap = TlsStream if closer == "ours" else _trio_stream
    async with _pair(tmp_path, client=wrap) as (client, server, _):
        await client.send_all(b"last words")
        await client.aclose()
        assert await _read_all(server, 10) == [b"last words"]
        assert await server.receive_some(100) == b""
        assert await server.receive_some(100) == b""
        with pytest.raises(trio.ClosedResourceError):
            await client.send_all(b"more")


@pytest.mark.parametrize("receiver", ["ours", "trio"])
async def test_an_eof_without_close_notify_breaks_the_stream(tmp_path, receiver):
    wrap: Wrap = TlsStream if receiver == "ours" else _trio_stream
    async with _pair(tmp_path, server=wrap) as (client, server, tcp):
        await client.send_all(b"cut")
        assert await server.receive_some(100) == b"cut"
        await server.send_all(b"x")  # the session tickets with it: the client reads them
        assert await client.receive_some(100) == b"x"
        await tcp.aclose()  # no close_notify
        with pytest.raises(trio.BrokenResourceError) as caught:
            await server.receive_some(100)
        assert isinstance(caught.value.__cause__, ssl.SSLEOFError)
        if receiver == "ours":
            with pytest.raises(trio.BrokenResourceError):
                await server.receive_some(100)  # and stays broken


async def test_a_client_closing_without_reading_does_not_reset(tmp_path):
    async with _pair(tmp_path) as (client, server, _):
        await client.send_all(b"only this")
        await client.aclose()  # nothing of the server's unread: no reset
        assert await _read_all(server, 9) == [b"only this"]
        assert await server.receive_some(100) == b""


async def test_closing_under_a_waiting_receive(tmp_path):
    async with _pair(tmp_path) as (client, server, _):
        async with trio.open_nursery() as nursery:
            async def receive() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await server.receive_some(100)

            nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            await server.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await server.receive_some(100)
        assert await client.receive_some(100) == b""  # our close_notify reached it


async def test_one_receiver_and_one_sender_at_a_time(tmp_path):
    async with _pair(tmp_path) as (client, server, _):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.receive_some, 100)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await server.receive_some(100)
            await client.send_all(b"z")
        big = os.urandom(8 * 1024 * 1024)  # more than the socket buffers take: a send waits
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, big)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await client.send_all(b"y")
            assert b"".join(await _read_all(server, len(big))) == big


async def test_the_peer_certificate_for_the_fingerprint_check(tmp_path):
    async with _pair(tmp_path) as (client, _, _):
        der = client.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        identity = ensure_identity(tmp_path / "state")
        assert Fingerprint.of_certificate(der, identity.fingerprint.algorithm) == \
            identity.fingerprint


async def test_a_failed_handshake_is_a_broken_stream_with_its_ssl_error(tmp_path):
    verifying = ssl.create_default_context()  # our self-signed certificate fails it
    with pytest.raises((trio.BrokenResourceError, BaseExceptionGroup)) as caught:
        async with _pair(tmp_path, client_context=verifying):
            pass

    def flat(error: BaseException) -> list[BaseException]:
        if isinstance(error, BaseExceptionGroup):
            return [leaf for inner in error.exceptions for leaf in flat(inner)]
        return [error]

    causes = [error.__cause__ for error in flat(caught.value)]
    assert any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes)


async def test_a_handshake_with_something_that_is_not_tls(tmp_path):
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        async def answer_plain() -> None:
            tcp = await listeners[0].accept()
            await tcp.send_all(b"MSRP nope 200 OK\r\n\r\n")
            await tcp.aclose()

        nursery.start_soon(answer_plain)
        stream = TlsStream(await trio.open_tcp_stream("127.0.0.1", port),
                           peer_context(ensure_identity(tmp_path / "state")))
        with pytest.raises(trio.BrokenResourceError) as caught:
            await stream.do_handshake()
        assert isinstance(caught.value.__cause__, ssl.SSLError)
        await stream.aclose()
    await listeners[0].aclose()


async def test_cancelled_receives_lose_nothing(tmp_path):
    data = os.urandom(2_000_000)
    async with _pair(tmp_path) as (client, server, _):
        reads: list[bytes] = []
        with trio.fail_after(30):  # lost bytes would leave it waiting
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send_all, data)
                await _receive_cancelled(server, reads, len(data))
        assert b"".join(reads) == data


async def _receive_cancelled(server: trio.abc.Stream, reads: list[bytes], size: int) -> None:
    turn = 0
    while sum(map(len, reads)) < size:
        turn += 1
        with trio.move_on_after(0.0005 if turn % 2 else 0):  # cancelled early, late
            reads.append(await server.receive_some(50_000))


async def test_a_send_cancelled_in_the_middle_breaks_the_stream(tmp_path):
    # Records partly written when a send is cancelled (a peer that does not read): a record
    # after them, data or close_notify, would be garbage to the peer.
    async with _pair(tmp_path) as (client, server, _):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.send_all, os.urandom(16_000_000))
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        with pytest.raises(trio.BrokenResourceError):
            await client.send_all(b"more")
