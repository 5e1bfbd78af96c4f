"""AccountConfig: validation that names the field and what is allowed, public and stored
views, ids; and AccountStore over a real SettingsStore in a temporary directory."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from sipd.accounts.model import (
    LOCAL_ID,
    AccountConfig,
    AccountNotFound,
    DuplicateAccount,
    ReadOnlyAccount,
    account_id_for,
    describe,
)
from sipd.accounts.store import AccountStore
from sipd.settings.errors import ConfigError, PersistError, SettingError
from sipd.settings.store import SettingsStore

ALICE = {"aor": "sip:alice@example.test", "password": "s3cret-Pa55"}


def create(**values) -> AccountConfig:
    return AccountConfig.create("x", ALICE | values)


def refused(values: dict, *, base: AccountConfig | None = None) -> SettingError:
    with pytest.raises(SettingError) as info:
        if base is None:
            AccountConfig.create("x", values)
        else:
            base.updated(values)
    return info.value


# --- validation --------------------------------------------------------------------------------

def test_defaults_and_derived_values():
    account = create()
    assert (account.display_name, account.username, account.registrar) == ("", "", "")
    assert (account.transport, account.register, account.expires) == ("", True, 600)
    assert account.auth_username == "alice"
    assert account.locates_registrar and str(account.registrar_uri) == "sip:example.test"
    assert account.outbound_proxy_uri is None
    sips = create(aor="sips:bob@Example.TEST:5071", username="bob-auth")
    assert sips.aor == "sips:bob@example.test:5071"  # host case normalised
    assert str(sips.registrar_uri) == "sips:example.test:5071"
    assert sips.auth_username == "bob-auth"
    explicit = create(registrar="sip:127.0.0.1:5060;transport=tcp")
    assert not explicit.locates_registrar
    assert str(explicit.registrar_uri) == "sip:127.0.0.1:5060;transport=tcp"


@pytest.mark.parametrize("values, key, words", [
    ({}, "aor", ["aor is required"]),
    ({"aor": ""}, "aor", ["aor must be", "it is required"]),
    ({"aor": "alice@example.test"}, "aor", ['did you mean "sip:alice@example.test"']),
    ({"aor": "sip:example.test"}, "aor", ["needs a user part"]),
    ({"aor": "tel:+15551234"}, "aor", ["tel:", "not sip: or sips:"]),
    ({"aor": "sip:alice:pw@example.test"}, "aor", ["password field"]),
    ({"aor": 5}, "aor", ["aor must be a sip: or sips: address of record", "got 5"]),
    (ALICE | {"registrar": "sip:alice@registrar.test"}, "registrar",
     ["no user part", "sip:registrar.test"]),
    (ALICE | {"registrar": "registrar.test:5060"}, "registrar", ["sip:"]),
    (ALICE | {"outbound_proxy": "http://proxy"}, "outbound_proxy", ["not sip: or sips:"]),
    (ALICE | {"transport": "UDP"}, "transport", ['one of "", "udp", "tcp", "tls"',
                                                  'did you mean "udp"']),
    (ALICE | {"expires": 5}, "expires", ["an integer 60..86400", "out of range"]),
    (ALICE | {"expires": "600"}, "expires", ["without quotes"]),
    (ALICE | {"register": "yes"}, "register", ["true or false"]),
    (ALICE | {"display_name": "A\nB"}, "display_name", ["control character"]),
    (ALICE | {"pasword": "x"}, "pasword", ["unknown account field", "did you mean password"]),
    (ALICE | {"id": "mine"}, "id", ["chosen by sipd"]),
    (ALICE | {"password_set": True}, "password_set", ["send password"]),
    (ALICE | {"aor": "sips:alice@example.test", "transport": "udp"}, "transport",
     ['"tls" or ""', "sips:"]),
])
def test_validation_names_the_field_and_what_is_allowed(values, key, words):
    error = refused(values)
    assert error.key == key
    for word in words:
        assert word in str(error), str(error)


def test_a_bad_password_value_is_never_echoed():
    error = refused(ALICE | {"password": 12345678})
    assert error.key == "password" and "12345678" not in str(error)
    assert "a hidden value" in str(error)


def test_partial_update_keeps_what_is_not_given():
    account = create(display_name="Alice")
    changed = account.updated({"expires": 3600})
    assert changed.expires == 3600 and changed.password == ALICE["password"]
    assert changed.display_name == "Alice" and account.expires == 600  # immutable
    assert account.changed_fields(changed) == {"expires"}
    assert refused({"registrar": "bogus"}, base=account).key == "registrar"


def test_public_view_never_holds_the_password():
    public = create().to_public()
    assert "password" not in public and public["password_set"] is True
    assert ALICE["password"] not in json.dumps(public)
    assert ALICE["password"] not in repr(create())
    assert create(password="").to_public()["password_set"] is False
    assert public == {"id": "x", "aor": "sip:alice@example.test", "display_name": "",
                      "username": "alice", "password_set": True, "registrar": "",
                      "outbound_proxy": "", "transport": "", "register": True,
                      "expires": 600, "auto_answer": False,
                      "accept_files_from_contacts": False, "voicemail": "",
                      "message_summary": True, "auto_accept_chat": False, "local": False}


def test_auto_answer_is_a_bool_off_by_default_and_stored(store, path):
    assert create().auto_answer is False and store.local.auto_answer is False
    assert refused(ALICE | {"auto_answer": "yes"}).key == "auto_answer"
    assert refused(ALICE | {"auto_answer": 1}).key == "auto_answer"
    alice = store.add(ALICE | {"auto_answer": True, "register": False})
    assert alice.auto_answer is True and alice.to_public()["auto_answer"] is True
    assert on_disk(path, alice.id)["auto_answer"] is True
    assert reopen(path).get(alice.id).auto_answer is True
    old, new = store.update(alice.id, {"auto_answer": False})
    assert old.changed_fields(new) == {"auto_answer"} and not new.auto_answer
    with pytest.raises(ReadOnlyAccount):
        store.update(LOCAL_ID, {"auto_answer": True})


def test_storage_round_trip_keeps_unknown_groups():
    table = {**ALICE, "expires": 900, "presence": {"enabled": True}, "future_key": 3}
    account = AccountConfig.from_storage("alice", table)
    assert account.expires == 900 and account.extra == {"presence": {"enabled": True},
                                                        "future_key": 3}
    stored = account.to_storage()
    assert stored["password"] == ALICE["password"] and stored["presence"] == {"enabled": True}
    assert AccountConfig.from_storage("alice", stored) == account


def test_storage_errors_name_the_table():
    with pytest.raises(SettingError) as info:
        AccountConfig.from_storage("bob", {"aor": "sip:bob@example.test", "expires": 1})
    assert info.value.key == "accounts.bob.expires"
    assert str(info.value).startswith("accounts.bob.expires must be an integer 60..86400")
    with pytest.raises(SettingError, match=r"accounts\.bob\.aor is required"):
        AccountConfig.from_storage("bob", {"password": "x"})
    with pytest.raises(SettingError, match="must be a table"):
        AccountConfig.from_storage("bob", "sip:bob@example.test")


def test_describe_lists_every_field():
    fields = {item["key"]: item for item in describe()}
    assert list(fields) == ["aor", "display_name", "username", "password", "registrar",
                            "outbound_proxy", "transport", "register", "expires",
                            "auto_answer", "accept_files_from_contacts", "voicemail",
                            "message_summary", "auto_accept_chat"]
    assert fields["aor"]["required"] and not fields["expires"]["required"]
    assert fields["password"]["secret"] and fields["expires"]["minimum"] == 60


@pytest.mark.parametrize("aor, taken, expected", [
    ("sip:alice@example.test", [], "alice-example-test"),
    ("sip:alice@example.test", ["alice-example-test"], "alice-example-test-2"),
    ("sip:alice@example.test", ["alice-example-test", "alice-example-test-2"],
     "alice-example-test-3"),
    ("sips:Bob.Smith@EXAMPLE.test:5061;user=phone", [], "bob-smith-example-test-5061"),
    ("sip:local", [], "local-2"),
    ("sip:%C3%A9l%C3%A8ne@x", [], "elene-x"),
    ("sip:%E2%98%8E@[2001:db8::1]", [], "2001-db8-1"),
])
def test_account_ids(aor, taken, expected):
    assert account_id_for(aor, taken) == expected


# --- the store -----------------------------------------------------------------------------------

def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def account_file(path: Path, account_id: str) -> Path:
    """Where an account added over RPC lives: its own file beside the settings file."""
    return path.parent / "accounts" / f"{account_id}.toml"


def on_disk(path: Path, account_id: str) -> dict:
    return tomllib.loads(account_file(path, account_id).read_text())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sipd.toml"


@pytest.fixture
def settings(path: Path) -> SettingsStore:
    return SettingsStore.open(path)


@pytest.fixture
def store(settings: SettingsStore) -> AccountStore:
    return AccountStore(settings)


def reopen(path: Path) -> AccountStore:
    return AccountStore(SettingsStore.open(path))


def test_local_account_always_exists_and_is_not_stored(store, path):
    assert [a.id for a in store.list()] == [LOCAL_ID]
    local = store.get(LOCAL_ID)
    assert local.is_local and not local.registers and local.to_public()["register"] is False
    assert LOCAL_ID in store and len(store) == 1
    with pytest.raises(ReadOnlyAccount):
        store.update(LOCAL_ID, {"display_name": "me"})
    with pytest.raises(ReadOnlyAccount):
        store.remove(LOCAL_ID)
    store.add(ALICE)
    assert not account_file(path, "local").exists()
    assert "accounts" not in tomllib.loads(path.read_text())


def test_add_persists_privately_and_survives_a_reload(store, path):
    alice = store.add(ALICE | {"display_name": "Alice", "registrar": "sip:127.0.0.1:5060"})
    assert alice.id == "alice-example-test"
    assert store.get(alice.id) == alice and [a.id for a in store.list()] == ["local", alice.id]
    assert mode_of(account_file(path, alice.id)) == 0o600
    assert mode_of(account_file(path, alice.id).parent) == 0o700
    stored = on_disk(path, alice.id)
    assert stored["aor"] == "sip:alice@example.test"
    assert stored["password"] == ALICE["password"]  # the file holds it: that is why 0600
    assert "accounts" not in tomllib.loads(path.read_text())  # the settings file stays short
    again = reopen(path)
    assert again.get(alice.id) == alice
    assert again.get(alice.id).password == ALICE["password"]
    assert ALICE["password"] not in json.dumps([a.to_public() for a in again.list()])


def test_update_is_partial_keeps_the_secret_and_persists(store, path):
    alice = store.add(ALICE)
    old, new = store.update(alice.id, {"expires": 1200, "display_name": "Alice L."})
    assert old == alice and new.expires == 1200 and new.password == ALICE["password"]
    assert reopen(path).get(alice.id) == new
    _, newer = store.update(alice.id, {"password": "changed"})
    assert reopen(path).get(alice.id).password == "changed" and newer.expires == 1200
    assert mode_of(account_file(path, alice.id)) == 0o600


def test_a_refused_update_changes_nothing(store, path):
    alice = store.add(ALICE)
    before = account_file(path, alice.id).read_bytes()
    with pytest.raises(SettingError) as info:
        store.update(alice.id, {"expires": 1200, "transport": "sctp"})
    assert info.value.key == "transport"
    assert account_file(path, alice.id).read_bytes() == before and store.get(alice.id) == alice


def test_a_failed_write_changes_nothing_in_memory(store, monkeypatch):
    alice = store.add(ALICE)

    def fail(*args, **kwargs):
        raise PersistError("cannot save: the disk is full", path=Path("/x"))

    monkeypatch.setattr(store.directory, "write", fail)
    monkeypatch.setattr(store.directory, "remove", fail)
    with pytest.raises(PersistError):
        store.update(alice.id, {"expires": 1200})
    with pytest.raises(PersistError):
        store.add({"aor": "sip:bob@example.test"})
    with pytest.raises(PersistError):
        store.remove(alice.id)
    assert store.get(alice.id).expires == 600 and store.ids() == ["local", alice.id]


def test_duplicate_aor_is_refused_clearly(store):
    alice = store.add(ALICE)
    with pytest.raises(DuplicateAccount) as info:
        store.add({"aor": "sips:alice@EXAMPLE.test"})
    assert info.value.existing_id == alice.id and info.value.key == "aor"
    assert alice.id in str(info.value) and "update that account" in str(info.value)
    bob = store.add({"aor": "sip:bob@example.test"})
    with pytest.raises(DuplicateAccount):
        store.update(bob.id, {"aor": "sip:alice@example.test"})
    with pytest.raises(DuplicateAccount):
        store.add({"aor": store.local.aor})
    assert store.find_by_aor("sip:Bob@example.test") is None  # the user part is case-exact
    assert store.find_by_aor("sip:bob@EXAMPLE.test") == bob


def test_ids_stay_unique_and_remove_deletes_the_table(store, path):
    first = store.add({"aor": "sip:alice@example.test"})
    other = store.add({"aor": "sip:alice@example-test"})  # the same slug
    assert (first.id, other.id) == ("alice-example-test", "alice-example-test-2")
    removed = store.remove(first.id)
    assert removed == first
    assert not account_file(path, first.id).exists()
    with pytest.raises(AccountNotFound) as info:
        store.get(first.id)
    assert "did you mean 'alice-example-test-2'" in str(info.value)
    with pytest.raises(AccountNotFound):
        store.remove(first.id)
    assert reopen(path).ids() == ["local", other.id]
    assert mode_of(path) == 0o600


def test_an_admins_comments_and_unknown_keys_survive_an_update(store, path):
    alice = store.add(ALICE)
    file = account_file(path, alice.id)
    file.write_text("# Alice's desk phone\nnickname = \"al\"\n" + file.read_text())
    store.reload()
    store.update(alice.id, {"expires": 900})
    text = file.read_text()
    assert "# Alice's desk phone" in text and 'nickname = "al"' in text
    assert "expires = 900" in text


def test_reload_reports_what_changed(store, path):
    alice = store.add(ALICE)
    bob = store.add({"aor": "sip:bob@example.test"})
    file = account_file(path, alice.id)
    file.write_text(file.read_text().replace("expires = 600", "expires = 700"))
    path.write_text(path.read_text() + '\n[accounts.carol]\naor = "sip:carol@example.test"\n')
    store.settings.reload()
    changes = store.reload()
    assert changes.added == ("carol",) and changes.removed == ()
    assert changes.changed == {alice.id: frozenset({"expires"})}
    assert store.get("carol").auth_username == "carol" and store.get(bob.id) == bob


def test_a_bad_account_in_the_file_names_file_account_and_field(path):
    path.write_text('[accounts.bob]\naor = "sip:bob@example.test"\ntransport = "carrier-pigeon"\n')
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as info:
        reopen(path)
    assert info.value.key == "accounts.bob.transport" and str(path) in str(info.value)
    assert "accounts.bob.transport must be one of" in str(info.value)


def test_a_bad_reload_keeps_the_accounts(store, path):
    alice = store.add(ALICE)
    file = account_file(path, alice.id)
    file.write_text(file.read_text().replace("expires = 600", "expires = 1"))
    store.settings.reload()
    with pytest.raises(ConfigError):
        store.reload()
    assert store.get(alice.id) == alice


def test_duplicate_aors_in_the_file_are_refused(path):
    path.write_text('[accounts.a]\naor = "sip:x@example.test"\n'
                    '[accounts.b]\naor = "sip:x@example.test"\n')
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="same AOR"):
        reopen(path)


def test_a_local_table_in_the_file_is_ignored(path, caplog):
    path.write_text('[accounts.local]\naor = "sip:me@example.test"\n')
    os.chmod(path, 0o600)
    store = reopen(path)
    assert store.ids() == ["local"] and store.local.aor == "sip:local@localhost"
    assert "built in" in caplog.text
    added = store.add({"aor": "sip:me@example.test"})
    assert added.id == "me-example-test"


def test_fifty_accounts(store, path):
    for n in range(50):
        store.add({"aor": f"sip:user{n}@example.test", "password": f"pw{n}"})
    again = reopen(path)
    assert len(again) == 51 and again.get("user49-example-test").password == "pw49"
