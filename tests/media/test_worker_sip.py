"""What a media worker puts on the internal SIP leg, read off the wire by a raw TCP peer.

The internal leg is loopback and the outside leg does the session refreshes, so the worker
must not ask for session timers (RFC 4028) in its INVITE nor grant them in its 200.
"""

from __future__ import annotations

import re
import secrets

import trio

from tests.media.conftest import EVENT_TIMEOUT

TIMER_HEADERS = re.compile(r"^(session-expires|x|min-se)\s*:", re.I | re.M)


class Reader:
    """SIP messages off a stream, one at a time; returns each one's head."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def next_head(self) -> str:
        with trio.fail_after(EVENT_TIMEOUT):
            while b"\r\n\r\n" not in self.buffer.lstrip(b"\r\n"):
                chunk = await self.stream.receive_some(65536)
                assert chunk, f"connection closed after {self.buffer!r}"
                self.buffer += chunk
            head, rest = self.buffer.lstrip(b"\r\n").split(b"\r\n\r\n", 1)
            length = re.search(rb"^(?:content-length|l)\s*:\s*(\d+)", head, re.I | re.M)
            size = int(length.group(1)) if length else 0
            while len(rest) < size:
                chunk = await self.stream.receive_some(65536)
                assert chunk, "connection closed inside a body"
                rest += chunk
            self.buffer = rest[size:]
        return head.decode(errors="replace")


def supported(head: str) -> set[str]:
    options: set[str] = set()
    for value in re.findall(r"^(?:supported|k)\s*:(.*)$", head, re.I | re.M):
        options |= {option.strip().lower() for option in value.split(",")}
    return options


async def test_the_workers_invite_asks_for_no_session_timer(start_worker) -> None:
    worker = await start_worker("a")
    arrived: list[str] = []
    done = trio.Event()

    async def uas(stream: trio.SocketStream) -> None:
        async with stream:
            arrived.append(await Reader(stream).next_head())
            done.set()

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, uas, listeners)
        await worker.request("call", uri=f"sip:peer@127.0.0.1:{port};transport=tcp",
                             session="timers")
        with trio.fail_after(EVENT_TIMEOUT):
            await done.wait()
        nursery.cancel_scope.cancel()

    invite = arrived[0]
    assert invite.startswith("INVITE "), invite
    assert not TIMER_HEADERS.search(invite), invite
    assert "timer" not in supported(invite), invite


async def test_the_workers_200_grants_no_session_timer(start_worker) -> None:
    worker = await start_worker("b")  # answers at once (auto_answer)
    host, port = worker.process.sip["tcp"].rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    local_port = stream.socket.getsockname()[1]
    offer = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    call_id = secrets.token_hex(8)
    invite = (f"INVITE sip:media@{host}:{port};transport=tcp SIP/2.0\r\n"
              f"Via: SIP/2.0/TCP 127.0.0.1:{local_port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
              "Max-Forwards: 70\r\n"
              f"From: <sip:test@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
              f"To: <sip:media@{host}>\r\n"
              f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
              f"Contact: <sip:test@127.0.0.1:{local_port};transport=tcp>\r\n"
              "Supported: timer\r\n"  # we could take timers; the worker must not want them
              "Content-Type: application/sdp\r\n"
              f"Content-Length: {len(offer)}\r\n\r\n{offer}")
    async with stream:
        await stream.send_all(invite.encode())
        reader = Reader(stream)
        response = await reader.next_head()
        while re.match(r"SIP/2\.0 1\d\d ", response):  # 100 Trying, 180 Ringing
            response = await reader.next_head()
    assert response.startswith("SIP/2.0 200 "), response
    assert not TIMER_HEADERS.search(response), response
    assert "timer" not in supported(response), response
    assert not re.search(r"^require\s*:.*timer", response, re.I | re.M), response
