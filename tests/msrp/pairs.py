"""Two MSRP endpoints on 127.0.0.1 and one connection between them, for tests and benchmarks
that move messages or files over the trio side."""

from __future__ import annotations

from pathlib import Path

import trio

from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.connection import MsrpConnection
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint


async def connection_pair(nursery: trio.Nursery, state: Path, transport: str
                          ) -> tuple[MsrpConnection, MsrpConnection]:
    """(sender, receiver) between two endpoints: the sender offered actpass and connects; the
    receiver delivers chunks and confirms what it stores (as a file transfer's does)."""
    ends = []
    for name in ("s", "r"):
        endpoint = MsrpEndpoint(EndpointSettings(transport=transport, state_dir=state / name))
        await nursery.start(endpoint.serve)
        ends.append(await endpoint.reserve())
    ours, theirs = ends
    offer = MsrpMedia(ours.local_path, ["*"], setup=Setup.ACTPASS,
                      fingerprints=ours.fingerprints)
    answer = MsrpMedia(theirs.local_path, ["*"], setup=Setup.PASSIVE,
                       fingerprints=theirs.fingerprints)
    sender = await ours.connect(answer, active=True, max_message_size=None)
    nursery.start_soon(sender.run)
    receiver = await theirs.connect(offer, active=False, deliver_chunks=True,
                                    owner_confirms=True, max_message_size=None)
    nursery.start_soon(receiver.run)
    return sender, receiver
