"""An ICE call between two sipd daemons whose media can only go through a TURN relay (coturn).

Both daemons have nat.ice = true and nat.turn.* naming one coturn on 127.0.0.1 (relay
addresses on 127.0.0.1 too). Their media address is loopback, where pjnath gathers no host
candidate (and a server-reflexive one would lack its host base): the relayed candidates are
the only ones, so media can take no path but coturn's. A calls B through a TCP tap that
keeps the INVITE and its 200, so the test sees the SDPs the B2BUAs put on the outside leg.

What proves the relay carried the tones (besides each end hearing the other's):
- both SDPs offer only `typ relay` candidates, with ICE credentials, and the default
  candidate (c= and m= port, RFC 8839 §4.2.1.1) is one of them, on coturn's relay ports;
- each worker's remote RTP address is the other side's relay address (in coturn's range);
- coturn reports, as each allocation closes, peer traffic in bytes both ways.
"""

from __future__ import annotations

import re

import pytest
import trio

from sipctl.client import RpcCallError
from sipd.sessions import sdp
from sipd.sessions.streams.audio import sdp as sdp_b2bua
from tests.harness.audio import exchange_tones, heard_each_other
from tests.harness.peer import DaemonPeer, call_and_answer, daemon_settings, open_peer
from tests.harness.process import running
from tests.harness.waits import wait_until
from tests.peers.coturn import Coturn

interop = pytest.mark.interop

# A pjsua ICE offer (relayed candidates only, as on loopback) and a remote's answer with its
# ICE credentials at session level (RFC 8839 allows both levels).
WORKER_ICE_OFFER = (
    b"v=0\r\no=- 3 3 IN IP4 127.0.0.1\r\ns=pjmedia\r\nb=AS:84\r\nt=0 0\r\na=X-nat:0\r\n"
    b"m=audio 30832 RTP/AVP 0 120\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\n"
    b"a=rtcp:30825 IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=ssrc:43 cname:5a89\r\n"
    b"a=ice-ufrag:6ebf7fb2\r\na=ice-pwd:4cd9c28b25b9b15d61c1c965\r\n"
    b"a=candidate:R7f000001 1 UDP 16777215 127.0.0.1 30832 typ relay raddr 127.0.0.1 "
    b"rport 21076\r\n"
    b"a=candidate:R7f000001 2 UDP 16777214 127.0.0.1 30825 typ relay raddr 127.0.0.1 "
    b"rport 21061\r\n"
    b"a=remote-candidates:1 127.0.0.1 30824 2 127.0.0.1 30822\r\n")
REMOTE_ICE_ANSWER = (
    b"v=0\r\no=bob 7 7 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
    b"a=ice-ufrag:Qx7b\r\na=ice-pwd:asd88fgpdd777uzjYhagZgasd\r\na=ice-options:ice2\r\n"
    b"m=audio 49170 RTP/AVP 0\r\na=rtcp:49171\r\n"
    b"a=candidate:1 1 UDP 2130706431 192.0.2.9 49170 typ host\r\n"
    b"a=candidate:1 2 UDP 2130706430 192.0.2.9 49171 typ host\r\n"
    b"m=message 2855 TCP/TLS/MSRP *\r\na=path:msrps://192.0.2.9:2855/x;tcp\r\n")

CANDIDATE = re.compile(r"^a=candidate:\S+ (\d) (\S+) \d+ (\S+) (\d+) typ (\S+)", re.M)
PEER_USAGE = re.compile(r"peer usage: .*?rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)")


@pytest.fixture(scope="module")
def turn(tmp_path_factory):
    with Coturn(tmp_path_factory.mktemp("coturn"), users={"alice": "s3cret"}) as server:
        yield server


@pytest.fixture(scope="module")
def ice_daemons(tmp_path_factory, turn):
    settings = {**daemon_settings(), "nat.ice": True,
                "nat.turn.server": f"127.0.0.1:{turn.port}",
                "nat.turn.username": "alice", "nat.turn.password": "s3cret"}
    with running(tmp_path_factory.mktemp("ice"), settings) as started:
        yield started


