"""Accounts written by hand, in the settings file or as files of the accounts directory, are
picked up on SIGHUP."""

from __future__ import annotations

import signal

from tests.harness.waits import eventually


async def listed(client, account: str, present: bool = True) -> bool:
    return (account in [a["id"] for a in (await client.call("accounts.list"))["accounts"]]
            ) is present


async def test_sighup_adds_and_removes_accounts(sipd, client):
    text = sipd.config.read_text()
    sipd.config.write_text(text + '\n[accounts.bob]\naor = "sip:bob@example.test"\n'
                                  'register = false\n')
    sipd.signal(signal.SIGHUP)
    await eventually(lambda: listed(client, "bob"), timeout=10, what="bob listed")
    bob = await client.call("accounts.get", {"id": "bob"})
    assert bob["aor"] == "sip:bob@example.test" and bob["registration"]["state"] == "unregistered"

    sipd.config.write_text(text)
    sipd.signal(signal.SIGHUP)
    await eventually(lambda: listed(client, "bob", False), timeout=10, what="bob gone")


async def test_sighup_with_a_broken_account_keeps_the_old_ones(sipd, client):
    await client.call("accounts.add", {"aor": "sip:carol@example.test", "register": False})
    text = sipd.config.read_text()
    sipd.config.write_text(text + '\n[accounts.dave]\naor = "not a uri"\n')
    sipd.signal(signal.SIGHUP)
    await eventually(lambda: "configuration not reloaded" in sipd.log(), timeout=10,
                     what="'configuration not reloaded' in sipd.log()")
    ids = [a["id"] for a in (await client.call("accounts.list"))["accounts"]]
    assert "carol-example-test" in ids and "dave" not in ids


async def test_sighup_reads_the_account_files_an_admin_edited(sipd, client):
    carol = await client.call("accounts.add", {"aor": "sip:carol@example.test",
                                               "register": False})
    directory = sipd.config.parent / "accounts"
    file = directory / f"{carol['id']}.toml"
    file.write_text(file.read_text().replace('display_name = ""', 'display_name = "Carol"'))
    (directory / "dan.toml").write_text('aor = "sip:dan@example.test"\nregister = false\n')
    settings_before = sipd.config.read_bytes()
    sipd.signal(signal.SIGHUP)
    await eventually(lambda: listed(client, "dan"), timeout=10, what="dan listed")
    assert (await client.call("accounts.get", {"id": carol["id"]}))["display_name"] == "Carol"
    assert sipd.config.read_bytes() == settings_before  # the admin's file stays as it was

    file.unlink()
    sipd.signal(signal.SIGHUP)
    await eventually(lambda: listed(client, carol["id"], False), timeout=10,
                     what="carol gone")
