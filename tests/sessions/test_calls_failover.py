"""INVITE failover (RFC 3263 §4.3): a call to a domain whose SRV records give two servers goes
to the second when the first does not answer at all or answers 503, and is established there.

dnsmasq serves the SRV records of example.test to a real sipd daemon (dns.nameservers); the
servers are a silent UDP socket or a sipp UAS answering 503, then a sipp UAS that answers
the call. The daemon runs with sip.t1 = 50 ms: an INVITE nobody answers times out after
64*T1 = 3.2 s instead of 32 s.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.harness.peer import DaemonPeer, daemon_settings, open_peer
from tests.harness.process import SipdProcess
from tests.harness.sipp import finish, messages, starting
from tests.peers.dnsmasq import Srv
from tests.peers.ports import free_port

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
DOMAIN = "example.test"
SERVICE = f"_sip._udp.{DOMAIN}"


@asynccontextmanager
async def sipd_with_dns(tmp_path, dns) -> AsyncIterator[DaemonPeer]:
    settings = {**daemon_settings(), "sip.t1": 50, "dns.nameservers": [f"{HOST}:{dns.port}"]}
    daemon = SipdProcess(tmp_path / "sipd", settings, name="sipd")
    try:
        daemon.start()
        async with open_peer(daemon) as peer:
            yield peer
    finally:
        daemon.stop()


def two_servers(dnsmasq_factory, first: int, second: int):
    return dnsmasq_factory(srv=[Srv(SERVICE, f"one.{DOMAIN}", first, 10),
                                Srv(SERVICE, f"two.{DOMAIN}", second, 20)],
                           a={f"one.{DOMAIN}": HOST, f"two.{DOMAIN}": HOST})


async def call_is_placed_at_the_second(peer: DaemonPeer, answering) -> str:
    to = f"sip:service@{DOMAIN};transport=udp"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]

    established = await peer.state(session, "established")

    assert established["code"] == 200, established
    failures = [e for e in peer.events.matching("session.state", id=session)
                if e["state"] in ("failed", "ended")]
    assert failures == [], failures  # the first server's failure is not the call's
    await peer.call("sessions.end", id=session)
    await peer.state(session, "ended")
    await finish(answering)
    return session


async def test_a_server_that_never_answers_is_passed_over(sipp, dnsmasq_factory, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))  # takes the INVITE (and its retransmissions), says nothing
        second = free_port()
        dns = two_servers(dnsmasq_factory, silent.getsockname()[1], second)
        answering = sipp.start("call_uas_early_answer.xml", local_port=second,
                               keys={"rtp": str(free_port())})
        async with sipd_with_dns(tmp_path, dns) as peer:
            await call_is_placed_at_the_second(peer, answering)
        silent.setblocking(False)
        invite = silent.recv(65535)
    assert invite.startswith(b"INVITE sip:service@example.test"), invite[:80]


async def test_a_server_that_answers_503_is_passed_over(sipp, dnsmasq_factory, tmp_path):
    first, second = free_port(), free_port()
    dns = two_servers(dnsmasq_factory, first, second)
    unavailable = sipp.start("call_uas_503.xml", local_port=first)
    answering = sipp.start("call_uas_early_answer.xml", local_port=second,
                           keys={"rtp": str(free_port())})
    async with sipd_with_dns(tmp_path, dns) as peer:
        await call_is_placed_at_the_second(peer, answering)
    result = await finish(unavailable)  # it got the INVITE, said 503 and got the ACK
    assert starting(messages(result, "received"), "INVITE ")


@pytest.mark.parametrize("scenario, code", [("call_uas_486.xml", 486),
                                             ("call_uas_ring_503.xml", 503)],
                         ids=["busy", "503-after-ringing"])
async def test_a_callee_answer_is_not_passed_over(sipp, dnsmasq_factory, tmp_path, scenario,
                                                 code):
    """486 is the callee's answer, not the server's trouble; a 503 after a 180 comes once
    the call rang somewhere: the call fails, and the second server never hears of it."""
    first, second = free_port(), free_port()
    dns = two_servers(dnsmasq_factory, first, second)
    busy = sipp.start(scenario, local_port=first)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind((HOST, second))
        other.setblocking(False)
        async with sipd_with_dns(tmp_path, dns) as peer:
            to = f"sip:service@{DOMAIN};transport=udp"
            session = (await peer.call("sessions.start", account="local", to=to))["id"]
            failed = await peer.state(session, "failed")
        assert failed["code"] == code, failed
        await finish(busy)
        with pytest.raises(BlockingIOError):
            other.recv(65535)