def ice_lines(text: str) -> list[str]:
    return [line for line in text.split("\r\n") if line.startswith(
        ("a=ice-", "a=candidate:", "a=remote-candidates:", "a=rtcp:", "m=audio", "c=IN"))]


def test_the_b2bua_passes_ice_through_both_ways():
    """Sans-I/O: the worker's ICE lines reach the outside unchanged with the c=/m= default
    candidate they describe, and a remote's session-level ICE lines reach the worker."""
    versions = sdp.SessionVersion("127.0.0.1")
    outside = sdp_b2bua.outside_offer(sdp_b2bua.parse(WORKER_ICE_OFFER), versions).decode()
    assert ice_lines(outside) == ice_lines(WORKER_ICE_OFFER.decode())
    assert "a=ssrc" not in outside and "X-nat" not in outside  # sanitised all the same

    to_worker = sdp_b2bua.for_worker(sdp_b2bua.parse(REMOTE_ICE_ANSWER),
                                     sdp.SessionVersion("127.0.0.1")).decode()
    assert ice_lines(to_worker) == ice_lines(REMOTE_ICE_ANSWER.decode())
    for line in ("a=ice-ufrag:Qx7b", "a=ice-pwd:asd88fgpdd777uzjYhagZgasd",
                 "a=ice-options:ice2", "c=IN IP4 192.0.2.9"):
        assert line in to_worker.split("\r\n"), (line, to_worker)
    assert "m=message" not in to_worker


class SipTap:
    """A TCP relay in front of a SIP listener that keeps every byte it passes, both ways.

    Responses come back on the connection of their request (RFC 3261 §18), so the tap sees
    the INVITE and its answers; in-dialog requests go to the Contacts, around it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.upstream = bytearray()  # caller -> callee
        self.downstream = bytearray()  # callee -> caller

    async def serve(self, nursery: trio.Nursery) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, self._relay, listeners)

    async def _relay(self, caller: trio.SocketStream) -> None:
        callee = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        async with caller, callee, trio.open_nursery() as nursery:
            nursery.start_soon(self._pipe, caller, callee, self.upstream, nursery.cancel_scope)
            nursery.start_soon(self._pipe, callee, caller, self.downstream, nursery.cancel_scope)

    @staticmethod
    async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, kept: bytearray,
                    done: trio.CancelScope) -> None:
        try:
            async for data in source:
                kept += data
                await sink.send_all(data)
        except trio.BrokenResourceError:
            pass
        done.cancel()


def sip_bodies(stream: bytes, start_line: str) -> list[str]:
    """The bodies of the messages in a SIP byte stream whose start line begins so."""
    bodies, rest = [], bytes(stream)
    while b"\r\n\r\n" in rest:
        head, rest = rest.split(b"\r\n\r\n", 1)
        head = head.lstrip(b"\r\n")
        length = re.search(rb"^(?:content-length|l)\s*:\s*(\d+)", head, re.M | re.I)
        size = int(length.group(1)) if length else 0
        body, rest = rest[:size], rest[size:]
        if head.decode(errors="replace").startswith(start_line):
            bodies.append(body.decode(errors="replace"))
    return bodies


def check_relay_only_sdp(sdp: str, turn: Coturn) -> list[tuple[str, int]]:
    """Assert that the audio of `sdp` offers relayed candidates only, with ICE credentials,
    and that its default candidate is one of them; returns the RTP candidates' addresses."""
    assert "a=ice-ufrag:" in sdp and "a=ice-pwd:" in sdp, sdp
    candidates = CANDIDATE.findall(sdp)
    assert candidates, sdp
    assert {kind for *_, kind in candidates} == {"relay"}, sdp
    for _, transport, address, port, _ in candidates:
        assert transport.upper() == "UDP" and address == "127.0.0.1", sdp
        assert turn.min_relay_port <= int(port) <= turn.max_relay_port, (port, sdp)
    rtp = [(address, int(port)) for component, _, address, port, _ in candidates
           if component == "1"]
    media = re.search(r"^m=audio (\d+) ", sdp, re.M)
    connection = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
    assert media and connection, sdp
    assert (connection.group(1), int(media.group(1))) in rtp, sdp  # RFC 8839 default candidate
    return rtp


