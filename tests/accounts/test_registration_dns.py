"""Registration located by DNS (RFC 3263) end to end: dnsmasq serves NAPTR and SRV records for
example.test, a real sipd daemon (dns.nameservers = dnsmasq) registers an account that has no
registrar set, and Kamailio is the registrar the records lead to."""

from __future__ import annotations

import pytest

from tests.harness.registration import running_sipd
from tests.harness.waits import off_loop, wait_until
from tests.peers.dnsmasq import Naptr, Srv
from tests.peers.fixtures import PEER_USERS
from tests.peers.ports import free_port

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
DOMAIN = "example.test"


def dns_settings(dns) -> dict:
    return {"dns.nameservers": [f"{HOST}:{dns.port}"]}


async def test_naptr_and_srv_lead_to_the_registrar(kamailio, dnsmasq_factory, tmp_path):
    dns = dnsmasq_factory(
        naptr=[Naptr(DOMAIN, 10, 10, "S", "SIP+D2T", "", f"_sip._tcp.{DOMAIN}")],
        srv=[Srv(f"_sip._tcp.{DOMAIN}", f"sip.{DOMAIN}", kamailio.tcp_port)],
        a={f"sip.{DOMAIN}": HOST})
    async with running_sipd(tmp_path, dns_settings(dns)) as (_daemon, client, regs):
        account = await client.call("accounts.add", {"aor": kamailio.aor("alice"),
                                                     "password": PEER_USERS["alice"]})
        assert account["registrar"] == ""
        registered = await regs.wait(account["id"], "registered")
        # NAPTR chose TCP: the contact says so, and Kamailio holds it
        assert "transport=tcp" in registered["contact"]
        assert kamailio.contacts("alice") == [registered["contact"]]
        await client.call("accounts.remove", {"id": account["id"]})
        await regs.wait(account["id"], "unregistered")
        assert kamailio.contacts("alice") == []
    queries = dns.log_text()
    assert f"query[NAPTR] {DOMAIN}" in queries and f"query[SRV] _sip._tcp.{DOMAIN}" in queries


async def test_srv_preferred_target_down_fails_over_to_the_next(kamailio, dnsmasq_factory,
                                                                tmp_path):
    closed = free_port()  # nothing listens there: the TCP connection is refused
    dns = dnsmasq_factory(
        naptr=[Naptr(DOMAIN, 10, 10, "S", "SIP+D2T", "", f"_sip._tcp.{DOMAIN}")],
        srv=[Srv(f"_sip._tcp.{DOMAIN}", f"down.{DOMAIN}", closed, 10),
             Srv(f"_sip._tcp.{DOMAIN}", f"up.{DOMAIN}", kamailio.tcp_port, 20)],
        a={f"down.{DOMAIN}": HOST, f"up.{DOMAIN}": HOST})
    async with running_sipd(tmp_path, dns_settings(dns)) as (_daemon, client, regs):
        account = await client.call("accounts.add", {"aor": kamailio.aor("bob"),
                                                     "password": PEER_USERS["bob"]})
        registered = await regs.wait(account["id"], "registered")
        assert "failed" not in regs.states(account["id"])  # failover is not a failure
        assert kamailio.contacts("bob") == [registered["contact"]]


async def test_when_the_registrar_goes_down_the_next_srv_target_takes_over(
        kamailio_factory, dnsmasq_factory, tmp_path):
    """Registered at the preferred server; it stops; a re-registration (what a network
    change triggers, here accounts.register) goes to the next server the records give."""
    first = kamailio_factory(tls=False)
    second = kamailio_factory(tls=False)
    dns = dnsmasq_factory(
        srv=[Srv(f"_sip._tcp.{DOMAIN}", f"one.{DOMAIN}", first.tcp_port, 10),
             Srv(f"_sip._tcp.{DOMAIN}", f"two.{DOMAIN}", second.tcp_port, 20)],
        a={f"one.{DOMAIN}": HOST, f"two.{DOMAIN}": HOST})
    async with running_sipd(tmp_path, dns_settings(dns)) as (_daemon, client, regs):
        account = await client.call("accounts.add", {"aor": first.aor("carol"),
                                                     "password": PEER_USERS["carol"],
                                                     "transport": "tcp"})
        registered = await regs.wait(account["id"], "registered")
        assert first.contacts("carol") == [registered["contact"]]
        assert second.contacts("carol") == []

        first.stop()
        await client.call("accounts.register", {"id": account["id"]})
        await off_loop(wait_until, lambda: second.contacts("carol"), timeout=20,
                       what="carol registered at the second Kamailio")
        state = await client.call("accounts.get", {"id": account["id"]})
        assert state["registration"]["state"] == "registered"
        assert "failed" not in regs.states(account["id"])


