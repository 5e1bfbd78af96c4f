"""The transports from the outside: raw UDP and TCP sockets against a running SipStack."""

from __future__ import annotations

import socket

import pytest
import trio

from sipd.sip.trio.stack import open_sip_stack
from tests.harness.sip_stack import (
    LOOPBACK,
    Recorder,
    Target,
    config,
    message_request,
    recv_datagram,
)


def options(via_port: int, *, rport: bool = True, branch: str = "z9hG4bKraw1",
            content_length: bool = True, extra: str = "", user: str = "") -> bytes:
    user_part = f"{user}@" if user else ""
    lines = [
        f"OPTIONS sip:{user_part}{LOOPBACK} SIP/2.0",
        f"Via: SIP/2.0/UDP {LOOPBACK}:{via_port};branch={branch}{';rport' if rport else ''}",
        "Max-Forwards: 70",
        "From: <sip:probe@example.test>;tag=probe1",
        "To: <sip:stack@example.test>",
        f"Call-ID: {branch}@test",
        "CSeq: 1 OPTIONS",
    ]
    if extra:
        lines.append(extra)
    if content_length:
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def udp_peer() -> trio.socket.SocketType:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await sock.bind((LOOPBACK, 0))
    return sock


async def tcp_peer(port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream(LOOPBACK, port)


async def read_until_closed(stream: trio.SocketStream, timeout: float = 5.0) -> bytes:
    data = b""
    with trio.fail_after(timeout):
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return data
            data += chunk


async def test_malformed_datagram_is_answered_400_to_its_source():
    async with open_sip_stack(config()) as stack:
        peer = await udp_peer()
        bad = options(1).replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")
        await peer.sendto(bad, (LOOPBACK, stack.ports["udp"]))
        answer = await recv_datagram(peer)
    assert answer.startswith(b"SIP/2.0 400 ")
    assert b"Call-ID: z9hG4bKraw1@test" in answer


async def test_wrong_sip_version_is_answered_505():
    async with open_sip_stack(config()) as stack:
        peer = await udp_peer()
        bad = options(1).replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1)
        await peer.sendto(bad, (LOOPBACK, stack.ports["udp"]))
        answer = await recv_datagram(peer)
    assert answer.startswith(b"SIP/2.0 505 ")


async def test_unanswerable_garbage_is_dropped_and_the_stack_goes_on():
    async with open_sip_stack(config()) as stack:
        peer = await udp_peer()
        port = peer.getsockname()[1]
        for junk in (b"\x00\x01garbage", b"SIP/2.0 200 OK\r\n\r\n", b"\r\n\r\n", b"X" * 3000):
            await peer.sendto(junk, (LOOPBACK, stack.ports["udp"]))
        await peer.sendto(options(port), (LOOPBACK, stack.ports["udp"]))
        answer = await recv_datagram(peer)
    assert answer.startswith(b"SIP/2.0 200 OK")  # the first answer is to the good request


async def test_oversized_datagram_is_dropped_or_answered_513():
    async with open_sip_stack(config(max_message_bytes=800)) as stack:
        peer = await udp_peer()
        port = peer.getsockname()[1]
        padding = "X-Padding: " + "p" * 900
        # head longer than the limit: nothing readable to answer
        await peer.sendto(options(port, branch="z9hG4bKbig1", extra=padding),
                          (LOOPBACK, stack.ports["udp"]))
        # a readable head with a body past the limit: 513
        big_body = options(port, branch="z9hG4bKbig2", content_length=False).replace(
            b"\r\n\r\n",
            b"\r\nContent-Type: text/plain\r\nContent-Length: 900\r\n\r\n") + b"b" * 900
        await peer.sendto(big_body, (LOOPBACK, stack.ports["udp"]))
        first = await recv_datagram(peer)
        await peer.sendto(options(port, branch="z9hG4bKsmall"), (LOOPBACK, stack.ports["udp"]))
        second = await recv_datagram(peer)
    assert first.startswith(b"SIP/2.0 513 ") and b"z9hG4bKbig2" in first
    assert second.startswith(b"SIP/2.0 200 ") and b"z9hG4bKsmall" in second


