"""Registration end to end against scripted registrars (sipp UAS scenarios under
tests/peers/scenarios/register_uas_*.xml), through a real sipd daemon and its RPC: a lost
200 OK recovered by retransmission, 423 then 200, a refresh before the binding expires, a 401
loop that must not become ours, an unregister nobody answers (remove and shutdown stay
bounded), and a server that never answers (failover to the next one DNS SRV gives)."""

from __future__ import annotations

import re
import signal

import pytest
import trio

from tests.harness.registration import running_sipd
from tests.harness.sipp import branch, header, received_requests, received_so_far
from tests.harness.waits import off_loop, wait_until
from tests.peers.dnsmasq import Srv

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


async def test_a_lost_200_ok_is_recovered_by_retransmission(sipp, tmp_path):
    # -nr: sipp would take the retransmission for one of its own business (and drop it)
    uas = sipp.start("register_uas_lost_200.xml", timeout=40, extra_args=["-nr"])
    async with running_sipd(tmp_path) as (_daemon, client, regs):
        account = await client.call("accounts.add", {
            "aor": "sip:alice@example.test", "registrar": f"sip:{HOST}:{uas.local_port}"})
        registered = await regs.wait(account["id"], "registered")
        assert registered["expires"] == 600
        assert regs.states(account["id"]) == ["registering", "registered"]
        await client.call("accounts.remove", {"id": account["id"]})
        await regs.wait(account["id"], "unregistered")
    result = await off_loop(uas.wait, 10)
    assert result.ok, result.report()
    registers = received_requests(result)
    # the REGISTER, its retransmission (same transaction), then the unregister
    assert len(registers) == 3, result.messages[-6000:]
    assert branch(registers[0]) == branch(registers[1])
    assert header(registers[0], "CSeq") == header(registers[1], "CSeq")
    assert branch(registers[2]) != branch(registers[0])
    assert header(registers[2], "Expires") == "0"


async def test_423_then_200_registers_with_min_expires(sipp, tmp_path):
    uas = sipp.start("register_uas_423.xml", timeout=40)
    async with running_sipd(tmp_path) as (_daemon, client, regs):
        account = await client.call("accounts.add", {
            "aor": "sip:alice@example.test", "registrar": f"sip:{HOST}:{uas.local_port}"})
        registered = await regs.wait(account["id"], "registered")
        assert registered["expires"] == 1200
        assert "failed" not in regs.states(account["id"])
        await client.call("accounts.unregister", {"id": account["id"]})
        await regs.wait(account["id"], "unregistered")
    result = await off_loop(uas.wait, 10)
    assert result.ok, result.report()
    registers = received_requests(result)
    assert [header(r, "Expires") for r in registers] == ["600", "1200", "0"], registers
    cseqs = [int(header(r, "CSeq").split()[0]) for r in registers]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == 3  # a new transaction each time
    assert len({header(r, "Call-ID") for r in registers}) == 1


async def test_the_binding_is_refreshed_before_it_expires(sipp, tmp_path):
    """The registrar grants 10 s: the refresh comes before they are over, in the same
    Call-ID with the next CSeq, and changes nothing a client sees."""
    uas = sipp.start("register_uas_refresh.xml", timeout=60)
    async with running_sipd(tmp_path) as (_daemon, client, regs):
        account = await client.call("accounts.add", {
            "aor": "sip:alice@example.test", "registrar": f"sip:{HOST}:{uas.local_port}"})
        registered = await regs.wait(account["id"], "registered")
        assert registered["expires"] == 10
        await off_loop(wait_until, lambda: len(received_so_far(uas)) >= 2, timeout=20,
                       what="the refresh REGISTER")
        state = await client.call("accounts.get", {"id": account["id"]})
        assert state["registration"]["state"] == "registered"
        await client.call("accounts.remove", {"id": account["id"]})
        await regs.wait(account["id"], "unregistered")
        assert regs.states(account["id"]) == ["registering", "registered", "unregistered"]
    result = await off_loop(uas.wait, 10)
    assert result.ok, result.report()
    first, refresh, unregister = received_requests(result)
    assert header(refresh, "Call-ID") == header(first, "Call-ID")
    assert int(header(refresh, "CSeq").split()[0]) == int(header(first, "CSeq").split()[0]) + 1
    assert header(refresh, "Expires") == "600"  # it asks again for what it wants
    assert header(refresh, "Contact") == header(first, "Contact")
    assert header(unregister, "Expires") == "0"


async def test_the_address_the_registrar_saw_is_registered_instead(sipp, tmp_path):
    """The 200 says (Via received/rport) that our REGISTER came from another port than our
    Contact names, as through a NAT: sipd registers that address at once, removing the first
    binding in the same REGISTER, and does not go on re-registering."""
    uas = sipp.start("register_uas_nat.xml", timeout=40)
    async with running_sipd(tmp_path) as (_daemon, client, regs):
        account = await client.call("accounts.add", {
            "aor": "sip:alice@example.test", "registrar": f"sip:{HOST}:{uas.local_port}"})
        first = await regs.wait(account["id"], "registered")
        # from the event after the first registered one (the second may be there already)
        after = regs.states(account["id"]).index("registered") + 1
        learned = await regs.wait(account["id"], "registered", after=after)
        assert first["contact"] != learned["contact"]
        assert learned["contact"] == f"sip:{account['id']}@127.0.0.1:40000"
        await client.call("accounts.remove", {"id": account["id"]})
        await regs.wait(account["id"], "unregistered")
        assert regs.states(account["id"]) == ["registering", "registered", "registered",
                                              "unregistered"]
    result = await off_loop(uas.wait, 10)
    assert result.ok, result.report()
    registers = received_requests(result)
    assert len(registers) == 3, registers
    contacts = re.findall(r"^Contact:\s*(.*?)\s*$", registers[1], re.MULTILINE)
    assert contacts == [f"<{learned['contact']}>", f"<{first['contact']}>;expires=0"], contacts
    assert header(registers[2], "Contact") == f"<{learned['contact']}>"
    assert header(registers[2], "Expires") == "0"


