"""An account's XCAP settings: validated like settings, stored in its table, password hidden;
and contacts kept without XCAP survive a restart of the daemon."""

from __future__ import annotations

import json

import pytest

from sipctl.client import RpcCallError, connect
from sipd.accounts.model import AccountConfig
from sipd.accounts.xcap import XcapAccountSettings
from sipd.settings.errors import SettingError
from tests.harness.process import SipdProcess

ALICE = {"aor": "sip:alice@example.test", "password": "sip-secret"}


def test_defaults_come_from_the_account() -> None:
    account = AccountConfig.create("alice", {**ALICE, "xcap": {
        "root": "https://xcap.example.test/xcap-root"}})
    config = XcapAccountSettings.of(account)
    assert config is not None
    assert (config.username, config.password) == ("alice", "sip-secret")
    assert config.xui == "sip:alice@example.test" and config.verify is True
    assert not config.basic_in_clear and config.presence_service_uri is None
    assert XcapAccountSettings.of(AccountConfig.create("bob", {"aor": "sip:bob@x.test"})) is None
    # the global root serves accounts that set none
    assert XcapAccountSettings.of(AccountConfig.create("bob", {"aor": "sip:bob@x.test"}),
                                  "http://127.0.0.1:1/xcap-root") is not None


def test_changes_are_validated_and_merged() -> None:
    account = AccountConfig.create("alice", {**ALICE, "xcap": {
        "root": "https://xcap.example.test/xcap-root", "password": "xcap-secret"}})
    changed = account.updated({"xcap.verify_tls": False})
    table = changed.extra["xcap"]
    assert table["root"] == "https://xcap.example.test/xcap-root"
    assert table["password"] == "xcap-secret" and table["verify_tls"] is False
    public = changed.to_public()["xcap"]
    assert public["password_set"] is True and "password" not in public
    assert "xcap-secret" not in json.dumps(changed.to_public())
    with pytest.raises(SettingError, match="xcap.root must be an http"):
        account.updated({"xcap": {"root": "ftp://x"}})
    with pytest.raises(SettingError, match="not in the URL"):
        account.updated({"xcap.root": "https://alice:secret@xcap.example.test/root"})
    with pytest.raises(SettingError, match="unknown XCAP setting xcap.rot"):
        account.updated({"xcap": {"rot": "https://x"}})
    with pytest.raises(SettingError, match="xcap must be a table"):
        account.updated({"xcap": "https://x"})
    with pytest.raises(SettingError, match="accounts.alice.xcap.verify_tls"):
        AccountConfig.from_storage("alice", {**ALICE, "xcap": {"verify_tls": "no"}})


async def test_local_contacts_survive_a_restart(tmp_path) -> None:
    daemon = SipdProcess(tmp_path, {"accounts.alice.aor": "sip:alice@example.test",
                                    "accounts.alice.register": False}).start()
    try:
        async with connect(daemon.endpoint) as rpc:
            with pytest.raises(RpcCallError) as refused:
                await rpc.call("accounts.update", {"id": "alice",
                                                   "changes": {"xcap": {"root": "nope"}}})
            assert "xcap.root" in str(refused.value)
            await rpc.call("contacts.add", {"account": "alice", "uri": "sip:bob@example.test",
                                            "groups": ["Friends"]})
            await rpc.call("presence.authorize", {"account": "alice",
                                                  "watcher": "sip:eve@example.test",
                                                  "action": "block"})
            with pytest.raises(RpcCallError) as no_xcap:
                await rpc.call("xcap.get", {"account": "alice", "auid": "resource-lists"})
            assert "no XCAP server" in str(no_xcap.value)
        daemon.stop()
        daemon.start()
        async with connect(daemon.endpoint) as rpc:
            listing = await rpc.call("contacts.list", {})
            assert listing["contacts"] == [{"account": "alice", "uri": "sip:bob@example.test",
                                            "name": None, "groups": ["Friends"],
                                            "presence": False}]
            assert listing["accounts"] == [
                {"account": "local", "store": "local", "online": True, "pending": 0},
                {"account": "alice", "store": "local", "online": True, "pending": 0}]
            policies = await rpc.call("presence.policies", {"account": "alice"})
            assert policies["policies"] == [{"target": "sip:eve@example.test",
                                             "kind": "watcher", "action": "block"}]
    finally:
        daemon.stop()

