"""Bounded resources on the SIP side, against a running daemon: a flood of idle TCP connections
leaves RPC and new SIP clients working, connections that never complete a message are closed
after `sip.message_timeout`, and a UDP burst the receive buffer cannot hold shows up as drops
in system.state.

Every connection comes from a 127.0.0.0/8 address (the whole block is loopback on Linux, which
is how one test plays many peers) and every message names only 127.0.0.1.
"""

from __future__ import annotations

import errno
import resource
import signal
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.harness.process import SipdProcess

from .rfc4475_driver import describe, options, rpc, stream_messages, tcp_read

WAIT = 10.0  # seconds, at most, for what should happen in milliseconds


class LimitedSipd(SipdProcess):
    """sipd started with RLIMIT_NOFILE soft = hard = `nofile`: its descriptors run out at
    about a thousand connections, as on a system with the common default limit."""

    def __init__(self, base: Any, nofile: int, **kwargs: Any) -> None:
        super().__init__(base, **kwargs)
        self.nofile = nofile

    def command(self) -> list[str]:
        return ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--", *super().command()]


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def sip_state(daemon: SipdProcess) -> dict[str, Any]:
    return rpc(daemon.endpoint, "system.state")["sip"]


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the daemon closed this connection (EOF or reset), without waiting."""
    timeout = sock.gettimeout()
    sock.setblocking(False)  # a socket with a timeout would wait for data first
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def connect_from(source: str, port: int) -> socket.socket | None:
    """A TCP connection from `source` to the daemon's SIP port; None when refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ECONNREFUSED, errno.ETIMEDOUT, errno.ECONNRESET, errno.EAGAIN):
            return None
        raise
    return sock


def options_over(sock: socket.socket, port: int) -> dict[str, Any]:
    """Sends an OPTIONS on `sock` and returns the daemon's final answer."""
    local_port = sock.getsockname()[1]
    sock.sendall(options(port, local_port, "tcp", f"{uuid.uuid4().hex}@127.0.0.1"))

    def answered(buffer: bytes) -> bool:
        found, _ = stream_messages(buffer)
        return any(describe(m, "tcp").get("status", 0) >= 200 for m in found)

    buffer, _closed = tcp_read(sock, time.monotonic() + WAIT, answered)
    found, _ = stream_messages(buffer)
    finals = [describe(m, "tcp") for m in found if describe(m, "tcp").get("status", 0) >= 200]
    assert finals, f"no answer to OPTIONS over TCP (got {buffer[:300]!r})"
    return finals[0]


def udp_options(port: int) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(WAIT)
        sock.sendto(options(port, sock.getsockname()[1], "udp", f"{uuid.uuid4().hex}@x"),
                    ("127.0.0.1", port))
        return describe(sock.recv(65536), "udp")


