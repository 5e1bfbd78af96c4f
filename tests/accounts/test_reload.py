"""Accounts written into the settings file by hand are picked up on SIGHUP."""

from __future__ import annotations

import signal

import trio


async def test_sighup_adds_and_removes_accounts(sipd, client):
    text = sipd.config.read_text()
    sipd.config.write_text(text + '\n[accounts.bob]\naor = "sip:bob@example.test"\n'
                                  'register = false\n')
    sipd.signal(signal.SIGHUP)
    with trio.fail_after(10):
        while "bob" not in [a["id"] for a in (await client.call("accounts.list"))["accounts"]]:
            await trio.sleep(0.05)
    bob = await client.call("accounts.get", {"id": "bob"})
    assert bob["aor"] == "sip:bob@example.test" and bob["registration"]["state"] == "unregistered"

    sipd.config.write_text(text)
    sipd.signal(signal.SIGHUP)
    with trio.fail_after(10):
        while "bob" in [a["id"] for a in (await client.call("accounts.list"))["accounts"]]:
            await trio.sleep(0.05)


async def test_sighup_with_a_broken_account_keeps_the_old_ones(sipd, client):
    await client.call("accounts.add", {"aor": "sip:carol@example.test", "register": False})
    text = sipd.config.read_text()
    sipd.config.write_text(text + '\n[accounts.dave]\naor = "not a uri"\n')
    sipd.signal(signal.SIGHUP)
    with trio.fail_after(10):
        while "configuration not reloaded" not in sipd.log():
            await trio.sleep(0.05)
    ids = [a["id"] for a in (await client.call("accounts.list"))["accounts"]]
    assert "carol-example-test" in ids and "dave" not in ids
