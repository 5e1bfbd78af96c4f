"""Two MSRP endpoints on 127.0.0.1, over TCP and over TLS with a=fingerprint."""

from __future__ import annotations

import os
import ssl
import stat

import pytest
import trio

from sipd.msrp.events import MessageDelivered, MessageReceived, SessionBound
from sipd.msrp.sdp import Fingerprint, MsrpMedia, Setup, connection_role
from sipd.msrp.trio.connection import ConnectionClosed, MsrpConnectError, MsrpConnection
from sipd.msrp.trio.endpoint import (
    DIRECT_CHUNK_SIZE,
    RELAY_CHUNK_SIZE,
    EndpointSettings,
    MsrpEndpoint,
)
from sipd.msrp.trio.tls import ensure_identity
from sipd.msrp.uri import parse_uri


def media(reservation, setup: Setup) -> MsrpMedia:
    return MsrpMedia(reservation.local_path, ["text/plain", "message/cpim"], setup=setup,
                     fingerprints=reservation.fingerprints)


async def next_of(connection: MsrpConnection, kind: type, timeout: float = 10):
    with trio.fail_after(timeout):
        async for event in connection.events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"connection ended without {kind.__name__}")


async def start_pair(nursery, tmp_path, transport: str, *, tamper=None, tamper_answer=None):
    alice = MsrpEndpoint(EndpointSettings(transport=transport, state_dir=tmp_path / "a"))
    bob = MsrpEndpoint(EndpointSettings(transport=transport, state_dir=tmp_path / "b"))
    await nursery.start(alice.serve)
    await nursery.start(bob.serve)
    # alice offers actpass, bob answers active: bob connects to alice
    offer_res = await alice.reserve()
    answer_res = await bob.reserve()
    offer = media(offer_res, Setup.ACTPASS)
    answer = media(answer_res, Setup.ACTIVE)
    if tamper:
        offer = tamper(offer)
    if tamper_answer:
        answer = tamper_answer(answer)
    assert connection_role(Setup.ACTPASS, Setup.ACTIVE, we_offered=True) is False
    bob_connection = await answer_res.connect(offer, active=True)
    await nursery.start(bob_connection.run)  # its first SEND binds alice's side
    alice_connection = await offer_res.connect(answer, active=False)
    await nursery.start(alice_connection.run)
    return alice_connection, bob_connection


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_chat_both_ways(tmp_path, transport):
    async with trio.open_nursery() as nursery:
        alice, bob = await start_pair(nursery, tmp_path, transport)
        assert isinstance(await next_of(alice, SessionBound), SessionBound)
        big = os.urandom(200_000)
        sent = bob.send_message(big, "text/plain")
        message = await next_of(alice, MessageReceived)
        assert message.body == big and message.message_id == sent
        assert (await next_of(bob, MessageDelivered)).message_id == sent
        reply = alice.send_message("héllo".encode(), "text/plain; charset=utf-8",
                                   success_report=True)
        assert (await next_of(bob, MessageReceived)).body == "héllo".encode()
        delivered = await next_of(alice, MessageDelivered)
        assert delivered.message_id == reply and delivered.by_report
        await bob.close("bye")
        closed = await next_of(alice, ConnectionClosed)
        assert closed.by_peer and "closed by the peer" in closed.reason
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("checked_by", ["active", "passive"])
async def test_fingerprint_mismatch_refuses_the_connection(tmp_path, checked_by):
    """RFC 8122 binds both ends: bob (active) holds alice's certificate against her offer's
    a=fingerprint; alice (passive), whom bob connects to, asked for bob's certificate in the
    handshake and holds it against his answer's."""
    other = ensure_identity(tmp_path / "other").fingerprint

    def wrong_fingerprint(media: MsrpMedia) -> MsrpMedia:
        media.fingerprints = [other]
        return media

    tampered = {"tamper" if checked_by == "active" else "tamper_answer": wrong_fingerprint}
    async with trio.open_nursery() as nursery:
        with pytest.raises(MsrpConnectError, match="does not match the a=fingerprint"):
            await start_pair(nursery, tmp_path, "tls", **tampered)
        nursery.cancel_scope.cancel()


async def test_missing_fingerprint_refuses_too(tmp_path):
    def no_fingerprint(offer: MsrpMedia) -> MsrpMedia:
        offer.fingerprints = []
        return offer

    async with trio.open_nursery() as nursery:
        with pytest.raises(MsrpConnectError, match="no a=fingerprint"):
            await start_pair(nursery, tmp_path, "tls", tamper=no_fingerprint)
        nursery.cancel_scope.cancel()


