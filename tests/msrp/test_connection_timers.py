"""The trio side keeps the MSRP session's deadlines: a message a connected peer never answers
fails by its transaction timeout, however long the connection had nothing to wait for."""

from __future__ import annotations

import trio

from sipd.msrp.events import MessageFailed
from sipd.msrp.session import MsrpSession
from sipd.msrp.trio.connection import MsrpConnection

from .helpers import ALICE, BOB


async def test_a_peer_that_reads_and_never_answers_fails_the_message_by_its_timeout():
    ours, theirs = trio.socket.socketpair()
    session = MsrpSession([ALICE], [BOB], active=True, transaction_timeout=1)
    connection = MsrpConnection(trio.SocketStream(ours), session)
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        await trio.sleep(0.2)  # the timers task now sleeps with no deadline at all
        connection.send_message(b"hello", "text/plain")
        with trio.fail_after(10):
            async for event in connection.events:
                if isinstance(event, MessageFailed):
                    break
        assert event.code == 408, event
        received = await theirs.recv(65536)  # it was sent; the peer just never answered
        assert received.startswith(b"MSRP "), received
        nursery.cancel_scope.cancel()
    theirs.close()