@pytest.fixture
def many_descriptors():
    """This test process needs more than a thousand sockets of its own."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if wanted < 2048:
        pytest.skip(f"the hard RLIMIT_NOFILE ({hard}) leaves this test too few sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def assert_clean_log(daemon: SipdProcess) -> None:
    log = daemon.log()
    assert "Traceback" not in log, log[-4000:]
    assert "Too many open files" not in log


# -- a flood of idle connections -------------------------------------------------------------

def test_a_flood_of_idle_connections_leaves_rpc_and_new_sip_clients_working(
        tmp_path, many_descriptors):
    daemon = LimitedSipd(tmp_path, 1024, settings={"sip.transport_list": ["udp", "tcp"]})
    daemon.start()
    flood: dict[str, list[socket.socket]] = {}
    try:
        port = sip_state(daemon)["ports"]["tcp"]
        # 150 from one address (past the cap of 100 per address), then 950 from ten others:
        # 1,100 connections that never say anything, more than the daemon has descriptors.
        sources = ["127.0.0.1"] * 150 + [f"127.0.1.{n // 95 + 1}" for n in range(950)]
        started = time.monotonic()
        for source in sources:
            sock = connect_from(source, port)
            if sock is not None:
                flood.setdefault(source, []).append(sock)
        assert time.monotonic() - started < 60, "the flood itself must stay bounded"

        # Past the per-address cap, the daemon closed the extra connections at once; and no
        # more of the flood stay open than it can hold (once it has accepted what the kernel
        # queued for it).
        from_one = flood.get("127.0.0.1", [])
        everyone = [sock for socks in flood.values() for sock in socks]

        def still_open(socks: list[socket.socket]) -> int:
            return len(socks) - sum(map(closed_by_peer, socks))

        wait_until(lambda: still_open(from_one) <= 100,
                   "connections past sip.max_connections_per_address closed")
        wait_until(lambda: still_open(everyone) <= 1000, "the flood cut to sip.max_connections")

        # The daemon says how it stands: connections refused past the per-address cap, and
        # room made for new ones among those that never sent a message, as the descriptors
        # left to peers ran out before sip.max_connections.
        connections = sip_state(daemon)["connections"]
        assert connections["max"] == 1000 and connections["max_per_address"] == 100
        assert connections["refused"] >= len(from_one) - 100 > 0
        assert connections["replaced"] > 0
        assert connections["inbound"] <= connections["max"]
        descriptors = rpc(daemon.endpoint, "system.state")["descriptors"]
        assert descriptors["open"] < descriptors["limit"]

        # RPC works (its own reserve of descriptors), and so does a fresh SIP client, over
        # TCP (it takes the place of a connection that never said anything) and over UDP.
        assert rpc(daemon.endpoint, "system.version")["name"] == "sipd"
        fresh = connect_from("127.0.2.1", port)
        assert fresh is not None, "a fresh SIP client could not connect"
        with fresh:
            assert options_over(fresh, port)["status"] == 200
            assert not closed_by_peer(fresh)
        assert udp_options(sip_state(daemon)["ports"]["udp"])["status"] == 200
        assert daemon.proc is not None and daemon.proc.poll() is None
        assert_clean_log(daemon)
        assert "refusing SIP TCP connections" in daemon.log()
    finally:
        for socks in flood.values():
            for sock in socks:
                sock.close()
        daemon.stop()


def test_past_the_total_cap_silent_connections_make_room_and_then_none_is_taken(tmp_path):
    daemon = SipdProcess(tmp_path, {"sip.transport_list": ["udp", "tcp"],
                                    "sip.max_connections": 20})
    daemon.start()
    talkers: list[socket.socket] = []
    silent: list[socket.socket] = []
    try:
        port = sip_state(daemon)["ports"]["tcp"]
        for n in range(10):  # ten peers that speak: they keep their connections
            sock = connect_from(f"127.0.3.{n + 1}", port)
            assert sock is not None
            talkers.append(sock)
            assert options_over(sock, port)["status"] == 200
        for n in range(40):  # forty that do not: only ten of them fit
            sock = connect_from(f"127.0.4.{n % 20 + 1}", port)
            if sock is not None:
                silent.append(sock)
        wait_until(lambda: len(silent) - sum(map(closed_by_peer, silent)) <= 10,
                   "silent connections cut to the room left")
        assert not any(map(closed_by_peer, talkers))
        assert sip_state(daemon)["connections"]["replaced"] >= 30

        for n in range(10):  # ten more that speak take the silent ones' places
            sock = connect_from(f"127.0.5.{n + 1}", port)
            assert sock is not None
            talkers.append(sock)
            assert options_over(sock, port)["status"] == 200
        wait_until(lambda: all(map(closed_by_peer, silent)), "every silent connection closed")
        # Now every place is taken by a peer that speaks: a new connection is refused.
        late = connect_from("127.0.6.1", port)
        if late is not None:
            with late:
                wait_until(lambda: closed_by_peer(late), "the connection past the cap closed")
        assert sip_state(daemon)["connections"]["refused"] >= 1
        assert not any(map(closed_by_peer, talkers))
        assert_clean_log(daemon)
    finally:
        for sock in talkers + silent:
            sock.close()
        daemon.stop()


# -- connections that never complete a message -----------------------------------------------

def test_connections_that_do_not_complete_a_message_are_closed_after_the_timeout(tmp_path):
    daemon = SipdProcess(tmp_path, {"sip.transport_list": ["udp", "tcp"],
                                    "sip.message_timeout": 1})
    daemon.start()
    try:
        port = sip_state(daemon)["ports"]["tcp"]
        message = options(port, 5999, "tcp", f"{uuid.uuid4().hex}@127.0.0.1")
        silent = connect_from("127.0.0.1", port)
        half = connect_from("127.0.0.1", port)
        talker = connect_from("127.0.0.1", port)
        assert silent is not None and half is not None and talker is not None
        with silent, half, talker:
            half.sendall(message[:len(message) // 2])  # and never the rest
            assert options_over(talker, port)["status"] == 200

            wait_until(lambda: closed_by_peer(silent) and closed_by_peer(half),
                       "the silent and the half-sent connections closed")
            # The connection that completed a message is idle, not stuck: it stays.
            assert not closed_by_peer(talker)
            assert options_over(talker, port)["status"] == 200
            # A message begun on it and never finished closes it too.
            talker.sendall(message[:40])
            wait_until(lambda: closed_by_peer(talker), "the stalled message's connection closed")
        assert "no complete SIP message within 1 s" in daemon.log()
        assert rpc(daemon.endpoint, "system.version")["name"] == "sipd"
        assert_clean_log(daemon)
    finally:
        daemon.stop()


# -- UDP bursts ------------------------------------------------------------------------------

def burst(daemon: SipdProcess, port: int, count: int, size: int) -> None:
    """`count` datagrams of junk (dropped unanswered) while the daemon is stopped, so that
    they all wait in its socket's receive buffer."""
    daemon.signal(signal.SIGSTOP)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(count):
                sock.sendto(b"x" * size, ("127.0.0.1", port))
    finally:
        daemon.signal(signal.SIGCONT)


