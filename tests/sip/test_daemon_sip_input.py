"""What the running daemon does with SIP input from the network: valid OPTIONS, unknown users,
garbage, oversized messages, bursts, and TCP clients that vanish mid-message.

Every message here is written by the test and names only 127.0.0.1 (Via with rport), so the
daemon's answers come back to the test's own socket and nothing leaves loopback: no network
namespace is needed (the RFC 4475 messages, which name foreign hosts, are in
test_rfc4475_daemon.py). After each test the daemon must still run, answer RPC and have no
Traceback in its log.
"""

from __future__ import annotations

import random
import socket
import struct
import time
import uuid

import pytest

from tests.harness.process import SipdProcess

from .rfc4475_driver import (
    UdpPeer,
    ack_for,
    describe,
    options,
    request_parts,
    rpc,
    stream_messages,
    tcp_read,
)

WAIT = 5.0  # seconds, at most, for an answer that should come (it takes milliseconds)


# -- helpers -------------------------------------------------------------------------------------

def sip_ports(daemon: SipdProcess) -> dict[str, int]:
    return rpc(daemon.endpoint, "system.state")["sip"]["ports"]


def assert_healthy(daemon: SipdProcess) -> None:
    assert daemon.proc is not None and daemon.proc.poll() is None, daemon.log()[-4000:]
    assert rpc(daemon.endpoint, "system.version")["name"] == "sipd"
    log = daemon.log()
    if "Traceback" in log:
        lines = log.splitlines()
        first = next(i for i, line in enumerate(lines) if "Traceback" in line)
        pytest.fail("Traceback in the daemon's log:\n" + "\n".join(lines[max(0, first - 3):
                                                                         first + 20]))