@interop
async def test_ice_call_goes_through_the_turn_relay(ice_daemons, turn, tmp_path):
    tap = SipTap(0)
    async with open_peer(ice_daemons[0]) as a, open_peer(ice_daemons[1]) as b, \
            trio.open_nursery() as nursery:
        tap.target_port = b.ports["tcp"]
        await tap.serve(nursery)
        b_via_tap = DaemonPeer(b.daemon, b.rpc, b.events, {**b.ports, "tcp": tap.port})
        a_id, b_id = await call_and_answer(a, b_via_tap, "tcp")

        offer = sip_bodies(tap.upstream, "INVITE ")
        answer = sip_bodies(tap.downstream, "SIP/2.0 200 ")
        assert offer and answer, (bytes(tap.upstream), bytes(tap.downstream))
        a_relays = check_relay_only_sdp(offer[0], turn)
        b_relays = check_relay_only_sdp(answer[0], turn)

        heard = await exchange_tones(a, a_id, b, b_id, tmp_path)

        # Each worker sends to the other's relayed address (RFC 8445: to the selected pair's
        # remote candidate): coturn's relay ports, as the SDPs offered them.
        media_a = (await a.call("sessions.get", id=a_id))["media"]
        media_b = (await b.call("sessions.get", id=b_id))["media"]
        assert address_of(media_a["remote_rtp"]) in b_relays, (media_a, b_relays)
        assert address_of(media_b["remote_rtp"]) in a_relays, (media_b, a_relays)

        await a.call("sessions.end", id=a_id)
        await a.state(a_id, "ended")
        await b.state(b_id, "ended")
        await heard_each_other(heard)
        nursery.cancel_scope.cancel()

    # Each end's allocation carried the tone to the other's: coturn counts peer bytes both
    # ways when an allocation closes (the workers release theirs when the call ends).
    def relayed() -> list[tuple[int, ...]]:
        usage = [tuple(map(int, found)) for found in PEER_USAGE.findall(turn.log_text())]
        busy = [u for u in usage if u[1] > 8000 and u[3] > 8000]  # > 1 s of PCMU each way
        return busy if len(busy) >= 2 else []

    await trio.to_thread.run_sync(lambda: wait_until(
        relayed, timeout=30, what="coturn to report the relayed media",
        on_timeout=lambda: turn.log_text()[-3000:], interval=0.2))


@interop
async def test_ice_without_turn_on_loopback_says_what_to_change(tmp_path):
    settings = {**daemon_settings(), "nat.ice": True}
    with running(tmp_path, settings, names=("solo",)) as (daemon,):
        async with open_peer(daemon) as peer:
            failure = await start_failure(peer, "sip:nobody@127.0.0.1:9")
    assert "no candidate" in failure and "nat.turn.server" in failure, failure
    assert "rtp.media_address" in failure and "nat.ice" in failure, failure


async def start_failure(peer: DaemonPeer, uri: str) -> str:
    """The reason a call that cannot start gives, as an RPC error or as its end."""
    try:
        started = await peer.call("sessions.start", account="local", to=uri)
    except RpcCallError as exc:
        return str(exc)
    ended = await peer.events.wait("session.state", id=started["id"], state="failed")
    return str(ended.get("reason"))


def address_of(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


@interop
async def test_a_turn_server_refusing_us_fails_the_call_with_its_reason(turn, tmp_path):
    settings = {**daemon_settings(), "nat.ice": True,
                "nat.turn.server": f"127.0.0.1:{turn.port}",
                "nat.turn.username": "alice", "nat.turn.password": "wrong"}
    with running(tmp_path, settings, names=("solo",)) as (daemon,):
        async with open_peer(daemon) as peer:
            failure = await start_failure(peer, "sip:nobody@127.0.0.1:9")
    assert "TURN server" in failure and "Unauthorized" in failure, failure
