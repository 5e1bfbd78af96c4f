"""The daemon's MSRP endpoint: listening on msrp.local_port with a certificate made once and
kept, its fingerprint in system.state; a port already taken leaves the daemon serving without
MSRP and saying why."""

from __future__ import annotations

import socket

from sipctl.client import connect
from sipd.msrp.trio.tls import CERT_NAME, KEY_NAME
from tests.harness.process import SipdProcess
from tests.peers.ports import free_port


async def msrp_state(daemon: SipdProcess) -> dict:
    async with connect(daemon.endpoint) as client:
        return (await client.call("system.state"))["msrp"]


async def test_listens_with_a_certificate_made_once_and_kept(tmp_path):
    port = free_port()
    daemon = SipdProcess(tmp_path, {"msrp.local_port": port}).start()
    try:
        state = await msrp_state(daemon)
        assert state["available"] and state["port"] == port and state["transport"] == "tls"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        key = daemon.state_dir / "msrp" / KEY_NAME
        assert (daemon.state_dir / "msrp" / CERT_NAME).exists()
        assert key.stat().st_mode & 0o077 == 0  # the private key is the daemon's alone
    finally:
        daemon.stop()
    daemon.start()
    try:
        again = await msrp_state(daemon)
        assert again["fingerprint"] == state["fingerprint"]  # the same identity after a restart
        assert state["fingerprint"].startswith("sha-256 ")
    finally:
        daemon.stop()


async def test_a_taken_port_leaves_the_daemon_serving_without_msrp(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        daemon = SipdProcess(tmp_path, {"msrp.local_port": port}).start()
        try:
            state = await msrp_state(daemon)
            assert state["available"] is False and str(port) in state["problem"]
            async with connect(daemon.endpoint) as client:
                assert (await client.call("system.version"))["name"] == "sipd"
        finally:
            daemon.stop()