async def test_an_unanswered_unregister_keeps_remove_and_shutdown_bounded(sipp, tmp_path):
    uas = sipp.start("register_uas_deaf_unregister.xml", calls=2, timeout=60)
    registrar = f"sip:{HOST}:{uas.local_port}"
    async with running_sipd(tmp_path) as (daemon, client, regs):
        ids = []
        for user in ("alice", "bob"):
            account = await client.call("accounts.add", {"aor": f"sip:{user}@example.test",
                                                         "registrar": registrar})
            await regs.wait(account["id"], "registered")
            ids.append(account["id"])
        # remove: the unregister gets no answer; the call returns after the bounded wait
        await client.call("accounts.remove", {"id": ids[0]}, timeout=30)
        unregistered = await regs.wait(ids[0], "unregistered")
        assert "expires on its own" in unregistered["reason"], unregistered
        # shutdown: the same bound, then the daemon is gone
        daemon.signal(signal.SIGTERM)
        assert await off_loop(daemon.wait, 30) == 0
    uas.stop()
    registers = received_requests(await off_loop(uas.wait, 0))
    unregisters = [r for r in registers if header(r, "Expires") == "0"]
    assert {header(r, "Call-ID") for r in unregisters} == \
        {header(r, "Call-ID") for r in registers}  # both accounts tried to unregister


async def test_a_401_loop_ends_in_failed_not_in_a_loop(sipp, tmp_path):
    uas = sipp.start("register_uas_401_loop.xml", timeout=40)
    async with running_sipd(tmp_path) as (_daemon, client, regs):
        account = await client.call("accounts.add", {
            "aor": "sip:alice@example.test", "password": "whatever",
            "registrar": f"sip:{HOST}:{uas.local_port}"})
        failed = await regs.wait(account["id"], "failed")
        assert failed["code"] == 401
        assert "password" in failed["reason"], failed
        assert failed["retry_in"] >= 300
        await trio.sleep(2)  # a loop would show dozens of REGISTERs meanwhile
        assert regs.states(account["id"]) == ["registering", "failed"]
        # nothing is bound: removing the account sends nothing more
        await client.call("accounts.remove", {"id": account["id"]})
        await regs.wait(account["id"], "unregistered")
    uas.stop()  # it would wait for more REGISTERs
    result = await off_loop(uas.wait, 0)
    registers = received_requests(result)
    assert len(registers) == 2, registers  # the first, and one answer to the challenge
    assert header(registers[0], "Authorization") is None
    assert 'username="alice"' in header(registers[1], "Authorization")


async def test_a_registrar_that_never_answers_fails_over_to_the_next_srv_target(
        sipp, dnsmasq_factory, tmp_path):
    """SRV gives two registrars: the preferred one never answers; after the transaction
    times out (64*T1: 3.2 s with sip.t1 = 50 ms) the REGISTER goes to the second one."""
    silent = sipp.start("register_uas_silent.xml", timeout=60)
    good = sipp.start("register_uas_200.xml", timeout=60)
    dns = dnsmasq_factory(
        srv=[Srv("_sip._udp.example.test", "silent.example.test", silent.local_port, 10),
             Srv("_sip._udp.example.test", "good.example.test", good.local_port, 20)],
        a={"silent.example.test": HOST, "good.example.test": HOST})
    try:
        settings = {"dns.nameservers": [f"{HOST}:{dns.port}"], "sip.t1": 50}
        async with running_sipd(tmp_path, settings) as (_daemon, client, regs):
            account = await client.call("accounts.add", {
                "aor": "sip:alice@example.test", "transport": "udp"})
            registered = await regs.wait(account["id"], "registered", timeout=40)
            assert registered["expires"] == 600
            assert "failed" not in regs.states(account["id"])
            await client.call("accounts.remove", {"id": account["id"]})
            await regs.wait(account["id"], "unregistered")
        result = await off_loop(good.wait, 10)
        assert result.ok, result.report()
        good_registers = received_requests(result)
        assert [header(r, "Expires") for r in good_registers] == ["600", "0"]
    finally:
        good.stop()
        silent.stop()
    silent_result = await off_loop(silent.wait, 0)
    silent_registers = received_requests(silent_result)
    # the first REGISTER and its retransmissions, all of one transaction, nothing after
    assert len(silent_registers) >= 2, silent_result.messages[-3000:]
    assert len({branch(r) for r in silent_registers}) == 1
    assert header(silent_registers[0], "Call-ID") == header(good_registers[0], "Call-ID")
