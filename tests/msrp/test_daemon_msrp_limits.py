"""The MSRP listener within the descriptor budget, against a running daemon: a flood of idle
TCP connections to the MSRP port (more than the daemon has descriptors) leaves RPC and SIP
clients working; at most MAX_PENDING such connections stay open, and none past the budget."""

from __future__ import annotations

import socket
import time

import pytest

from sipd.msrp.trio.listener import MAX_PENDING
from tests.sip.rfc4475_driver import rpc
from tests.sip.test_daemon_connection_limits import (  # noqa: F401  (fixture)
    LimitedSipd,
    assert_clean_log,
    closed_by_peer,
    connect_from,
    many_descriptors,
    options_over,
    wait_until,
)

pytestmark = pytest.mark.daemon


@pytest.mark.usefixtures("many_descriptors")
def test_a_flood_of_idle_msrp_connections_leaves_rpc_and_sip_working(tmp_path):
    daemon = LimitedSipd(tmp_path, 1024, settings={"sip.transport_list": ["udp", "tcp"],
                                                   "msrp.transport": "tcp"})
    daemon.start()
    flood: list[socket.socket] = []
    try:
        state = rpc(daemon.endpoint, "system.state")
        port = state["msrp"]["port"]
        # 1,100 connections from ten addresses that never send a request.
        started = time.monotonic()
        for n in range(1100):
            sock = connect_from(f"127.0.7.{n // 110 + 1}", port)
            if sock is not None:
                flood.append(sock)
        assert time.monotonic() - started < 60, "the flood itself must stay bounded"

        wait_until(lambda: len(flood) - sum(map(closed_by_peer, flood)) <= MAX_PENDING,
                   "the flood cut to the connections that may wait for a first request")
        state = rpc(daemon.endpoint, "system.state")
        assert state["msrp"]["displaced"] > 0, state["msrp"]
        assert state["descriptors"]["open"] < state["descriptors"]["limit"] // 2, state

        # RPC and a fresh SIP client over TCP are served.
        assert rpc(daemon.endpoint, "system.version")["name"] == "sipd"
        sip_port = state["sip"]["ports"]["tcp"]
        fresh = connect_from("127.0.8.1", sip_port)
        assert fresh is not None, "a fresh SIP client could not connect"
        with fresh:
            assert options_over(fresh, sip_port)["status"] == 200
        assert daemon.proc is not None and daemon.proc.poll() is None
        assert_clean_log(daemon)
    finally:
        for sock in flood:
            sock.close()
        daemon.stop()
