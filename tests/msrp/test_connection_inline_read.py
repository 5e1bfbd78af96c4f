"""The owner of a plain TCP connection that finds its event queue empty reads the socket itself
while the reader task waits with nothing in hand (MsrpConnection._read_inline): what came is
handled as the reader would (events, answers, every check of the input), and a read that finds
an error or bad input ends the connection as the reader would."""

from __future__ import annotations

import errno
import os
import re
import socket

import trio
import trio.testing

from sipd.msrp.events import MessageDelivered, MessageReceived
from sipd.msrp.session import MsrpSession
from sipd.msrp.trio.connection import ConnectionClosed, MsrpConnection

from .helpers import ALICE, BOB, send_line


def _answer(send: bytes) -> bytes:
    """The 200 a peer gives to the SEND `send`."""
    tid = re.match(rb"MSRP (\S+) SEND\r\n", send)
    assert tid is not None, send
    return (b"MSRP " + tid.group(1) + b" 200 OK\r\nTo-Path: " + str(ALICE).encode() +
            b"\r\nFrom-Path: " + str(BOB).encode() + b"\r\n-------" + tid.group(1) + b"$\r\n")


def _pair() -> tuple[MsrpConnection, socket.socket]:
    ours, theirs = socket.socketpair()
    session = MsrpSession([ALICE], [BOB], active=True)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
    theirs.settimeout(5)
    return MsrpConnection(stream, session), theirs


async def _closed_reason(connection: MsrpConnection) -> ConnectionClosed:
    with trio.fail_after(10):
        async for event in connection.events:
            if isinstance(event, ConnectionClosed):
                return event
    raise AssertionError("no ConnectionClosed")


async def test_the_owner_takes_the_answer_and_a_request_from_the_socket_itself():
    connection, theirs = _pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        await trio.testing.wait_all_tasks_blocked()  # the reader waits for the socket
        message_id = connection.send_message(b"hello", "text/plain")
        while len(connection.events):  # what the write told (MessageSent): no wait
            await connection.events.receive()
        send = theirs.recv(65536)  # written at once, by the owner's task
        theirs.sendall(_answer(send) + send_line("t9", to=ALICE, frm=BOB, message_id="in1"))
        assert len(connection.events) == 0
        connection.events.refill()  # before the reader had a turn: the owner's own read
        got = []
        while len(connection.events):
            got.append(await connection.events.receive())
        assert [e.message_id for e in got if isinstance(e, MessageDelivered)] == [message_id]
        assert [e.message_id for e in got if isinstance(e, MessageReceived)] == ["in1"]
        assert theirs.recv(65536).startswith(b"MSRP t9 200 OK\r\n")  # answered from there too
        # the reader still serves the socket afterwards
        theirs.sendall(send_line("t10", to=ALICE, frm=BOB, message_id="in2"))
        with trio.fail_after(10):
            event = await connection.events.receive()
        assert isinstance(event, MessageReceived) and event.message_id == "in2"
        nursery.cancel_scope.cancel()
    theirs.close()


async def test_bad_input_read_by_the_owner_ends_the_connection():
    connection, theirs = _pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        await trio.testing.wait_all_tasks_blocked()
        theirs.sendall(send_line("t1", to=BOB, frm=ALICE))  # To-Path is not ours
        theirs.sendall(b"GARBAGE NOT MSRP\r\n" * 200)
        connection.events.refill()
        assert len(connection.events), "the owner's own read handled it, the reader had no turn"
        closed = await _closed_reason(connection)
        assert not closed.by_peer and closed.reason, closed
    theirs.close()


async def test_a_reset_seen_by_the_owner_is_told_by_the_reader():
    connection, theirs = _pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        await trio.testing.wait_all_tasks_blocked()
        connection.send_message(b"hello", "text/plain")  # unread by the peer: close resets
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        theirs.close()
        connection.events.refill()
        assert isinstance(connection._read_error, ConnectionResetError)  # the owner's read
        closed = await _closed_reason(connection)
        assert closed.by_peer and closed.reason.startswith("connection failed"), closed
        reset = ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
        assert closed.reason == f"connection failed: {reset}"  # the reset alone, told as it is
