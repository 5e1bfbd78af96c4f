"""The passive side's TLS (sipd/msrp/trio/tls_server.py's PassiveContext under tls_stream's
TlsStream) against Python's ssl as the client, on 127.0.0.1: the client's self-signed
certificate is asked for and kept, bytes go both ways at once without a byte lost or
reordered, and a peer that closes, cuts or speaks no TLS gets a clear error."""

from __future__ import annotations

import hashlib
import os
import ssl
from functools import partial
from pathlib import Path

import pytest
import trio

from sipd.msrp.trio.tls import ensure_identity, passive_context, peer_context
from sipd.msrp.trio.tls_stream import TlsStream


async def tls_pair(tmp_path: Path, nursery: trio.Nursery, *, client_identity: bool = True
                   ) -> tuple[TlsStream, trio.SSLStream[trio.SocketStream]]:
    server_identity = ensure_identity(tmp_path / "server")
    identity = ensure_identity(tmp_path / "client") if client_identity else None
    accepted: list[TlsStream] = []
    done = trio.Event()

    async def serve(tcp: trio.SocketStream) -> None:
        stream = TlsStream(tcp, passive_context(server_identity), server_side=True)
        await stream.do_handshake()
        accepted.append(stream)
        done.set()
        await trio.sleep_forever()

    listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    client = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port),
                            peer_context(identity), server_hostname=None)
    await client.do_handshake()
    with trio.fail_after(10):
        await done.wait()
    return accepted[0], client


async def test_the_client_certificate_is_asked_for_and_kept(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        server, client = await tls_pair(tmp_path, nursery)
        der = server.getpeercert(binary_form=True)
        assert der is not None
        assert ensure_identity(tmp_path / "client").fingerprint.matches(der)
        await client.aclose()
        nursery.cancel_scope.cancel()


async def test_no_client_certificate_is_none_not_a_failure(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        server, client = await tls_pair(tmp_path, nursery, client_identity=False)
        assert server.getpeercert(binary_form=True) is None
        await client.send_all(b"still talks")
        assert await server.receive_some() == b"still talks"
        await client.aclose()
        nursery.cancel_scope.cancel()


async def read_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        data = await stream.receive_some(65536)
        assert data, f"the stream ended after {len(got)} of {size} bytes"
        got += data
    return bytes(got)


async def test_both_ways_at_once_nothing_lost_or_reordered(tmp_path: Path) -> None:
    """The server sends 6 MB while it receives 6 MB: its reads and writes share OpenSSL."""
    up, down = os.urandom(6 * 2**20), os.urandom(6 * 2**20)
    results: dict[str, bytes] = {}
    async with trio.open_nursery() as nursery:
        server, client = await tls_pair(tmp_path, nursery)

        async def run(name: str, job) -> None:  # type: ignore[no-untyped-def]
            results[name] = await job

        with trio.fail_after(60):
            async with trio.open_nursery() as transfer:
                transfer.start_soon(server.send_all, down)
                transfer.start_soon(client.send_all, up)
                transfer.start_soon(run, "server got", read_exactly(server, len(up)))
                transfer.start_soon(run, "client got", read_exactly(client, len(down)))
        assert hashlib.sha1(results["server got"]).digest() == hashlib.sha1(up).digest()
        assert hashlib.sha1(results["client got"]).digest() == hashlib.sha1(down).digest()
        await client.aclose()  # close_notify: the server reads the end
        with trio.fail_after(10):
            assert await server.receive_some() == b""
        await server.aclose()
        nursery.cancel_scope.cancel()


async def test_a_cut_connection_breaks_the_stream_after_what_came(tmp_path: Path) -> None:
    """An end without close_notify is a broken stream (as trio's SSLStream says it), after
    the bytes that came before it."""
    async with trio.open_nursery() as nursery:
        server, client = await tls_pair(tmp_path, nursery)
        await server.send_all(b"ok")
        assert await client.receive_some() == b"ok"  # and the session tickets before it
        await client.send_all(b"last words")
        await client.transport_stream.aclose()  # no close_notify
        with trio.fail_after(10):
            assert await server.receive_some() == b"last words"
            with pytest.raises(trio.BrokenResourceError):
                await server.receive_some()
        await server.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await server.send_all(b"too late")
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("hello, reason", [
    (b"MSRP t1 SEND\r\nTo-Path: msrps://x\r\n\r\n", "TLS failed"),
    (b"", "TLS failed"),
])
async def test_no_tls_from_the_peer_is_a_clear_error(tmp_path: Path, hello: bytes,
                                                      reason: str) -> None:
    identity = ensure_identity(tmp_path / "server")
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        async def peer() -> None:
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            if hello:
                await tcp.send_all(hello)
            await tcp.send_eof()
            with trio.move_on_after(10):
                while await tcp.receive_some():
                    pass
            await tcp.aclose()

        nursery.start_soon(peer)
        tcp = await listeners[0].accept()
        stream = TlsStream(tcp, passive_context(identity), server_side=True)
        with trio.fail_after(10), pytest.raises(trio.BrokenResourceError) as broken:
            await stream.do_handshake()
        assert isinstance(broken.value.__cause__, ssl.SSLError)
        assert reason in str(broken.value.__cause__)
        await stream.aclose()
    await listeners[0].aclose()


def test_a_key_that_does_not_load_is_a_clear_error(tmp_path: Path) -> None:
    from sipd.msrp.trio.tls import MsrpTlsError, TlsIdentity
    identity = ensure_identity(tmp_path / "server")
    (tmp_path / "bad.pem").write_text("not a key")
    broken = TlsIdentity(identity.cert_path, tmp_path / "bad.pem", identity.fingerprint)
    with pytest.raises(MsrpTlsError, match="cannot load the MSRP certificate"):
        passive_context(broken)


def test_the_suites_are_those_of_pythons_ssl(tmp_path: Path) -> None:
    """The passive side offers what the active side and Python's ssl server offer, not
    OpenSSL's wider default (CBC with SHA-1, static RSA, PSK, SRP)."""
    from OpenSSL import SSL
    identity = ensure_identity(tmp_path / "server")
    offered = SSL.Connection(passive_context(identity).context, None).get_cipher_list()
    python = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    python.minimum_version = ssl.TLSVersion.TLSv1_2
    assert offered == [suite["name"] for suite in python.get_ciphers()]
    assert not [name for name in offered if name.endswith("-SHA") or "PSK" in name]


async def test_a_server_that_closes_before_it_writes_sends_a_readable_close(
        tmp_path: Path) -> None:
    """TLS 1.3 session tickets are held back until the server's first data; a server that
    closes first still sends them before its close_notify (which would otherwise arrive out
    of sequence: a bad record MAC at the client)."""
    async with trio.open_nursery() as nursery:
        server, client = await tls_pair(tmp_path, nursery)
        await server.aclose()
        with trio.fail_after(10):
            assert await client.receive_some() == b""
        await client.aclose()
        nursery.cancel_scope.cancel()