def request(method: str, uri: str, port: int, *, transport: str = "UDP",
            extra: str = "", body: bytes = b"", call_id: str | None = None,
            content_length: int | None = None) -> bytes:
    """A well-formed request from 127.0.0.1:`port` (text with \\n line ends is fine)."""
    call_id = call_id or f"{uuid.uuid4().hex}@127.0.0.1"
    length = len(body) if content_length is None else content_length
    head = (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:tester@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <{uri}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: 1 {method}\r\n")
    for line in extra.strip("\n").splitlines():
        head += line + "\r\n"
    return (head + f"Content-Length: {length}\r\n\r\n").encode() + body


class Udp(UdpPeer):
    """A UDP peer on a free loopback port, talking to the daemon's SIP port."""

    def __init__(self, daemon_port: int) -> None:
        super().__init__(daemon_port, sender_port=0)

    def __enter__(self) -> Udp:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def answers(self, data: bytes | None) -> tuple[list[dict], dict | None]:
        """Sends `data` then a valid OPTIONS; what came back before the OPTIONS was answered
        (decoded), and the OPTIONS' own answer."""
        outcome = self.exchange(data, f"probe-{uuid.uuid4().hex}")
        assert outcome["send_error"] is None, outcome["send_error"]
        return ([describe(packet, "udp") for packet, _ in outcome["received"]],
                outcome["probe"])

    def final(self, data: bytes) -> dict:
        received, probe = self.answers(data)
        finals = [r for r in received if r.get("status", 0) >= 200]
        assert probe is not None, "the daemon stopped answering"
        assert finals, f"no final answer to:\n{data[:500]!r}\ngot {received}"
        return finals[0]


def tcp_exchange(port: int, data: bytes, *, until_close: bool = False,
                 wait: float = WAIT) -> tuple[list[dict], bool]:
    """Sends `data` on a new connection; reads until a final response came (or, with
    `until_close`, until the daemon closes), or `wait` seconds passed.
    Returns (answers, whether the daemon closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)

        def enough(buffer: bytes) -> bool:
            found, _ = stream_messages(buffer)
            return not until_close and any(describe(m, "tcp").get("status", 0) >= 200
                                           for m in found)

        buffer, closed = tcp_read(sock, time.monotonic() + wait, enough)
    found, _ = stream_messages(buffer)
    return [describe(m, "tcp") for m in found], closed


@pytest.fixture
def small_sipd(tmp_path):
    """A daemon that takes SIP messages of 4096 octets at most (sip.max_message_bytes)."""
    daemon = SipdProcess(tmp_path, {"sip.max_message_bytes": 4096}, name="small")
    daemon.start()
    yield daemon
    daemon.stop()
    print(daemon.log())


# -- valid requests --------------------------------------------------------------------------

def check_options_answer(answer: dict) -> None:
    assert answer["status"] == 200, f"OPTIONS answered:\n{answer['raw']}"
    headers = answer["headers"]
    allow = ", ".join(headers.get("allow", []))
    for method in ("ACK", "BYE", "CANCEL", "INFO", "INVITE", "OPTIONS", "MESSAGE"):
        assert method in allow, f"Allow lacks {method}:\n{answer['raw']}"
    assert "text/plain" in ", ".join(headers.get("accept", [])), answer["raw"]
    assert "supported" in headers, answer["raw"]


@pytest.mark.parametrize("uri", ["sip:127.0.0.1:{port}", "sip:local@127.0.0.1:{port}"],
                         ids=["the-daemon", "the-local-account"])
def test_options_over_udp_is_answered_200_with_capabilities(sipd, uri):
    port = sip_ports(sipd)["udp"]
    with Udp(port) as udp:
        answer = udp.final(request("OPTIONS", uri.format(port=port), udp.port,
                                   extra="Accept: application/sdp"))
    check_options_answer(answer)
    assert_healthy(sipd)


def test_options_over_tcp_is_answered_200_with_capabilities(sipd):
    port = sip_ports(sipd)["tcp"]
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(options(port, sock.getsockname()[1], "tcp", "tcp-options@127.0.0.1"))
        buffer, closed = tcp_read(sock, time.monotonic() + WAIT,
                                  lambda b: bool(stream_messages(b)[0]))
    found, _ = stream_messages(buffer)
    assert found, f"no answer over TCP (closed: {closed})"
    check_options_answer(describe(found[0], "tcp"))
    assert_healthy(sipd)


@pytest.mark.parametrize("method", ["OPTIONS", "MESSAGE", "INVITE", "SUBSCRIBE"])
def test_request_for_an_unknown_user_is_answered_404(sipd, method):
    port = sip_ports(sipd)["udp"]
    body, extra = b"", ""
    if method == "MESSAGE":
        body, extra = b"hello", "Content-Type: text/plain"
    if method == "SUBSCRIBE":
        extra = "Event: presence\nExpires: 600\nContact: <sip:tester@127.0.0.1>"
    if method == "INVITE":
        extra = "Contact: <sip:tester@127.0.0.1>"
    with Udp(port) as udp:
        sent = request(method, f"sip:nobody@127.0.0.1:{port}", udp.port, extra=extra,
                       body=body)
        answer = udp.final(sent)
        if method == "INVITE":  # the UAC's ACK of a non-2xx (RFC 3261 §17.1.1.3)
            ack = ack_for(request_parts(sent), answer["raw"].encode())
            assert ack is not None
            received, _ = udp.answers(ack)
            assert [r for r in received if r.get("status", 0) != 404] == [], received
    # RFC 3261 §8.2.1 checks the method before the Request-URI (§8.2.2): a method this daemon
    # does not handle yet (SUBSCRIBE comes with presence) gets 405.
    expected = 405 if method == "SUBSCRIBE" else 404
    assert answer["status"] == expected, answer["raw"]
    assert_healthy(sipd)


def test_stray_ack_is_never_answered_and_does_not_upset_the_daemon(sipd):
    # An ACK that matches no transaction: the ACK of a 2xx we never sent, or the ACK a UAC sends
    # for a stateless 400 (RFC 3261 §17.1.1.3 ACKs every non-2xx final response). RFC 3261
    # §17.2.3 / §8.2: an ACK is never answered.
    port = sip_ports(sipd)["udp"]
    with Udp(port) as udp:
        for uri in (f"sip:local@127.0.0.1:{port}", f"sip:nobody@127.0.0.1:{port}",
                    f"sip:127.0.0.1:{port}"):
            received, probe = udp.answers(request("ACK", uri, udp.port))
            assert probe is not None
            assert received == [], f"an ACK to {uri} was answered: {received}"
    assert_healthy(sipd)


def test_ack_for_a_stateless_400_is_not_answered(sipd):
    # The sequence a real UAC produces: an INVITE the transport rejects statelessly (400, a
    # CSeq out of range), then the ACK that the UAC's INVITE transaction sends for it.
    port = sip_ports(sipd)["udp"]
    with Udp(port) as udp:
        bad = request("INVITE", f"sip:local@127.0.0.1:{port}", udp.port,
                      extra="Contact: <sip:tester@127.0.0.1>").replace(
            b"CSeq: 1 INVITE", b"CSeq: 99999999999 INVITE")
        answer = udp.final(bad)
        assert answer["status"] == 400, answer["raw"]
        ack = ack_for(request_parts(bad), answer["raw"].encode())
        assert ack is not None
        received, probe = udp.answers(ack.replace(b"CSeq: 99999999999 ACK", b"CSeq: 1 ACK"))
        assert probe is not None and received == [], received
    assert_healthy(sipd)


# -- garbage ---------------------------------------------------------------------------------

def truncated_request(port: int) -> bytes:
    whole = request("OPTIONS", "sip:local@127.0.0.1", port, extra="Contact: <sip:tester@127.0.0.1>")
    return whole[:whole.index(b"Contact:") + 15]  # cut inside the Contact header


GARBAGE = {
    # name -> (bytes given the test's port, what may come back: a set of statuses; empty: none)
    "random-bytes": (lambda port: random.Random(4475).randbytes(1200), set()),
    "empty": (lambda port: b"", set()),
    "nul-octets": (lambda port: b"\x00" * 512, set()),
    "crlf-keepalive": (lambda port: b"\r\n\r\n", set()),
    "request-line-only": (lambda port: b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n", set()),
    "truncated-request": (truncated_request, {400}),
    "binary-in-headers": (lambda port: request("OPTIONS", "sip:local@127.0.0.1", port)
                          .replace(b"Max-Forwards: 70", b"Subject: \xff\xfe\x80\x00\r\n"
                                                        b"Max-Forwards: 70"), None),
    "bad-cseq": (lambda port: request("OPTIONS", "sip:local@127.0.0.1", port)
                 .replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"), {400}),
    "stray-response": (lambda port: b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;"
                       b"branch=z9hG4bKnone\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: "
                       b"<sip:b@127.0.0.1>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 OPTIONS\r\n"
                       b"Content-Length: 0\r\n\r\n" % port, set()),
    "content-length-too-big": (lambda port: request("MESSAGE", "sip:local@127.0.0.1", port,
                                                    extra="Content-Type: text/plain",
                                                    body=b"hi", content_length=500), {400}),
    "long-header-under-limit": (lambda port: request(
        "OPTIONS", "sip:nobody@127.0.0.1", port, extra="X-Long: " + "a" * 60000), {404}),
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_datagram(sipd, name):
    build, allowed = GARBAGE[name]
    port = sip_ports(sipd)["udp"]
    with Udp(port) as udp:
        received, probe = udp.answers(build(udp.port))
    assert probe is not None, "the daemon stopped answering"
    statuses = {r.get("status") for r in received if r.get("status", 0) >= 200}
    if allowed is None:  # anything but a server error
        assert all(s < 500 or s == 501 for s in statuses), received
    elif allowed:
        assert statuses and statuses <= allowed, f"expected {allowed}, got {received}"
    else:
        assert received == [], f"expected no answer, got {received}"
    assert_healthy(sipd)


def test_datagram_over_max_message_bytes_is_refused(small_sipd):
    # A UDP datagram carries 65507 octets at most over IPv4, so with the default limit (65535)
    # no datagram can be over it: the daemon here takes 4096 octets at most. Its head is
    # readable, so the answer is 513 Message Too Large (RFC 3261 §21.5.14).
    port = sip_ports(small_sipd)["udp"]
    with Udp(port) as udp:
        big = request("MESSAGE", "sip:local@127.0.0.1", udp.port,
                      extra="Content-Type: text/plain", body=b"x" * 60000)
        answer = udp.final(big)
        assert answer["status"] == 513, answer["raw"]
        received, probe = udp.answers(random.Random(1).randbytes(60000))
        assert probe is not None and received == []
        received, probe = udp.answers(b"x" * 4097)  # over the limit, no head: dropped
        assert probe is not None and received == []
    assert_healthy(small_sipd)


def test_largest_datagram_under_the_default_limit_is_processed(sipd):
    port = sip_ports(sipd)["udp"]
    with Udp(port) as udp:
        head = request("OPTIONS", "sip:nobody@127.0.0.1", udp.port, content_length=0)
        padding = 65507 - len(head) - len("X-Pad: \r\n")
        big = head.replace(b"Content-Length:", b"X-Pad: " + b"p" * padding + b"\r\nContent-Length:")
        assert len(big) == 65507
        answer = udp.final(big)
    assert answer["status"] == 404, answer["raw"]
    assert_healthy(sipd)


def test_tcp_message_over_70_kb_is_answered_513_and_closed(sipd):
    port = sip_ports(sipd)["tcp"]
    big = request("MESSAGE", "sip:local@127.0.0.1", 5060, transport="TCP",
                  extra="Content-Type: text/plain", body=b"x" * 70000)
    answers, closed = tcp_exchange(port, big, until_close=True)
    assert [a["status"] for a in answers] == [513], answers
    assert closed, "the connection must close: its framing is lost (RFC 3261 §18.3)"
    assert_healthy(sipd)


def test_burst_of_500_malformed_datagrams_then_options(sipd):
    port = sip_ports(sipd)["udp"]
    rng = random.Random(500)
    with Udp(port) as udp:
        _, before = udp.answers(None)
        assert before is not None
        for i in range(500):
            if i % 2:
                udp.send(rng.randbytes(rng.randrange(1, 1400)))
            else:  # answerable: a request with a broken CSeq
                udp.send(request("OPTIONS", "sip:local@127.0.0.1", udp.port)
                         .replace(b"CSeq: 1 OPTIONS", b"CSeq: %d" % i))
        # Whatever was answered (UDP may lose some under a burst) was answered 400; then a
        # valid OPTIONS gets the answer it got before the burst.
        received, after = udp.answers(None)
    assert after is not None, "no answer to OPTIONS after the burst"
    assert after["status"] == before["status"], after["raw"]
    statuses = {r.get("status") for r in received}
    assert statuses <= {400}, statuses
    assert received, "none of the 250 answerable malformed requests was answered"
    assert_healthy(sipd)


# -- TCP clients that misbehave ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["close", "reset"])
def test_tcp_client_sending_half_a_message_and_vanishing(sipd, how):
    port = sip_ports(sipd)["tcp"]
    whole = request("OPTIONS", "sip:local@127.0.0.1", 5060, transport="TCP")
    for cut in (10, len(whole) // 2, len(whole) - 3):
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        sock.sendall(whole[:cut])
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    # The daemon goes on: a whole OPTIONS on a new connection is answered.
    answers, closed = tcp_exchange(port, whole)
    assert answers and answers[0]["status"] >= 200, answers
    assert not closed
    assert_healthy(sipd)


def test_tcp_half_message_then_silence_keeps_other_clients_served(sipd):
    port = sip_ports(sipd)["tcp"]
    whole = request("OPTIONS", "sip:local@127.0.0.1", 5060, transport="TCP")
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(20)]
    try:
        for sock in stalled:
            sock.sendall(whole[:40])
        answers, closed = tcp_exchange(port, whole)
        assert answers and answers[0]["status"] >= 200 and not closed, answers
        udp_port = sip_ports(sipd)["udp"]
        with Udp(udp_port) as udp:
            assert udp.answers(None)[1] is not None
    finally:
        for sock in stalled:
            sock.close()
    assert_healthy(sipd)