async def test_the_passive_side_refuses_a_peer_that_shows_no_certificate(tmp_path):
    """A TLS client that names alice's session but shows no certificate, while its SDP gave an
    a=fingerprint: refused; the listener keeps serving."""
    alice = MsrpEndpoint(EndpointSettings(transport="tls", state_dir=tmp_path / "a"))
    claimed = ensure_identity(tmp_path / "claimed").fingerprint
    async with trio.open_nursery() as nursery:
        await nursery.start(alice.serve)
        ours = await alice.reserve()
        theirs_uri = parse_uri(f"msrps://127.0.0.1:9/nocert{os.getpid()};tcp")
        theirs = MsrpMedia([theirs_uri], ["text/plain"], setup=Setup.ACTIVE,
                           fingerprints=[claimed])
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE  # and no certificate
        tcp = await trio.open_tcp_stream("127.0.0.1", alice.port)
        tls = trio.SSLStream(tcp, client, server_hostname=None)
        await tls.do_handshake()
        await tls.send_all(
            (f"MSRP t1 SEND\r\nTo-Path: {ours.local_path[0]}\r\nFrom-Path: {theirs_uri}\r\n"
             "Message-ID: m1\r\nByte-Range: 1-0/0\r\n-------t1$\r\n").encode())
        with trio.fail_after(10), pytest.raises(MsrpConnectError,
                                                match="presented no TLS certificate"):
            await ours.connect(theirs, active=False)
        with trio.fail_after(10):
            assert await tls.receive_some(100) == b""  # alice closed it (close_notify)
        await tls.aclose()
        nursery.cancel_scope.cancel()


def test_certificate_made_once_with_a_private_key(tmp_path):
    first = ensure_identity(tmp_path)
    assert stat.S_IMODE(os.stat(first.key_path).st_mode) == 0o600
    again = ensure_identity(tmp_path)
    assert again.fingerprint == first.fingerprint
    assert isinstance(first.fingerprint, Fingerprint)
    assert first.fingerprint.algorithm == "sha-256"


async def test_nobody_connects(tmp_path):
    endpoint = MsrpEndpoint(EndpointSettings(transport="tcp", connect_timeout=0.5))
    async with trio.open_nursery() as nursery:
        await nursery.start(endpoint.serve)
        reservation = await endpoint.reserve()
        theirs = MsrpMedia(reservation.local_path, ["*"])
        with pytest.raises(MsrpConnectError, match="no MSRP connection within"):
            await reservation.connect(theirs, active=False)
        nursery.cancel_scope.cancel()


async def test_direct_connections_use_big_chunks_and_relayed_paths_small_ones(tmp_path):
    async with trio.open_nursery() as nursery:
        alice, bob = await start_pair(nursery, tmp_path, "tcp")
        assert bob.session.chunk_size == DIRECT_CHUNK_SIZE
        assert alice.session.chunk_size == DIRECT_CHUNK_SIZE
        big = os.urandom(3 * DIRECT_CHUNK_SIZE + 5)  # four chunks, each through the parser
        bob.send_message(big, "application/octet-stream")
        assert (await next_of(alice, MessageReceived)).body == big
        # a peer whose a=path starts with a relay gets the relay size
        carol = MsrpEndpoint(EndpointSettings(transport="tcp", state_dir=tmp_path / "c"))
        await nursery.start(carol.serve)
        reservation = await carol.reserve()
        relay = parse_uri("msrp://127.0.0.1:9/relay0001;tcp")
        behind_relay = MsrpMedia([relay, *alice.session.local_path], ["text/plain"],
                                 setup=Setup.PASSIVE)
        direct = MsrpMedia(alice.session.local_path, ["text/plain"], setup=Setup.PASSIVE)
        assert reservation.chunk_size_for(behind_relay) == RELAY_CHUNK_SIZE == 2048
        assert reservation.chunk_size_for(direct) == DIRECT_CHUNK_SIZE
        await reservation.aclose()
        nursery.cancel_scope.cancel()


async def test_a_first_read_that_ends_in_the_middle_of_a_frame(tmp_path):
    """The listener reads the peer's first frame to find the session, and the start of the
    next came in the same read: the session goes on with it, and the rest completes it (the
    frame timeout once ran from 0 there: the connection failed at once, "the peer stopped in
    the middle of a frame")."""
    alice = MsrpEndpoint(EndpointSettings(transport="tcp", state_dir=tmp_path / "a"))
    async with trio.open_nursery() as nursery:
        await nursery.start(alice.serve)
        ours = await alice.reserve()
        theirs_uri = parse_uri(f"msrp://127.0.0.1:9/midframe{os.getpid()};tcp")
        theirs = MsrpMedia([theirs_uri], ["text/plain"], setup=Setup.ACTIVE)

        def send(tid: str, message_id: str, body: bytes) -> bytes:
            return (f"MSRP {tid} SEND\r\nTo-Path: {ours.local_path[0]}\r\n"
                    f"From-Path: {theirs_uri}\r\nMessage-ID: {message_id}\r\n"
                    f"Byte-Range: 1-{len(body)}/{len(body)}\r\nContent-Type: text/plain\r\n\r\n"
                    ).encode() + body + f"\r\n-------{tid}$\r\n".encode()

        second = send("t2", "m2", b"second")
        peer = await trio.open_tcp_stream("127.0.0.1", alice.port)
        await peer.send_all(send("t1", "m1", b"first") + second[:60])
        with trio.fail_after(10):
            connection = await ours.connect(theirs, active=False)
        nursery.start_soon(connection.run)
        assert (await next_of(connection, MessageReceived)).body == b"first"
        await trio.sleep(0.2)  # its timers run meanwhile
        await peer.send_all(second[60:])
        assert (await next_of(connection, MessageReceived)).body == b"second"
        await connection.close()
        await peer.aclose()
        nursery.cancel_scope.cancel()