async def test_rport_sends_the_response_to_the_source_port():
    async with open_sip_stack(config()) as stack:
        peer = await udp_peer()
        elsewhere = await udp_peer()  # the port the Via names
        await peer.sendto(options(elsewhere.getsockname()[1], rport=True),
                          (LOOPBACK, stack.ports["udp"]))
        answer = await recv_datagram(peer)
    via = [line for line in answer.split(b"\r\n") if line.startswith(b"Via:")][0]
    assert f"rport={peer.getsockname()[1]}".encode() in via
    assert b"received=127.0.0.1" in via


async def test_without_rport_the_response_goes_to_the_via_port():
    async with open_sip_stack(config()) as stack:
        peer = await udp_peer()
        via_socket = await udp_peer()
        await peer.sendto(options(via_socket.getsockname()[1], rport=False),
                          (LOOPBACK, stack.ports["udp"]))
        answer = await recv_datagram(via_socket)
    assert answer.startswith(b"SIP/2.0 200 ")


async def test_garbage_on_tcp_gets_400_and_the_connection_closes():
    async with open_sip_stack(config()) as stack:
        stream = await tcp_peer(stack.ports["tcp"])
        # no Content-Length on a stream: the framing is lost
        await stream.send_all(options(1, content_length=False))
        data = await read_until_closed(stream)
    assert data.startswith(b"SIP/2.0 400 ")
    assert b"Content-Length" in data.split(b"\r\n")[0]  # the reason says what was wrong


async def test_unanswerable_garbage_on_tcp_closes_the_connection():
    async with open_sip_stack(config()) as stack:
        stream = await tcp_peer(stack.ports["tcp"])
        await stream.send_all(b"this is not SIP\r\n\r\n")
        data = await read_until_closed(stream)
    assert data == b""


async def test_malformed_message_on_tcp_is_answered_and_the_connection_stays():
    async with open_sip_stack(config()) as stack:
        stream = await tcp_peer(stack.ports["tcp"])
        bad = options(1, branch="z9hG4bKbad").replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
        await stream.send_all(bad + options(1, branch="z9hG4bKgood"))
        data = b""
        with trio.fail_after(5):
            while data.count(b"SIP/2.0 ") < 2 or not data.endswith(b"\r\n\r\n"):
                data += await stream.receive_some(65536)
        await stream.aclose()
    first, second = data.split(b"SIP/2.0 ")[1:3]
    assert first.startswith(b"400 ") and b"z9hG4bKbad" in first
    assert second.startswith(b"200 ") and b"z9hG4bKgood" in second


async def test_crlf_ping_on_tcp_gets_crlf():
    async with open_sip_stack(config()) as stack:
        stream = await tcp_peer(stack.ports["tcp"])
        await stream.send_all(b"\r\n\r\n")
        with trio.fail_after(5):
            pong = await stream.receive_some(100)
        # the connection still carries SIP after the ping
        await stream.send_all(options(1))
        with trio.fail_after(5):
            answer = await stream.receive_some(65536)
        await stream.aclose()
    assert pong == b"\r\n"
    assert answer.startswith(b"SIP/2.0 200 ")


async def test_responses_to_tcp_requests_go_back_on_the_connection():
    async with open_sip_stack(config()) as stack:
        stream = await tcp_peer(stack.ports["tcp"])
        # the Via names a port nobody listens on: the connection is what counts
        await stream.send_all(options(9, rport=False) + options(9, branch="z9hG4bKtwo"))
        data = b""
        with trio.fail_after(5):
            while data.count(b"SIP/2.0 200") < 2:
                data += await stream.receive_some(65536)
        await stream.aclose()
    assert b"z9hG4bKraw1" in data and b"z9hG4bKtwo" in data


