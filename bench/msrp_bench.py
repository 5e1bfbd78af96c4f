"""MSRP: chat messages per second over one session, and one 64 MB message over TCP and TLS, each
against a bare trio baseline of the same sizes run in the same process, alternating rounds.

    python -m bench.msrp_bench [--messages 2000] [--size 200] [--big-mb 64] [--rounds 3]

- chat rate: two MsrpEndpoints on 127.0.0.1 (TCP), one session; each message CPIM-wrapped by
  the chat core (sipd/chat), sent with Success-Report off, the next one sent once the 200 for
  the last came back. Baseline: a trio TCP request/response loop moving the same number of
  bytes each way per message (the SEND's size out, a 200's size back).
- bulk: one message of --big-mb MB over MSRP (TCP, then TLS with our certificate), timed until
  the receiver holds all of it; baseline: the same bytes copied over a bare trio TCP (TLS)
  stream, the receiver answering one byte at the end.
CPU per chat message is the process CPU time (both ends run in this process) divided by the
messages. Not a test: it prints numbers (and the ratios the issue's targets are stated in).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import trio

from sipd.chat.payload import LOCAL_ACCEPT_TYPES, LOCAL_ACCEPT_WRAPPED_TYPES, ChatPayloads
from sipd.messages.cpim import CPIMIdentity
from sipd.msrp.events import MessageDelivered, MessageReceived
from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.connection import MsrpConnection
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.trio.tls import ensure_identity, peer_context, server_context

ALICE = CPIMIdentity("sip:alice@127.0.0.1")
BOB = CPIMIdentity("sip:bob@127.0.0.1")


async def msrp_pair(nursery: trio.Nursery, state: Path,
                    transport: str) -> tuple[MsrpConnection, MsrpConnection]:
    """(sender, receiver): the sender offered actpass, the receiver answered passive."""
    sender_end = MsrpEndpoint(EndpointSettings(transport=transport, state_dir=state / "s",
                                               chunk_size=2048))
    receiver_end = MsrpEndpoint(EndpointSettings(transport=transport, state_dir=state / "r",
                                                 chunk_size=2048))
    await nursery.start(sender_end.serve)
    await nursery.start(receiver_end.serve)
    ours, theirs = await sender_end.reserve(), await receiver_end.reserve()

    def media(reservation: object, setup: Setup) -> MsrpMedia:
        return MsrpMedia(reservation.local_path, list(LOCAL_ACCEPT_TYPES),  # type: ignore[attr-defined]
                         setup=setup, fingerprints=reservation.fingerprints)  # type: ignore[attr-defined]

    offer, answer = media(ours, Setup.ACTPASS), media(theirs, Setup.PASSIVE)
    options = {"max_message_size": None}
    sender = await ours.connect(answer, active=True, **options)
    nursery.start_soon(sender.run)
    receiver = await theirs.connect(offer, active=False, **options)
    nursery.start_soon(receiver.run)
    return sender, receiver


async def drain(connection: MsrpConnection, kind: type, count: int) -> None:
    seen = 0
    async for event in connection.events:
        if isinstance(event, kind):
            seen += 1
            if seen == count:
                return


async def chat_rate(messages: int, size: int) -> tuple[float, float]:
    """(messages per second, CPU seconds per message) of chat over MSRP TCP."""
    payloads = ChatPayloads(ALICE, BOB, accept_types=LOCAL_ACCEPT_TYPES,
                            accept_wrapped_types=LOCAL_ACCEPT_WRAPPED_TYPES)
    text = b"x" * size
    with tempfile.TemporaryDirectory() as state:
        async with trio.open_nursery() as nursery:
            sender, receiver = await msrp_pair(nursery, Path(state), "tcp")
            nursery.start_soon(drain, receiver, MessageReceived, messages)
            wall, cpu = time.perf_counter(), time.process_time()
            for index in range(messages):
                message_id = f"bench{index}"
                out = payloads.message(text, "text/plain", message_id=message_id,
                                       now=datetime.datetime.now(datetime.UTC))
                sender.send_message(out.body, out.content_type, message_id=message_id)
                async for event in sender.events:
                    if isinstance(event, MessageDelivered) and event.message_id == message_id:
                        break
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            nursery.cancel_scope.cancel()
    return messages / wall, cpu / messages


async def bare_rate(messages: int, request: int, response: int) -> float:
    """Request/response loop over a bare trio TCP stream with the same sizes."""
    done = trio.Event()

    async def serve(stream: trio.SocketStream) -> None:
        pending = 0
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            pending += len(data)
            while pending >= request:
                pending -= request
                await stream.send_all(b"r" * response)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        body = b"q" * request
        started = time.perf_counter()
        for _ in range(messages):
            await client.send_all(body)
            got = 0
            while got < response:
                got += len(await client.receive_some(65536))
        elapsed = time.perf_counter() - started
        await client.aclose()
        done.set()
        nursery.cancel_scope.cancel()
    return messages / elapsed


async def msrp_bulk(size: int, transport: str) -> float:
    """MB/s of one message of `size` bytes over MSRP."""
    body = os.urandom(1024 * 1024) * (size // (1024 * 1024))
    with tempfile.TemporaryDirectory() as state:
        async with trio.open_nursery() as nursery:
            sender, receiver = await msrp_pair(nursery, Path(state), transport)
            started = time.perf_counter()
            sender.send_message(body, "application/octet-stream", failure_report="no")
            await drain(receiver, MessageReceived, 1)
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
    return size / elapsed / 1e6


async def bare_bulk(size: int, tls: bool) -> float:
    """MB/s of the same bytes over a bare trio TCP (or TLS) stream."""
    block = os.urandom(1024 * 1024)
    with tempfile.TemporaryDirectory() as state:
        identity = ensure_identity(state)

        async def serve(stream: trio.abc.Stream) -> None:
            if tls:
                stream = trio.SSLStream(stream, server_context(identity), server_side=True)
            got = 0
            while got < size:
                data = await stream.receive_some(256 * 1024)
                if not data:
                    return
                got += len(data)
            await stream.send_all(b"k")

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            started = time.perf_counter()
            client: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
            if tls:
                client = trio.SSLStream(client, peer_context(identity), server_hostname=None)
            for _ in range(size // len(block)):
                await client.send_all(block)
            await client.receive_some(1)
            elapsed = time.perf_counter() - started
            await client.aclose()
            nursery.cancel_scope.cancel()
    return size / elapsed / 1e6


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.msrp_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=200, help="chat text bytes")
    parser.add_argument("--big-mb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    # The sizes the baseline moves: one CPIM-wrapped SEND out and its 200 back, as measured.
    payloads = ChatPayloads(ALICE, BOB, accept_types=LOCAL_ACCEPT_TYPES,
                            accept_wrapped_types=LOCAL_ACCEPT_WRAPPED_TYPES)
    wrapped = payloads.message(b"x" * args.size, "text/plain", message_id="bench0",
                               now=datetime.datetime.now(datetime.UTC)).body
    request, response = len(wrapped) + 200, 120  # + the MSRP start line, headers, end-line
    chat, cpu, bare = [], [], []
    bulk: dict[str, list[float]] = {k: [] for k in ("msrp-tcp", "bare-tcp", "msrp-tls",
                                                    "bare-tls")}
    size = args.big_mb * 1024 * 1024
    for _ in range(args.rounds):
        rate, per = trio.run(chat_rate, args.messages, args.size)
        chat.append(rate)
        cpu.append(per)
        bare.append(trio.run(bare_rate, args.messages, request, response))
        bulk["msrp-tcp"].append(trio.run(msrp_bulk, size, "tcp"))
        bulk["bare-tcp"].append(trio.run(bare_bulk, size, False))
        bulk["msrp-tls"].append(trio.run(msrp_bulk, size, "tls"))
        bulk["bare-tls"].append(trio.run(bare_bulk, size, True))
    print(f"chat: {median(chat):,.0f} messages/s ({args.size} B text, CPIM, one at a time), "
          f"bare TCP loop {median(bare):,.0f}/s: {median(chat) / median(bare):.0%} "
          f"(target >= 50%); CPU {median(cpu) * 1e6:,.0f} us per message (both ends)")
    for transport in ("tcp", "tls"):
        ours, theirs = median(bulk[f"msrp-{transport}"]), median(bulk[f"bare-{transport}"])
        print(f"{args.big_mb} MB over MSRP {transport.upper()}: {ours:,.0f} MB/s, bare "
              f"{theirs:,.0f} MB/s: {ours / theirs:.0%}"
              + (" (target >= 50%)" if transport == "tls" else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