def test_a_udp_burst_past_the_receive_buffer_shows_as_drops(tmp_path):
    daemon = SipdProcess(tmp_path, {"sip.transport_list": ["udp"],
                                    "sip.udp_receive_buffer": 65536}, name="small")
    daemon.start()
    try:
        udp = sip_state(daemon)["udp"]
        assert udp["receive_buffer"] >= 65536 and udp["drops"] == 0
        port = sip_state(daemon)["ports"]["udp"]
        burst(daemon, port, 2000, 1000)  # ~2 MB into a 64 kB buffer
        drops = wait_until(lambda: sip_state(daemon)["udp"]["drops"], "drops reported")
        assert 0 < drops < 2000
        assert udp_options(port)["status"] == 200
        assert_clean_log(daemon)
    finally:
        daemon.stop()


def test_a_udp_burst_within_the_receive_buffer_is_all_kept(tmp_path):
    daemon = SipdProcess(tmp_path, {"sip.transport_list": ["udp"],
                                    "sip.udp_receive_buffer": 8 * 1024 * 1024}, name="large")
    daemon.start()
    try:
        udp = sip_state(daemon)["udp"]
        if udp["receive_buffer"] < 8 * 1024 * 1024:
            pytest.skip(f"the system granted {udp['receive_buffer']} octets only (not root, "
                        "and net.core.rmem_max is lower)")
        port = sip_state(daemon)["ports"]["udp"]
        burst(daemon, port, 2000, 1000)  # the same burst fits: nothing dropped
        assert udp_options(port)["status"] == 200  # answered after the whole burst was read
        assert sip_state(daemon)["udp"]["drops"] == 0
        assert_clean_log(daemon)
    finally:
        daemon.stop()
