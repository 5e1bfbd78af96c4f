"""xcap.local_port: outgoing XCAP connections leave from that port (sipd/xcap/trio/transport.py),
one at a time, against the tiny server (which sees the client's port) and Kamailio's
xcap_server through a daemon; a port that cannot be had is an error that says so."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sipctl.client import connect
from sipd.xcap.errors import XcapUnavailableError
from sipd.xcap.trio.client import XcapClient, XcapResponse
from sipd.xcap.uri import XcapUri
from tests.harness.process import SipdProcess
from tests.peers.ports import free_port
from tests.xcap.conftest import xcap_root
from tests.xcap.httpserver import Reply, serve_http
from tests.xcap.test_daemon import alice_settings

DOC = b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>'


def reply(_request: object) -> Reply:
    return Reply(200, DOC, [("Content-Type", "application/resource-lists+xml"),
                            ("ETag", '"e1"')])


async def test_requests_leave_from_the_local_port() -> None:
    port = free_port(udp=False)
    async with serve_http(reply) as server:
        uri = XcapUri(server.root, "resource-lists", "index", "sip:alice@example.com")
        async with XcapClient(server.root, local_port=port, retries=0) as client:
            for _ in range(3):
                got = await client.get(uri)
                assert isinstance(got, XcapResponse) and got.etag == "e1"
        async with XcapClient(server.root, retries=0) as client:  # the default: any port
            await client.get(uri)
    ports = [request.peer[1] for request in server.requests if request.peer]
    assert ports[:3] == [port] * 3 and ports[3] != port


async def test_a_port_taken_by_another_socket_is_an_error_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with serve_http(reply) as server:
            uri = XcapUri(server.root, "resource-lists", "index", "sip:alice@example.com")
            async with XcapClient(server.root, local_port=port, retries=0) as client:
                with pytest.raises(XcapUnavailableError, match=f"from port {port}"):
                    await client.get(uri)
        assert server.requests == []


def established_from(port: int, remote: int) -> bool:
    """Whether /proc/net/tcp has a connection 127.0.0.1:port -> 127.0.0.1:remote."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, peer, state = line.split()[1:4]
        if (int(local.split(":")[1], 16), int(peer.split(":")[1], 16), state) \
                == (port, remote, "01"):
            return True
    return False


@pytest.mark.interop
async def test_the_daemon_talks_to_kamailio_from_xcap_local_port(xcap_kamailio,
                                                                 tmp_path) -> None:
    kam = xcap_kamailio
    port = free_port(udp=False)
    settings = alice_settings(kam.domain, xcap_root(kam))
    settings["xcap.local_port"] = port
    daemon = SipdProcess(tmp_path, settings).start()
    try:
        async with connect(daemon.endpoint) as rpc:
            for user in ("bob", "carol"):
                added = await rpc.call("contacts.add", {"account": "alice",
                                                        "uri": f"sip:{user}@{kam.domain}"})
                assert added["pending"] == 0 and added["store"] == "xcap"
            assert established_from(port, kam.xcap_port)
            listing = await rpc.call("contacts.list", {"account": "alice"})
            assert len(listing["contacts"]) == 2
    finally:
        daemon.stop()