async def test_sip_tcp_sockets_have_nodelay():
    async with open_sip_stack(config()) as a, open_sip_stack(config()) as b:
        b.set_request_handler(Recorder())
        await a.send_request(message_request(), Target("tcp", LOOPBACK, LOOPBACK,
                                                       b.ports["tcp"]))
        for stack in (a, b):
            (connection,) = stack.transports.connections
            sock = connection.stream.socket
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_outgoing_connection_sends_keepalive_pings():
    with trio.socket.socket() as listener:
        await listener.bind((LOOPBACK, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        async with open_sip_stack(config(keepalive_interval=0.1)) as stack:
            async with trio.open_nursery() as nursery:
                async def send():
                    try:
                        await stack.send_request(message_request(),
                                                 Target("tcp", LOOPBACK, LOOPBACK, port))
                    except Exception:  # noqa: BLE001 - nobody answers; not the point
                        pass
                nursery.start_soon(send)
                peer, _ = await listener.accept()
                stream = trio.SocketStream(peer)
                data = b""
                with trio.fail_after(5):
                    while not data.endswith(b"\r\n\r\n\r\n\r\n"):
                        data += await stream.receive_some(65536)
                    await stream.send_all(b"\r\n")  # the pong
                    (connection,) = stack.transports.connections
                    while connection.pongs == 0:
                        await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
            await stream.aclose()
    assert data.startswith(b"MESSAGE ")


async def test_idle_connections_are_closed():
    async with open_sip_stack(config(idle_timeout=0.2)) as stack:
        stream = await tcp_peer(stack.ports["tcp"])
        await stream.send_all(options(1))
        data = await read_until_closed(stream)
        assert data.startswith(b"SIP/2.0 200 ")
        assert stack.transports.connections == []


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_request_from_a_raw_peer_reaches_the_handler(transport):
    recorder = Recorder()
    async with open_sip_stack(config()) as stack:
        stack.set_request_handler(recorder)
        request = message_request(port=stack.ports[transport])
        request.headers.add_first("Via", f"SIP/2.0/{transport.upper()} {LOOPBACK}:9;"
                                         f"branch=z9hG4bKraw9;rport")
        if transport == "udp":
            peer = await udp_peer()
            await peer.sendto(request.to_bytes(), (LOOPBACK, stack.ports["udp"]))
            answer = await recv_datagram(peer)
        else:
            stream = await tcp_peer(stack.ports["tcp"])
            await stream.send_all(request.to_bytes())
            with trio.fail_after(5):
                answer = await stream.receive_some(65536)
            await stream.aclose()
    assert answer.startswith(b"SIP/2.0 200 ")
    assert recorder.seen[0].request.body == b"hello"


async def test_message_over_the_limit_on_tcp_gets_513_and_the_connection_closes():
    async with open_sip_stack(config(max_message_bytes=800)) as stack:
        stream = await tcp_peer(stack.ports["tcp"])
        big = options(1).replace(b"Content-Length: 0",
                                 b"Content-Type: text/plain\r\nContent-Length: 900")
        await stream.send_all(big + b"b" * 900)
        data = await read_until_closed(stream)
    assert data.startswith(b"SIP/2.0 513 ")


async def test_response_goes_over_a_new_connection_when_the_request_s_is_gone():
    """RFC 3261 §18.2.2: the connection the request came on closed, so the response goes to
    the Via's sent-by over a connection the stack opens."""
    release = trio.Event()

    async def answer_late(incoming):
        await release.wait()
        await incoming.respond(200)

    with trio.socket.socket() as listener:
        await listener.bind((LOOPBACK, 0))
        listener.listen(1)
        sent_by = listener.getsockname()[1]
        async with open_sip_stack(config()) as stack:
            stack.set_request_handler(answer_late)
            request = message_request()
            request.headers.add_first(
                "Via", f"SIP/2.0/TCP {LOOPBACK}:{sent_by};branch=z9hG4bKlate")
            stream = await tcp_peer(stack.ports["tcp"])
            await stream.send_all(request.to_bytes())
            with trio.fail_after(5):
                while not stack.layer.transactions:
                    await trio.sleep(0.01)
            await stream.aclose()
            with trio.fail_after(5):
                while stack.transports.connections:
                    await trio.sleep(0.01)
            release.set()
            with trio.fail_after(5):
                peer, _ = await listener.accept()
                back = trio.SocketStream(peer)
                answer = await back.receive_some(65536)
            await back.aclose()
    assert answer.startswith(b"SIP/2.0 200 ") and b"z9hG4bKlate" in answer


async def test_a_connection_a_dialog_keeps_is_not_closed_when_idle():
    """A call's connection carries nothing for minutes between its INVITE and its BYE: the
    dialog keeps it (stack.keep_connection), and the idle timeout leaves it alone until the
    dialog lets it go."""
    async with open_sip_stack(config(idle_timeout=0.2)) as stack:
        stream = await tcp_peer(stack.ports["tcp"])
        await stream.send_all(options(1))
        with trio.fail_after(5):
            assert (await stream.receive_some(65536)).startswith(b"SIP/2.0 200 ")
            while not stack.transports.connections:
                await trio.sleep(0.01)
        [connection] = stack.transports.connections
        stack.keep_connection(connection)
        await trio.sleep(1.0)  # five idle timeouts
        assert stack.transports.connections == [connection]
        stack.release_connection(connection)
        data = await read_until_closed(stream)
        assert data == b"" and stack.transports.connections == []


# -- bounded connections from peers -----------------------------------------------------------

async def tcp_peer_from(source: str, port: int) -> trio.SocketStream:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    await sock.bind((source, 0))
    await sock.connect((LOOPBACK, port))
    return trio.SocketStream(sock)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


async def test_a_connection_without_a_complete_message_is_closed_after_the_timeout():
    async with open_sip_stack(config(message_timeout=0.3)) as stack:
        silent = await tcp_peer(stack.ports["tcp"])
        half = await tcp_peer(stack.ports["tcp"])
        talker = await tcp_peer(stack.ports["tcp"])
        await half.send_all(options(1)[:30])
        await talker.send_all(options(2, branch="z9hG4bKtalk"))
        assert (await talker.receive_some(65536)).startswith(b"SIP/2.0 200 ")
        assert await read_until_closed(silent) == b""
        assert await read_until_closed(half) == b""
        await trio.sleep(0.4)  # past the timeout: the connection that spoke stays
        assert len(stack.transports.connections) == 1
        await talker.send_all(options(3, branch="z9hG4bKtalk2")[:40])  # begun, not finished
        assert await read_until_closed(talker) == b""
        for stream in (silent, half, talker):
            await stream.aclose()


async def test_past_the_per_address_cap_a_connection_is_closed_at_once():
    async with open_sip_stack(config(max_connections_per_address=2)) as stack:
        port = stack.ports["tcp"]
        kept = [await tcp_peer_from("127.0.0.1", port) for _ in range(2)]
        await wait_for(lambda: len(stack.transports.connections) == 2)
        extra = await tcp_peer_from("127.0.0.1", port)
        assert await read_until_closed(extra) == b""
        other = await tcp_peer_from("127.0.0.2", port)  # another address has its own count
        await other.send_all(options(1))
        assert (await other.receive_some(65536)).startswith(b"SIP/2.0 200 ")
        state = stack.transports.state()["connections"]
        assert state["refused"] == 1 and state["inbound"] == 3
        for stream in (*kept, extra, other):
            await stream.aclose()


async def test_when_full_a_new_connection_replaces_the_oldest_silent_one_or_is_refused():
    async with open_sip_stack(config(max_connections=2)) as stack:
        port = stack.ports["tcp"]
        talker = await tcp_peer(port)
        await talker.send_all(options(1))
        assert (await talker.receive_some(65536)).startswith(b"SIP/2.0 200 ")
        silent = await tcp_peer(port)
        await wait_for(lambda: len(stack.transports.connections) == 2)
        newcomer = await tcp_peer(port)  # takes the silent one's place
        assert await read_until_closed(silent) == b""
        await newcomer.send_all(options(2, branch="z9hG4bKnew"))
        assert (await newcomer.receive_some(65536)).startswith(b"SIP/2.0 200 ")
        late = await tcp_peer(port)  # both places hold peers that spoke: refused
        assert await read_until_closed(late) == b""
        state = stack.transports.state()["connections"]
        assert (state["replaced"], state["refused"]) == (1, 1)
        for stream in (talker, silent, newcomer, late):
            await stream.aclose()


async def test_connections_are_taken_only_while_the_descriptor_budget_agrees():
    allowed = [True]
    async with open_sip_stack(config(), may_accept=lambda: allowed[0]) as stack:
        port = stack.ports["tcp"]
        first = await tcp_peer(port)
        await first.send_all(options(1))
        assert (await first.receive_some(65536)).startswith(b"SIP/2.0 200 ")
        allowed[0] = False
        refused = await tcp_peer(port)
        assert await read_until_closed(refused) == b""
        assert stack.transports.state()["connections"]["refused"] == 1
        for stream in (first, refused):
            await stream.aclose()


async def test_the_udp_receive_buffer_is_sized_and_its_drops_are_reported():
    async with open_sip_stack(config(udp_receive_buffer=65536)) as stack:
        udp = stack.transports.state()["udp"]
        assert udp["receive_buffer"] >= 65536 and udp["drops"] == 0
