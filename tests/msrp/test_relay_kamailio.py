"""MSRP through Kamailio's msrp module as an RFC 4976 relay: AUTH with digest, Use-Path in
a=path, over TCP and TLS, one side or both behind the relay."""

from __future__ import annotations

import os

import pytest
import trio

from sipd.msrp.events import MessageDelivered, MessageReceived, SessionBound
from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.connection import MsrpConnectError, MsrpConnection, RelayPathChanged
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.trio.relay import RelaySettings
from sipd.sip.auth import Credentials

pytestmark = pytest.mark.interop


@pytest.fixture
def relay(kamailio_factory):
    return kamailio_factory(tls=True, features={"msrp"})


def settings(kamailio, transport: str, password: str | None = None, **kw) -> RelaySettings:
    return RelaySettings((kamailio.msrp_relay_uri(transport),),
                         Credentials("alice", password or kamailio.msrp_password),
                         ca_file=kamailio.ca_cert_path, **kw)


async def next_of(connection: MsrpConnection, kind: type, timeout: float = 15):
    with trio.fail_after(timeout):
        async for event in connection.events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"connection ended without {kind.__name__}")


async def talk(a: MsrpConnection, b: MsrpConnection) -> None:
    """Messages both ways, one of them in several chunks."""
    big = os.urandom(20_000)
    sent = a.send_message(big, "application/octet-stream")
    assert (await next_of(b, MessageReceived)).body == big
    assert (await next_of(a, MessageDelivered)).message_id == sent
    back = b.send_message(b"got it", "text/plain", success_report=True)
    assert (await next_of(a, MessageReceived)).body == b"got it"
    delivered = await next_of(b, MessageDelivered)
    assert delivered.message_id == back and delivered.by_report  # end to end, through the relay


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_one_side_behind_the_relay(relay, tmp_path, transport):
    alice = MsrpEndpoint(EndpointSettings(transport=transport, state_dir=tmp_path / "a",
                                          relay=settings(relay, transport), chunk_size=4096))
    bob = MsrpEndpoint(EndpointSettings(transport=transport, state_dir=tmp_path / "b"))
    async with trio.open_nursery() as nursery:
        await nursery.start(alice.serve)
        await nursery.start(bob.serve)
        ours = await alice.reserve(use_relay=True)
        assert len(ours.local_path) == 2  # the relay's Use-Path, then alice
        assert ours.local_path[0].secure == (transport == "tls")
        relay_port = relay.tls_port if transport == "tls" else relay.msrp_port
        assert ours.local_path[0].port == relay_port
        theirs = await bob.reserve()
        # alice (behind the relay) binds through it; bob waits on his listener
        offer = MsrpMedia(ours.local_path, ["*"], setup=Setup.ACTIVE,
                          fingerprints=ours.fingerprints)
        answer = MsrpMedia(theirs.local_path, ["*"], setup=Setup.PASSIVE,
                           fingerprints=theirs.fingerprints)
        a = await ours.connect(answer, active=True)
        await nursery.start(a.run)
        b = await theirs.connect(offer, active=False)
        await nursery.start(b.run)
        await next_of(b, SessionBound)
        await talk(a, b)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_both_sides_behind_the_relay(relay, tmp_path, transport):
    endpoints = [MsrpEndpoint(EndpointSettings(transport=transport, state_dir=tmp_path / n,
                                               relay=settings(relay, transport)))
                 for n in ("a", "b")]
    async with trio.open_nursery() as nursery:
        for endpoint in endpoints:
            await nursery.start(endpoint.serve)
        ours, theirs = [await e.reserve(use_relay=True) for e in endpoints]
        assert ours.local_path[0].session_id != theirs.local_path[0].session_id
        offer = MsrpMedia(ours.local_path, ["*"], setup=Setup.ACTIVE)
        answer = MsrpMedia(theirs.local_path, ["*"], setup=Setup.PASSIVE)
        b = await theirs.connect(offer, active=False)
        await nursery.start(b.run)
        a = await ours.connect(answer, active=True)
        await nursery.start(a.run)
        await next_of(b, SessionBound)
        await talk(a, b)
        nursery.cancel_scope.cancel()


async def test_wrong_relay_password_then_the_next_relay(relay, tmp_path):
    dead = "msrp://127.0.0.1:9;tcp"  # nothing listens there
    wrong = settings(relay, "tcp", password="not-it")
    endpoint = MsrpEndpoint(EndpointSettings(transport="tcp", relay=wrong))
    async with trio.open_nursery() as nursery:
        await nursery.start(endpoint.serve)
        with pytest.raises(MsrpConnectError) as refused:
            await endpoint.reserve(use_relay=True)
        assert "rejected the credentials of 'alice'" in str(refused.value)
        tried_in_order = RelaySettings((dead, relay.msrp_relay_uri("tcp")),
                                       Credentials("alice", relay.msrp_password))
        reservation = await endpoint.reserve(use_relay=True, relay=tried_in_order)
        assert reservation.local_path[0].port == relay.msrp_port
        await reservation.aclose()
        nursery.cancel_scope.cancel()


async def test_grant_is_refreshed_before_it_expires(relay, tmp_path):
    short = settings(relay, "tcp", expires=2)  # refreshed at 1.5 s
    alice = MsrpEndpoint(EndpointSettings(transport="tcp", relay=short))
    bob = MsrpEndpoint(EndpointSettings(transport="tcp"))
    async with trio.open_nursery() as nursery:
        await nursery.start(alice.serve)
        await nursery.start(bob.serve)
        ours = await alice.reserve(use_relay=True)
        first_path = ours.local_path
        theirs = await bob.reserve()
        a = await ours.connect(MsrpMedia(theirs.local_path, ["*"]), active=True)
        await nursery.start(a.run)
        b = await theirs.connect(MsrpMedia(first_path, ["*"]), active=False)
        await nursery.start(b.run)
        changed = await next_of(a, RelayPathChanged, timeout=10)
        assert changed.local_path[-1] == first_path[-1]
        assert changed.local_path[0].session_id != first_path[0].session_id
        # the connection lives on: alice's messages go through the relay still
        a.send_message(b"still here", "text/plain")
        assert (await next_of(b, MessageReceived)).body == b"still here"
        nursery.cancel_scope.cancel()


async def test_relay_found_by_srv(relay, dnsmasq_factory, tmp_path):
    from tests.peers.dnsmasq import Srv

    dns = dnsmasq_factory(
        srv=[Srv("_msrps._tcp.example.test", "dead.example.test", 9, priority=0),
             Srv("_msrps._tcp.example.test", "relay.example.test", relay.tls_port, priority=10)],
        a={"dead.example.test": "127.0.0.1", "relay.example.test": "127.0.0.1"})
    auto = RelaySettings(("auto",), Credentials("alice", relay.msrp_password),
                         domain="example.test", ca_file=relay.ca_cert_path,
                         nameservers=[("127.0.0.1", dns.port)])
    endpoint = MsrpEndpoint(EndpointSettings(transport="tls", state_dir=tmp_path, relay=auto))
    async with trio.open_nursery() as nursery:
        await nursery.start(endpoint.serve)
        reservation = await endpoint.reserve(use_relay=True)
        assert reservation.local_path[0].secure
        assert reservation.local_path[0].port == relay.tls_port
        await reservation.aclose()
        nursery.cancel_scope.cancel()