@pytest.mark.parametrize("listening", [False, True], ids=["no-tls-listener",
                                                         "own-tls-listener"])
async def test_tls_server_is_verified_against_the_domain_not_the_srv_target(
        kamailio, dnsmasq_factory, tmp_path, listening):
    """RFC 5922: over TLS the certificate must match the domain of the URI (example.test),
    not the host name an unsigned SRV record named (sip-tls.example.test, which is not in
    Kamailio's certificate). Without a TLS listener of its own sipd opens the connection
    before the REGISTER (its Contact names that connection); with one, the stack connects."""
    dns = dnsmasq_factory(
        srv=[Srv(f"_sips._tcp.{DOMAIN}", f"sip-tls.{DOMAIN}", kamailio.tls_port)],
        a={f"sip-tls.{DOMAIN}": HOST})
    settings = {**dns_settings(dns), "tls.ca_list": str(kamailio.ca_cert_path)}
    if listening:
        ours = kamailio.ca.issue("sipd", ["sipd.example.test"], ["127.0.0.1"])
        settings["tls.certificate"] = str(ours.chain_path)
    async with running_sipd(tmp_path, settings) as (daemon, client, regs):
        state = await client.call("system.state")
        assert ("tls" in state["sip"]["ports"]) is listening, state["sip"]
        account = await client.call("accounts.add", {"aor": kamailio.aor("dave"),
                                                     "password": PEER_USERS["dave"],
                                                     "transport": "tls"})
        registered = await regs.wait(account["id"], ("registered", "failed"))
        assert registered["state"] == "registered", registered
        assert "transport=tls" in registered["contact"]
        assert kamailio.contacts("dave") == [registered["contact"]]


async def test_a_domain_without_records_fails_with_the_lookups_and_backs_off(
        dnsmasq_factory, tmp_path):
    dns = dnsmasq_factory()  # example.test is local to it, and has no SIP records at all
    async with running_sipd(tmp_path, dns_settings(dns)) as (_daemon, client, regs):
        account = await client.call("accounts.add", {"aor": "sip:alice@nowhere.example.test",
                                                     "password": "x"})
        failed = await regs.wait(account["id"], "failed")
        assert "cannot locate the registrar" in failed["reason"], failed
        assert "nowhere.example.test" in failed["reason"]
        assert 30 <= failed["retry_in"] <= 37.5, failed  # backoff with jitter, not a loop
        await client.call("accounts.remove", {"id": account["id"]})
        await regs.wait(account["id"], "unregistered")


async def test_remove_while_the_name_server_is_silent_is_prompt(tmp_path):
    """No DNS answer comes (nothing listens at the configured name server): removing the
    account ends the lookup instead of waiting for its timeouts."""
    silent_dns = free_port()
    async with running_sipd(tmp_path, {"dns.nameservers": [f"{HOST}:{silent_dns}"]}) as (
            _daemon, client, regs):
        account = await client.call("accounts.add", {"aor": "sip:alice@example.test",
                                                     "password": "x"})
        await regs.wait(account["id"], "registering")  # and locating
        await client.call("accounts.remove", {"id": account["id"]})
        await regs.wait(account["id"], "unregistered")
        # the lookup was abandoned: it never came to "failed" (its timeouts add up to 15 s)
        assert regs.states(account["id"]) == ["registering", "unregistered"]
        ids = [a["id"] for a in (await client.call("accounts.list"))["accounts"]]
        assert account["id"] not in ids
