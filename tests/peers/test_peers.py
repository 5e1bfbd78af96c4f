"""Each test peer starts, does one real thing with another real peer, and stops cleanly."""

from __future__ import annotations

import socket
import ssl
import time
import wave

import pytest

from .coturn import stun_binding
from .dnsmasq import Naptr, Srv
from .fixtures import PEER_USERS
from .proc import STARTED, off_loop

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_baresip_registers_with_digest_auth(kamailio, baresip_factory, transport):
    bob = baresip_factory("bob", outbound=kamailio.proxy_uri(transport))

    event = bob.wait_event("REGISTER_OK")

    assert event["accountaor"] == "sip:bob@example.test"
    contacts = kamailio.contacts("bob")
    assert len(contacts) == 1
    if transport != "udp":
        assert f"transport={transport}" in contacts[0]


def test_wrong_password_is_refused(kamailio, baresip_factory):
    bob = baresip_factory("bob", password="not-the-password")

    event = bob.wait_event("REGISTER_FAIL")

    assert event["param"].startswith(("401", "403"))
    assert kamailio.contacts("bob") == []


def test_kamailio_tls_certificate_verifies_against_the_test_ca(kamailio):
    context = ssl.create_default_context(cafile=str(kamailio.ca_cert_path))
    with socket.create_connection(("127.0.0.1", kamailio.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=kamailio.domain) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_added_user_can_register(kamailio, baresip_factory):
    kamailio.add_user("erin", "erin-secret")

    erin = baresip_factory(account="sip:erin@example.test", password="erin-secret",
                           outbound=kamailio.proxy_uri("tcp"))

    erin.wait_event("REGISTER_OK")
    assert kamailio.contacts("erin")


def test_message_between_baresip_and_linphonec(kamailio, baresip_factory, linphonec_factory):
    bob = baresip_factory("bob", contacts=["sip:carol@example.test"])
    carol = linphonec_factory("carol", proxy=kamailio.proxy_uri("tcp"))
    bob.wait_event("REGISTER_OK")
    carol.wait_registered()

    bob.send_message("sip:carol@example.test", "hello carol")
    assert carol.wait_message() == ("sip:bob@example.test", "hello carol")

    carol.send_chat("sip:bob@example.test", "hello bob")
    assert bob.wait_message() == ("sip:carol@example.test", "hello bob")


def test_call_from_linphonec_to_baresip_carries_audio(kamailio, baresip_factory, linphonec_factory):
    bob = baresip_factory("bob", outbound=kamailio.proxy_uri("tcp"))
    carol = linphonec_factory("carol")
    bob.wait_event("REGISTER_OK")
    carol.wait_registered()

    offset = carol.call("sip:bob@example.test")
    incoming = bob.wait_event("CALL_INCOMING")
    assert incoming["peeruri"] == "sip:carol@example.test"
    bob.answer()
    bob.wait_event("CALL_ESTABLISHED")
    carol.wait_call("streams", since=offset)
    # let about a second of audio through, then end the call from linphonec's side
    time.sleep(1.0)
    offset = carol.hangup()
    bob.wait_event("CALL_CLOSED")
    carol.wait_call("ended", since=offset)

    received = bob.recordings()["received"]
    assert received, "baresip recorded nothing"
    with wave.open(str(received[0])) as w:
        assert w.getnframes() > w.getframerate() // 2  # at least half a second arrived


def test_sipp_options_gets_200_from_kamailio(kamailio, sipp):
    result = sipp.run("options_uac.xml", ("127.0.0.1", kamailio.udp_port),
                      rows=[["alice", "example.test"]])

    assert result.ok, result.report()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_registers_with_credentials_from_csv(kamailio, sipp, transport):
    credentials = f"[authentication username=alice password={PEER_USERS['alice']}]"

    result = sipp.run("register_uac.xml", ("127.0.0.1", kamailio.udp_port), transport=transport,
                      rows=[["alice", "example.test", credentials]])

    assert result.ok, result.report()


def test_dnsmasq_serves_naptr_srv_and_a(dnsmasq_factory):
    dns = dnsmasq_factory(
        naptr=[Naptr("example.test", 10, 10, "S", "SIP+D2T", "", "_sip._tcp.example.test"),
               Naptr("example.test", 20, 10, "S", "SIP+D2U", "", "_sip._udp.example.test")],
        srv=[Srv("_sip._tcp.example.test", "sip.example.test", 15060, 1, 10)],
        a={"sip.example.test": "127.0.0.1"},
    )
    resolver = dns.resolver()

    naptr = sorted(resolver.resolve("example.test", "NAPTR"), key=lambda r: r.order)
    assert [(r.order, r.service, r.replacement.to_text()) for r in naptr] == [
        (10, b"SIP+D2T", "_sip._tcp.example.test."), (20, b"SIP+D2U", "_sip._udp.example.test.")]
    (srv,) = resolver.resolve("_sip._tcp.example.test", "SRV")
    assert (srv.priority, srv.weight, srv.port, srv.target.to_text()) == (
        1, 10, 15060, "sip.example.test.")
    assert [r.address for r in resolver.resolve("sip.example.test", "A")] == ["127.0.0.1"]

    import dns.resolver as dns_resolver

    with pytest.raises(dns_resolver.NXDOMAIN):
        resolver.resolve("nowhere.example.test", "A")


def test_coturn_answers_stun_binding(coturn):
    mapped = stun_binding(("127.0.0.1", coturn.port))

    assert mapped is not None and mapped[0] == "127.0.0.1"


def test_peers_leave_no_process_behind(kamailio_factory, baresip_factory, linphonec_factory,
                                       dnsmasq_factory, coturn, sipp):
    first = len(STARTED)
    kamailio = kamailio_factory()
    bob = baresip_factory("bob", kamailio=kamailio)
    carol = linphonec_factory("carol", kamailio=kamailio)
    dns = dnsmasq_factory(a={"sip.example.test": "127.0.0.1"})
    bob.wait_event("REGISTER_OK")
    carol.wait_registered()

    for peer in (carol, bob, dns, kamailio, coturn):
        peer.stop()

    started = STARTED[first:]
    assert {p.name for p in started} >= {"kamailio", "baresip", "linphonec", "dnsmasq"}
    assert [p.name for p in started if p.group_alive()] == []


async def test_drivers_work_from_trio_tests(kamailio, baresip_factory):
    # starting a peer is quick enough to do on the loop; waiting goes to a thread
    bob = baresip_factory("bob")

    event = await off_loop(bob.wait_event, "REGISTER_OK")

    assert event["accountaor"] == "sip:bob@example.test"


def test_sipp_uac_against_sipp_uas(sipp):
    uas = sipp.start("options_uas.xml", timeout=10)

    uac = sipp.run("options_uac.xml", ("127.0.0.1", uas.local_port),
                   rows=[["alice", "example.test"]])

    assert uac.ok, uac.report()
    result = uas.wait()
    assert result.ok, result.report()


def test_baresip_blind_transfers_linphonec_to_baresip(kamailio, baresip_factory, linphonec_factory):
    bob = baresip_factory("bob")
    dave = baresip_factory("dave", answermode="auto")
    carol = linphonec_factory("carol")
    bob.wait_event("REGISTER_OK")
    dave.wait_event("REGISTER_OK")
    carol.wait_registered()
    offset = carol.process.log_size()
    bob.dial("sip:carol@example.test")
    carol.wait_call("incoming", since=offset)
    carol.answer()
    bob.wait_event("CALL_ESTABLISHED")

    offset = carol.process.log_size()
    bob.transfer("sip:dave@example.test")
    # linphonec accepts the REFER and calls dave by itself
    new_call = carol.wait_call("outgoing", since=offset)
    assert new_call["uri"] == "sip:dave@example.test"
    assert dave.wait_event("CALL_ESTABLISHED")["peeruri"] == "sip:carol@example.test"
    assert bob.wait_event("CALL_CLOSED")["param"] == "Call transfered"
    carol.wait_call("streams", since=offset, call_id=int(new_call["id"]))
    dave.hangup()
    carol.wait_call("ended", since=offset, call_id=int(new_call["id"]))


def test_linphonec_attended_transfer_between_linphonecs(kamailio, linphonec_factory):
    carol, alice, dave = (linphonec_factory(user) for user in ("carol", "alice", "dave"))
    for peer in (carol, alice, dave):
        peer.wait_registered()
    calls = {}
    for name, peer in (("alice", alice), ("dave", dave)):
        offset, peer_offset = carol.call(f"sip:{name}@example.test"), peer.process.log_size()
        calls[name] = int(carol.wait_call("outgoing", since=offset)["id"])
        peer.wait_call("incoming", since=peer_offset)
        peer.answer()
        carol.wait_call("streams", since=offset, call_id=calls[name])
        if name == "alice":  # a second call needs the first on hold
            carol.wait_call("paused", since=carol.pause(calls[name]), call_id=calls[name])

    offset = carol.transfer_to_call(calls["alice"], calls["dave"])
    alice_offset = alice.process.log_size()
    # alice INVITEs dave with Replaces; dave takes it at once and drops carol's call
    new_call = alice.wait_call("outgoing", since=alice_offset)
    assert "Replaces=" in new_call["uri"]
    carol.wait_call("transferred", since=offset, call_id=calls["alice"])
    carol.wait_call("ended", since=offset, call_id=calls["dave"])
    alice.wait_call("streams", since=alice_offset, call_id=int(new_call["id"]))
