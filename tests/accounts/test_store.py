"""AccountStore's storage: one file per account in the accounts directory beside the settings
file, [accounts.<id>] tables of the settings file still honoured where they are, paging, and
what an admin does by hand (edits, new files, read-only files)."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from sipd.accounts.store import AccountStore
from sipd.settings import tables
from sipd.settings.errors import ConfigError, PersistError
from sipd.settings.store import SettingsStore


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sipd.toml"


@pytest.fixture
def accounts_dir(tmp_path: Path) -> Path:
    return tmp_path / "accounts"


def open_store(path: Path) -> AccountStore:
    return AccountStore(SettingsStore.open(path))


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)


def test_tables_in_the_settings_file_keep_working_where_they_are(path, accounts_dir):
    write_private(path, '[log]\nlevel = "info"\n\n[accounts.bob]\n# Bob at work\n'
                        'aor = "sip:bob@example.test"\nregister = false\n')
    store = open_store(path)
    assert store.ids() == ["local", "bob"] and not store.get("bob").register
    store.update("bob", {"expires": 900})  # written where it lives, the comment kept
    text = path.read_text()
    assert "# Bob at work" in text and "expires = 900" in text
    assert not (accounts_dir / "bob.toml").exists()
    carol = store.add({"aor": "sip:carol@example.test"})  # a new one gets its own file
    assert (accounts_dir / f"{carol.id}.toml").exists() and carol.id not in text
    assert open_store(path).ids() == ["local", "bob", carol.id]
    store.remove("bob")
    assert "bob" not in tomllib.loads(path.read_text()).get("accounts", {})
    assert open_store(path).ids() == ["local", carol.id]


def test_an_account_in_both_places_is_refused_naming_both(path, accounts_dir):
    write_private(path, '[accounts.bob]\naor = "sip:bob@example.test"\n')
    write_private(accounts_dir / "bob.toml", 'aor = "sip:bob@example.org"\n')
    with pytest.raises(ConfigError) as info:
        open_store(path)
    assert str(path) in str(info.value) and str(accounts_dir / "bob.toml") in str(info.value)


def test_the_same_aor_in_two_files_is_refused(path, accounts_dir):
    write_private(accounts_dir / "a.toml", 'aor = "sip:x@example.test"\n')
    write_private(accounts_dir / "b.toml", 'aor = "sip:x@Example.test"\n')
    with pytest.raises(ConfigError, match="same AOR"):
        open_store(path)


@pytest.mark.parametrize("text, words", [
    ('aor = "sip:bob@example.test"\ntransport = "carrier-pigeon"\n',
     ["bob.toml", "accounts.bob.transport must be one of"]),
    ('aor = "sip:bob@example.test"\nexpires = \n', ["bob.toml:2", "TOML syntax error"]),
    ('display_name = "Bob"\n', ["bob.toml", "accounts.bob.aor is required"]),
])
def test_a_bad_account_file_names_the_file_and_what_is_wrong(path, accounts_dir, text, words):
    write_private(accounts_dir / "bob.toml", text)
    with pytest.raises(ConfigError) as info:
        open_store(path)
    for word in words:
        assert word in str(info.value)


def test_files_sipd_does_not_own_are_ignored(path, accounts_dir):
    write_private(accounts_dir / "bob.toml", 'aor = "sip:bob@example.test"\n')
    write_private(accounts_dir / "README", "not an account\n")
    write_private(accounts_dir / "bob.toml~", "an editor's backup\n")
    write_private(accounts_dir / "bad name.toml", 'aor = "sip:x@example.test"\n')
    write_private(accounts_dir / "local.toml", 'aor = "sip:me@example.test"\n')
    write_private(accounts_dir / ".bob.toml.0123abcd.tmp", "half a save")
    store = open_store(path)
    assert store.ids() == ["local", "bob"]
    assert not (accounts_dir / ".bob.toml.0123abcd.tmp").exists()  # a killed save's leftover


def test_a_file_readable_by_others_is_made_private(path, accounts_dir):
    write_private(accounts_dir / "bob.toml", 'aor = "sip:bob@example.test"\n')
    os.chmod(accounts_dir / "bob.toml", 0o644)
    open_store(path)
    assert mode_of(accounts_dir / "bob.toml") == 0o600


def test_a_hand_written_file_not_yet_read_keeps_its_name(path, accounts_dir):
    store = open_store(path)
    write_private(accounts_dir / "alice-example-test.toml", 'aor = "sip:other@example.test"\n')
    alice = store.add({"aor": "sip:alice@example.test"})
    assert alice.id == "alice-example-test-2"
    assert "other" in (accounts_dir / "alice-example-test.toml").read_text()


def test_a_read_only_settings_file_freezes_the_accounts_too(path, accounts_dir):
    store = open_store(path)
    bob = store.add({"aor": "sip:bob@example.test"})
    os.chmod(path, 0o400)
    with pytest.raises(PersistError, match="read-only"):
        store.add({"aor": "sip:carol@example.test"})
    with pytest.raises(PersistError, match="read-only"):
        store.update(bob.id, {"expires": 900})
    with pytest.raises(PersistError, match="read-only"):
        store.remove(bob.id)
    assert sorted(os.listdir(accounts_dir)) == [f"{bob.id}.toml"]
    assert store.ids() == ["local", bob.id] and store.get(bob.id).expires == 600


def test_a_read_only_account_file_or_directory_is_left_alone(path, accounts_dir):
    store = open_store(path)
    bob = store.add({"aor": "sip:bob@example.test"})
    os.chmod(accounts_dir / f"{bob.id}.toml", 0o400)
    with pytest.raises(PersistError, match="read-only"):
        store.update(bob.id, {"expires": 900})
    with pytest.raises(PersistError, match="read-only"):
        store.remove(bob.id)
    os.chmod(accounts_dir, 0o500)
    try:
        with pytest.raises(PersistError, match="read-only"):
            store.add({"aor": "sip:carol@example.test"})
    finally:
        os.chmod(accounts_dir, 0o700)
    assert store.ids() == ["local", bob.id]


def test_reload_reads_only_the_files_that_changed(path, accounts_dir, monkeypatch):
    store = open_store(path)
    added = [store.add({"aor": f"sip:user{n}@example.test"}) for n in range(20)]
    reads: list[Path] = []
    real_read = tables._read
    monkeypatch.setattr(tables, "_read", lambda file: reads.append(file) or real_read(file))
    assert not store.reload()
    assert reads == []  # what sipd wrote itself is known
    file = accounts_dir / f"{added[3].id}.toml"
    file.write_text(file.read_text().replace("expires = 600", "expires = 1200"))
    write_private(accounts_dir / "zed.toml", 'aor = "sip:zed@example.test"\n')
    (accounts_dir / f"{added[5].id}.toml").unlink()
    changes = store.reload()
    assert sorted(reads) == [file, accounts_dir / "zed.toml"]
    assert changes.added == ("zed",) and changes.removed == (added[5].id,)
    assert changes.changed == {added[3].id: frozenset({"expires"})}


def test_pages_walk_every_account_once_in_id_order(path):
    store = open_store(path)
    ids = sorted(store.add({"aor": f"sip:u{n:02d}@example.test"}).id for n in range(25))
    page, after = store.page(limit=10)
    assert [a.id for a in page] == ["local", *ids[:9]] and after == ids[8]
    seen = [a.id for a in page]
    store.remove(after)  # the account a client paged to may go meanwhile
    while after is not None:
        page, after = store.page(limit=10, after=after)
        seen += [a.id for a in page]
    assert seen == ["local", *ids[:9], *ids[9:]]
    assert store.page()[1] is None and len(store.page()[0]) == 25  # no limit: all
    assert store.page(limit=100, after="local")[0][0].id == ids[0]


def test_lookups_by_aor_and_user_part(path):
    store = open_store(path)
    alice = store.add({"aor": "sip:alice@example.test"})
    other = store.add({"aor": "sip:alice@example.org"})
    assert store.find_by_aor("sips:alice@EXAMPLE.test") == alice
    assert [a.id for a in store.with_user("alice")] == sorted([alice.id, other.id])
    store.update(alice.id, {"aor": "sip:alicia@example.test"})
    assert [a.id for a in store.with_user("alice")] == [other.id]
    assert store.with_user("alicia")[0].id == alice.id
    assert store.find_by_aor("sip:alice@example.test") is None
    assert store.with_user("local")[0].id == "local"


def test_a_file_that_failed_a_reload_is_checked_again_at_the_next(path, accounts_dir):
    store = open_store(path)
    bob = store.add({"aor": "sip:bob@example.test"})
    file = accounts_dir / f"{bob.id}.toml"
    file.write_text(file.read_text().replace("expires = 600", "expires = 1"))
    for _ in range(2):  # not taken for the account in memory the second time
        with pytest.raises(ConfigError, match="expires"):
            store.reload()
    assert store.get(bob.id).expires == 600
    file.write_text(file.read_text().replace("expires = 1", "expires = 120"))
    assert store.reload().changed == {bob.id: frozenset({"expires"})}
