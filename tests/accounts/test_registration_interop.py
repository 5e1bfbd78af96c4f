"""Registration end to end: a real sipd daemon, driven over RPC, registering with Kamailio
(digest users in its SQLite table) over UDP, TCP and TLS; unregistering on request, on remove
and on SIGTERM; a wrong password that fails without looping; fifty accounts at once; sipctl.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from typing import Any

import pytest
import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess, write_config
from tests.harness.registration import EVENT_WAIT, add_account, kamailio_registers, running_sipd
from tests.harness.sipctl import run_sipctl
from tests.harness.waits import off_loop, wait_until
from tests.peers.certs import TestCA
from tests.peers.fixtures import PEER_USERS
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.interop

def kamailio_registrar(kamailio, transport: str) -> str:
    return kamailio.proxy_uri(transport)


def tls_settings(kamailio) -> dict[str, Any]:
    return {"tls.ca_list": str(kamailio.ca_cert_path)}


# --- Kamailio over UDP, TCP and TLS --------------------------------------------------------------

@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_register_unregister_remove_with_kamailio(kamailio, tmp_path, transport):
    async with running_sipd(tmp_path, tls_settings(kamailio)) as (_daemon, client, regs):
        account = await add_account(client, aor=kamailio.aor("alice"),
                                    password=PEER_USERS["alice"], display_name="Alice",
                                    registrar=kamailio_registrar(kamailio, transport))
        account_id = account["id"]
        await regs.wait(account_id, "registering")
        registered = await regs.wait(account_id, "registered")
        assert registered["expires"] > 0
        contact = registered["contact"]
        # where Kamailio reaches us: over TLS (no listener of ours: no certificate) the
        # port is our end of the connection
        assert re.match(rf"sip:{account_id}@127\.0\.0\.1:\d+", contact), contact
        if transport != "udp":
            assert f"transport={transport}" in contact
        bindings = kamailio.contacts("alice")
        assert bindings == [contact], (bindings, contact)

        # accounts.get shows the state too
        shown = await client.call("accounts.get", {"id": account_id})
        assert shown["registration"]["state"] == "registered"
        assert "password" not in shown and shown["password_set"] is True

        # unregister: the binding goes, the account stays
        mark = regs.mark(account_id)
        await client.call("accounts.unregister", {"id": account_id})
        unregistered = await regs.wait(account_id, "unregistered", after=mark)
        assert "reason" not in unregistered, unregistered  # a clean unregister
        assert kamailio.contacts("alice") == []

        # register again, then remove: remove unregisters
        mark = regs.mark(account_id)
        await client.call("accounts.register", {"id": account_id})
        await regs.wait(account_id, "registered", after=mark)
        assert kamailio.contacts("alice") == [contact]
        mark = regs.mark(account_id)
        await client.call("accounts.remove", {"id": account_id})
        await regs.wait(account_id, "unregistered", after=mark)
        assert kamailio.contacts("alice") == []
        ids = [a["id"] for a in (await client.call("accounts.list"))["accounts"]]
        assert account_id not in ids


@pytest.mark.parametrize("transport", ["udp", "tls"])
async def test_sigterm_unregisters_within_the_bounded_wait(kamailio, tmp_path, transport):
    async with running_sipd(tmp_path, tls_settings(kamailio)) as (daemon, client, regs):
        for user in ("alice", "bob"):
            account = await add_account(client, aor=kamailio.aor(user),
                                        password=PEER_USERS[user],
                                        registrar=kamailio_registrar(kamailio, transport))
            await regs.wait(account["id"], "registered")
            assert kamailio.contacts(user)
        daemon.signal(signal.SIGTERM)
        # the unregistration is bounded (5 s) and the daemon's own exit with it
        assert await off_loop(daemon.wait, 20) == 0
    assert kamailio.contacts("alice") == []
    assert kamailio.contacts("bob") == []
    log = daemon.log()
    assert "Traceback" not in log, log[-5000:]


def contacts_held(kamailio: Kamailio) -> int:
    """The contacts Kamailio's location table holds, all users together (its usrloc
    counter: ul.dump of hundreds is more than kamcmd takes)."""
    out = kamailio.rpc("stats.get_statistics", "usrloc:")
    found = re.search(r"location_contacts = (\d+)", out)
    assert found, out
    return int(found.group(1))


async def test_sigterm_unregisters_hundreds_of_accounts(kamailio_factory, tmp_path):
    """A daemon with hundreds of accounts registered at a Kamailio of its own (UDP): SIGTERM
    leaves none of them registered there, and the daemon exits 0 (within its bounded stop)."""
    count = 400
    kamailio = kamailio_factory(tls=False, debug=1)
    users = {f"many{n:03d}": f"secret-many-{n:03d}" for n in range(count)}
    with sqlite3.connect(kamailio.db_path, timeout=30) as db:
        db.executemany("INSERT OR REPLACE INTO subscriber (username, domain, password) "
                       "VALUES (?, ?, ?)",
                       [(user, kamailio.domain, password) for user, password in users.items()])
    db.close()
    daemon = SipdProcess(tmp_path, {"sip.listen_address": "127.0.0.1", "log.level": "info"},
                         name="many")
    write_config(daemon.config, daemon.settings)
    accounts = daemon.config.parent / "accounts"  # stored as the daemon stores them
    accounts.mkdir(mode=0o700, parents=True)
    for user, password in users.items():
        path = accounts / f"{user}.toml"
        path.write_text(f"aor = {json.dumps(kamailio.aor(user))}\n"
                        f"password = {json.dumps(password)}\n"
                        f"registrar = {json.dumps(kamailio.proxy_uri('udp'))}\n"
                        "expires = 600\n")
        path.chmod(0o600)
    daemon.start(write_settings=False)
    try:
        async with connect(daemon.endpoint) as client:
            async def all_registered() -> bool:
                state = await client.call("system.state")
                return state["accounts"]["registration"]["registered"] == count

            with trio.fail_after(120):
                while not await all_registered():
                    await trio.sleep(0.2)
        assert await off_loop(contacts_held, kamailio) == count
        daemon.signal(signal.SIGTERM)
        assert await off_loop(daemon.wait, 30) == 0
    except BaseException:
        print(daemon.log()[-20000:])
        raise
    finally:
        daemon.stop()
    assert await off_loop(contacts_held, kamailio) == 0
    log = daemon.log()
    assert "Traceback" not in log and "did not stop" not in log, log[-5000:]


async def test_accounts_in_the_config_register_at_start_and_unregister_on_shutdown(
        kamailio, tmp_path):
    """An account stored by one daemon is registered by the next one at start-up; the
    system.shutdown call unregisters like SIGTERM."""
    async with running_sipd(tmp_path) as (daemon, client, regs):
        account = await add_account(client, aor=kamailio.aor("carol"),
                                    password=PEER_USERS["carol"],
                                    registrar=kamailio_registrar(kamailio, "tcp"))
        await regs.wait(account["id"], "registered")
    assert kamailio.contacts("carol") == []  # the daemon stopped: unregistered
    daemon.start()
    try:
        async with connect(daemon.endpoint) as client:
            await off_loop(wait_until, lambda: kamailio.contacts("carol"), timeout=EVENT_WAIT,
                           what="carol registered again by the restarted daemon")
            state = await client.call("accounts.get", {"id": account["id"]})
            assert state["registration"]["state"] == "registered"
            await client.call("system.shutdown")
        assert await off_loop(daemon.wait, 20) == 0
    finally:
        daemon.stop()
    assert kamailio.contacts("carol") == []


async def test_tls_with_a_ca_that_does_not_match_fails_with_a_certificate_reason(
        kamailio, tmp_path):
    other_ca = TestCA(tmp_path / "other-ca")
    async with running_sipd(tmp_path, {"tls.ca_list": str(other_ca.ca_cert_path)}) as (
            _daemon, client, regs):
        account = await add_account(client, aor=kamailio.aor("alice"),
                                    password=PEER_USERS["alice"],
                                    registrar=kamailio_registrar(kamailio, "tls"))
        failed = await regs.wait(account["id"], "failed")
        assert "certificate" in failed["reason"], failed
        assert failed["retry_in"] > 0
        assert kamailio.contacts("alice") == []
        assert "registered" not in regs.states(account["id"])


# --- a registrar that is down, then back ------------------------------------------------------

async def test_registrar_down_fails_with_a_backoff_then_registers_when_back(
        peers, tmp_path):
    kamailio = Kamailio(tmp_path, users=dict(PEER_USERS), tls=False)  # not started yet
    peers.add(kamailio)
    async with running_sipd(tmp_path) as (_daemon, client, regs):
        account = await add_account(client, aor=kamailio.aor("alice"),
                                    password=PEER_USERS["alice"],
                                    registrar=kamailio_registrar(kamailio, "tcp"))
        failed = await regs.wait(account["id"], "failed")
        assert failed["code"] == 503 and "cannot reach the registrar" in failed["reason"]
        assert 30 <= failed["retry_in"] <= 37.5, failed  # 30 s, +0..25 % jitter
        kamailio.start()
        # what a client does when it knows the network is back; else the retry comes
        mark = regs.mark(account["id"])
        await client.call("accounts.register", {"id": account["id"]})
        registered = await regs.wait(account["id"], "registered", after=mark)
        assert kamailio.contacts("alice") == [registered["contact"]]


# --- a wrong password ---------------------------------------------------------------------------

async def test_wrong_password_fails_once_and_does_not_loop(kamailio, tmp_path):
    async with running_sipd(tmp_path) as (_daemon, client, regs):
        account = await add_account(client, aor=kamailio.aor("dave"), password="not-the-one",
                                    registrar=kamailio_registrar(kamailio, "udp"))
        failed = await regs.wait(account["id"], "failed")
        assert failed["code"] in (401, 403), failed
        assert "password" in failed["reason"] or "credentials" in failed["reason"], failed
        assert failed["retry_in"] >= 300, failed
        assert "retry_at" in failed
        await trio.sleep(3)  # were it a loop, Kamailio would see dozens of REGISTERs by now
        registers = kamailio_registers(kamailio)
        assert 1 <= len(registers) <= 3, registers
        assert regs.states(account["id"]) == ["registering", "failed"]
        assert kamailio.contacts("dave") == []
        shown = await client.call("accounts.get", {"id": account["id"]})
        assert shown["registration"]["state"] == "failed"
        assert shown["registration"]["code"] == failed["code"]

        # fixing the password re-registers at once
        mark = regs.mark(account["id"])
        await client.call("accounts.update", {"id": account["id"],
                                              "changes": {"password": PEER_USERS["dave"]}})
        await regs.wait(account["id"], "registered", after=mark)
        assert kamailio.contacts("dave")


# --- fifty accounts at once -------------------------------------------------------------------

async def test_fifty_accounts_register_at_once(kamailio, tmp_path):
    users = {f"user{n:02d}": f"secret-{n:02d}" for n in range(50)}
    for user, password in users.items():
        kamailio.add_user(user, password)
    async with running_sipd(tmp_path) as (_daemon, client, regs):
        ids: dict[str, str] = {}

        async def add(user: str, transport: str) -> None:
            account = await add_account(client, aor=kamailio.aor(user), password=users[user],
                                        registrar=kamailio_registrar(kamailio, transport))
            ids[user] = account["id"]

        async with trio.open_nursery() as nursery:
            for n, user in enumerate(users):
                nursery.start_soon(add, user, "udp" if n % 2 else "tcp")
        assert len(ids) == 50
        for account_id in ids.values():
            registered = await regs.wait(account_id, "registered", timeout=60)
            assert registered["expires"] > 0
        listed = (await client.call("accounts.list"))["accounts"]
        states = {a["id"]: a["registration"]["state"] for a in listed}
        assert all(states[i] == "registered" for i in ids.values()), states
        for user in ("user00", "user25", "user49"):
            assert kamailio.contacts(user), user


# --- sipctl ------------------------------------------------------------------------------------

async def test_sipctl_adds_lists_gets_and_removes_an_account(kamailio, tmp_path):
    async with running_sipd(tmp_path) as (daemon, client, regs):
        added = await off_loop(run_sipctl, daemon, "--json", "accounts", "add",
                               "--aor", kamailio.aor("bob"), "--password", "-",
                               "--registrar", kamailio_registrar(kamailio, "tcp"),
                               stdin=PEER_USERS["bob"] + "\n")
        assert added.returncode == 0, added.stderr
        account_id = json.loads(added.stdout)["id"]
        await regs.wait(account_id, "registered")

        listed = await off_loop(run_sipctl, daemon, "--json", "accounts", "list")
        assert listed.returncode == 0, listed.stderr
        accounts = {a["id"]: a for a in json.loads(listed.stdout)["accounts"]}
        assert accounts[account_id]["registration"]["state"] == "registered"
        assert "password" not in accounts[account_id]
        table = await off_loop(run_sipctl, daemon, "accounts", "list")
        assert table.returncode == 0 and account_id in table.stdout
        assert "registered" in table.stdout

        got = await off_loop(run_sipctl, daemon, "--json", "accounts", "get", account_id)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["aor"] == kamailio.aor("bob")
        assert PEER_USERS["bob"] not in got.stdout

        missing = await off_loop(run_sipctl, daemon, "accounts", "get", "nobody")
        assert missing.returncode == 1 and "nobody" in missing.stderr

        removed = await off_loop(run_sipctl, daemon, "--json", "accounts", "remove", account_id)
        assert removed.returncode == 0, removed.stderr
        await regs.wait(account_id, "unregistered")
        assert kamailio.contacts("bob") == []

        # and `sipctl call` reaches the same methods
        again = await off_loop(run_sipctl, daemon, "--json", "call", "accounts.add", json.dumps(
            {"aor": kamailio.aor("bob"), "password": PEER_USERS["bob"],
             "registrar": kamailio_registrar(kamailio, "udp")}))
        assert again.returncode == 0, again.stderr
        await regs.wait(json.loads(again.stdout)["id"], "registered")
