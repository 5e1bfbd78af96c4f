"""The settings file: creation, atomic private writes, comment-preserving edits, reload,
errors that name file/line/key, and raw [accounts.<id>] sections."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tempfile
import tomllib
import traceback
from pathlib import Path

import pytest

from sipd.settings import schema
from sipd.settings.errors import ConfigError, PersistError, SettingError
from sipd.settings.store import SettingsStore


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sipd.toml"


@pytest.fixture
def store(path: Path) -> SettingsStore:
    return SettingsStore.open(path)


def write(path: Path, text: str) -> None:
    path.write_text(text)
    os.chmod(path, 0o600)


# opening

def test_open_creates_the_example_privately_with_private_parents(tmp_path):
    path = tmp_path / "deep" / "er" / "sipd.toml"
    store = SettingsStore.open(path)
    assert path.read_text() == schema.render_example()
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700 and mode_of(path.parent.parent) == 0o700
    assert store.path == path
    assert store.values() == {s.key: s.default for s in schema.SETTINGS}
    assert all(store.is_default(s.key) for s in schema.SETTINGS)


def test_open_reads_values_over_defaults(path):
    write(path, "[sip]\nlocal_udp_port = 5060\n\n[nat.turn]\nserver = \"turn.example.com\"\n")
    store = SettingsStore.open(path)
    assert store.get("sip.local_udp_port") == 5060
    assert store.get("nat.turn.server") == "turn.example.com"
    assert store.get("sip.local_tcp_port") == 0
    assert not store.is_default("sip.local_udp_port") and store.is_default("rpc.listen")


def test_an_empty_file_means_all_defaults(path):
    write(path, "")
    assert SettingsStore.open(path).values()["log.level"] == "info"


def test_open_makes_a_readable_file_private(path):
    path.write_text("[log]\nlevel = \"debug\"\n")
    os.chmod(path, 0o644)
    SettingsStore.open(path)
    assert mode_of(path) == 0o600


def test_open_removes_temp_files_a_killed_writer_left(path, store):
    stale = path.parent / ".sipd.toml.0123abcd.tmp"
    stale.write_text("half a file")
    unrelated = path.parent / ".other.0123abcd.tmp"
    unrelated.write_text("not ours")
    SettingsStore.open(path)
    assert not stale.exists() and unrelated.exists()


def test_syntax_error_names_file_and_line_and_leaves_the_file_alone(path):
    text = "[sip]\nlocal_udp_port = 5060\nlocal_tcp_port = = 5061\n"
    write(path, text)
    before = os.stat(path)
    with pytest.raises(ConfigError) as caught:
        SettingsStore.open(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3:")
    assert "syntax" in str(caught.value)
    assert path.read_text() == text and os.stat(path).st_mtime_ns == before.st_mtime_ns


def test_invalid_values_name_file_line_and_key(path):
    write(path, "# mine\n[sip]\nlocal_udp_port = \"5060\"\n\n[media]\nmax_workers = 0\n")
    with pytest.raises(ConfigError) as caught:
        SettingsStore.open(path)
    message = str(caught.value)
    assert f"{path}:3: sip.local_udp_port" in message and "without quotes" in message
    assert f"{path}:6: media.max_workers" in message and "1..64" in message
    assert (caught.value.line, caught.value.key) == (3, "sip.local_udp_port")


def test_dotted_and_inline_forms_are_understood(path):
    write(path, "[nat]\nturn.server = \"turn.example.com\"\n[log]\nlevel = \"debug\"\n"
                "[rpc]\nlisten = \"[::1]:0\"\n")
    store = SettingsStore.open(path)
    assert store.get("nat.turn.server") == "turn.example.com"
    write(path, "sip = { local_udp_port = 5062 }\nnat = { ice = true }\n")
    store = SettingsStore.open(path)
    assert store.get("sip.local_udp_port") == 5062
    store.set("sip.local_udp_port", 5070)
    store.set("nat.turn.server", "turn.example.com")
    reopened = SettingsStore.open(path)
    assert reopened.get("sip.local_udp_port") == 5070 and reopened.get("nat.ice") is True
    assert reopened.get("nat.turn.server") == "turn.example.com"


def test_a_value_where_a_table_belongs_is_an_error(path):
    write(path, "nat = 5\n")
    with pytest.raises(ConfigError, match=r"nat must be a table"):
        SettingsStore.open(path)
    write(path, "[sip.local_udp_port]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"sip.local_udp_port must be a port"):
        SettingsStore.open(path)


def test_not_utf8_is_a_config_error(path):
    path.write_bytes(b"[log]\nlevel = \"\xff\"\n")
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        SettingsStore.open(path)
    assert caught.value.line == 2


def test_unknown_keys_are_warned_about_kept_and_ignored(path, caplog):
    write(path, "[sip]\nlocal_udp_prot = 5060\n\n[shiny]\nthing = 1\n")
    with caplog.at_level(logging.WARNING, logger="sipd.settings"):
        store = SettingsStore.open(path)
    assert "unknown setting sip.local_udp_prot" in caplog.text
    assert "did you mean sip.local_udp_port?" in caplog.text
    assert f"{path}:2:" in caplog.text
    assert "unknown setting shiny" in caplog.text
    assert store.unknown_keys == ("sip.local_udp_prot", "shiny")
    assert store.get("sip.local_udp_port") == 0
    store.set("sip.local_udp_port", 5070)
    reread = tomllib.loads(path.read_text())
    assert reread["sip"] == {"local_udp_prot": 5060, "local_udp_port": 5070}
    assert reread["shiny"] == {"thing": 1}


# changing

def test_set_validates_persists_and_returns_old_and_new(path, store):
    assert store.set("sip.local_udp_port", 5060) == (0, 5060)
    assert store.get("sip.local_udp_port") == 5060
    assert store.set("sip.transport_list", ("tls",)) == (["udp", "tcp", "tls"], ["tls"])
    assert SettingsStore.open(path).get("sip.local_udp_port") == 5060
    assert SettingsStore.open(path).get("sip.transport_list") == ["tls"]
    assert mode_of(path) == 0o600 and leftovers(path.parent) == []


def test_a_refused_value_changes_nothing(path, store):
    before = path.read_bytes()
    with pytest.raises(SettingError) as caught:
        store.set("sip.local_udp_port", "5060")
    assert caught.value.key == "sip.local_udp_port"
    with pytest.raises(SettingError, match="did you mean sip.local_udp_port"):
        store.set("sip.local_udp_prot", 5060)
    assert store.get("sip.local_udp_port") == 0 and path.read_bytes() == before


def test_returned_lists_are_copies(store):
    store.get("rtp.audio_codecs").append("speex")
    store.values()["sip.transport_list"].clear()
    assert store.get("rtp.audio_codecs") == ["G722", "PCMU", "PCMA"]
    assert store.get("sip.transport_list") == ["udp", "tcp", "tls"]


def test_reset_writes_the_default_under_its_comment(path, store):
    store.set("log.level", "debug")
    assert store.reset("log.level") == ("debug", "info")
    assert store.is_default("log.level")
    assert path.read_text() == schema.render_example()


def test_user_comments_and_key_order_survive_set(path):
    text = ("# my own notes, keep them\n"
            "[rpc]\n"
            "event_replay = 50   # trimmed for the laptop\n"
            "listen = \"127.0.0.1:7575\"\n"
            "\n"
            "[sip]\n"
            "# UDP is blocked here\n"
            "transport_list = [\"tls\", \"tcp\"]\n"
            "local_tls_port = 5061\n"
            "local_udp_port = 0\n")
    write(path, text)
    store = SettingsStore.open(path)
    store.set("sip.local_udp_port", 5060)
    store.set("rpc.event_replay", 60)
    assert path.read_text() == (text.replace("local_udp_port = 0", "local_udp_port = 5060")
                                .replace("event_replay = 50 ", "event_replay = 60 "))


def test_set_adds_missing_keys_and_tables(path):
    write(path, "# tiny\n[sip]\nlocal_udp_port = 5060\n")
    store = SettingsStore.open(path)
    store.set("sip.local_tcp_port", 5060)
    store.set("nat.turn.password", "s3cret")
    store.set("nat.ice", True)
    text = path.read_text()
    assert text.startswith("# tiny\n[sip]\nlocal_udp_port = 5060\nlocal_tcp_port = 5060\n")
    parsed = tomllib.loads(text)
    assert parsed["nat"] == {"ice": True, "turn": {"password": "s3cret"}}
    assert SettingsStore.open(path).get("nat.turn.password") == "s3cret"


def test_public_view_hides_secrets(store):
    view = store.public_view("nat.turn.password")
    assert view == {"key": "nat.turn.password", "value": None, "is_default": True,
                    "secret": True, "set": False}
    store.set("nat.turn.password", "hunter2")
    assert store.public_view("nat.turn.password")["set"] is True
    assert "hunter2" not in repr(store.public_views())
    assert store.public_view("log.level") == {"key": "log.level", "value": "info",
                                              "is_default": True, "secret": False}


def test_set_follows_a_symlinked_config(tmp_path):
    real = tmp_path / "dotfiles" / "sipd.toml"
    real.parent.mkdir()
    write(real, "[log]\nlevel = \"info\"\n")
    link = tmp_path / "sipd.toml"
    link.symlink_to(real)
    store = SettingsStore.open(link)
    store.set("log.level", "debug")
    assert link.is_symlink() and "debug" in real.read_text()
    assert leftovers(real.parent) == [] and leftovers(tmp_path) == []


# atomic writes and their failures

def test_a_failing_write_leaves_file_memory_and_directory_as_they_were(path, store,
                                                                         monkeypatch):
    store.set("media.max_workers", 8)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(PersistError) as caught:
        store.set("media.max_workers", 9)
    monkeypatch.undo()
    assert str(path) in str(caught.value) and "disk is full" in str(caught.value)
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert store.get("media.max_workers") == 8
    assert path.read_bytes() == before
    assert leftovers(path.parent) == []
    # The document in memory was not half-changed either: the next write is clean.
    store.set("log.level", "debug")
    assert tomllib.loads(path.read_text())["media"]["max_workers"] == 8


def test_an_interrupted_write_removes_its_temp_file(path, store, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.set("log.level", "debug")
    monkeypatch.undo()
    assert leftovers(path.parent) == [] and store.get("log.level") == "info"


def test_writes_are_private_even_under_a_strict_umask(path, store):
    old = os.umask(0o277)
    try:
        store.set("log.level", "debug")
    finally:
        os.umask(old)
    assert mode_of(path) == 0o600


def read_only_directory_scenario(directory: Path) -> None:
    """A store whose directory turned read-only refuses `set` and keeps its values."""
    path = directory / "sipd.toml"
    store = SettingsStore.open(path)
    store.set("media.max_workers", 8)
    before = path.read_bytes()
    os.chmod(directory, 0o500)
    try:
        with pytest.raises(PersistError) as caught:
            store.set("media.max_workers", 9)
        assert str(path) in str(caught.value) and "Permission denied" in str(caught.value)
        assert "fix the permissions" in str(caught.value) and caught.value.path == path
        assert store.get("media.max_workers") == 8
        assert path.read_bytes() == before
        assert os.listdir(directory) == ["sipd.toml"]
        os.chmod(directory, 0o700)
        assert store.set("media.max_workers", 9) == (8, 9)
    finally:
        os.chmod(directory, 0o700)


def test_read_only_directory_raises_persist_error(tmp_path):
    """Real permissions. Root ignores them, so as root the scenario runs in a forked child
    that has become nobody (forked rather than exec'd: nobody may not reach the venv)."""
    if os.geteuid() != 0:
        read_only_directory_scenario(tmp_path)
        return
    directory = Path(tempfile.mkdtemp(prefix="sipd-readonly-"))
    os.chown(directory, 65534, 65534)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            read_only_directory_scenario(directory)
            code = 0
        except BaseException:  # noqa: BLE001 - the child reports everything, then exits
            os.write(write_end, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            report = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
    finally:
        shutil.rmtree(directory)
    assert os.waitstatus_to_exitcode(status) == 0, report


# reload

def test_reload_reports_changes(path, store):
    text = path.read_text().replace('level = "info"', 'level = "debug"')
    write(path, text.replace("local_udp_port = 0", "local_udp_port = 5060"))
    assert store.reload() == {"log.level": ("info", "debug"),
                              "sip.local_udp_port": (0, 5060)}
    assert store.get("log.level") == "debug"
    assert store.reload() == {}


@pytest.mark.parametrize("bad", ["[log]\nlevel = \"loud\"\n", "[log\nlevel = 1\n"])
def test_reload_of_a_bad_file_keeps_the_old_values(path, store, bad):
    store.set("log.level", "debug")
    write(path, bad)
    with pytest.raises(ConfigError):
        store.reload()
    assert store.get("log.level") == "debug"
    assert path.read_text() == bad


def test_a_set_after_a_failed_reload_writes_the_values_in_memory(path, store):
    store.set("log.level", "debug")
    write(path, "[log\n")
    with pytest.raises(ConfigError):
        store.reload()
    store.set("nat.ice", True)
    reopened = SettingsStore.open(path)
    assert reopened.get("log.level") == "debug" and reopened.get("nat.ice") is True


# raw sections: [accounts.<id>]

def test_accounts_sections_are_kept_and_persisted(path, store):
    assert store.section("accounts") == {}
    store.set_section("accounts", "alice", {"uri": "sip:alice@example.com",
                                            "auth": {"username": "alice", "password": "pw"}})
    store.set_section("accounts", "bob.work", {"uri": "sip:bob@example.com", "enabled": False})
    expected = {"alice": {"uri": "sip:alice@example.com",
                          "auth": {"username": "alice", "password": "pw"}},
                "bob.work": {"uri": "sip:bob@example.com", "enabled": False}}
    assert store.section("accounts") == expected
    reopened = SettingsStore.open(path)
    assert reopened.section("accounts") == expected
    assert reopened.unknown_keys == ()
    assert mode_of(path) == 0o600
    assert store.remove_section("accounts", "alice") is True
    assert store.remove_section("accounts", "alice") is False
    assert SettingsStore.open(path).section("accounts") == {"bob.work": expected["bob.work"]}


def test_updating_an_account_keeps_its_comments(path):
    write(path, "[log]\nlevel = \"info\"\n\n[accounts.alice]\n# work phone\n"
                "uri = \"sip:alice@example.com\"\nold = 1\n")
    store = SettingsStore.open(path)
    store.set_section("accounts", "alice", {"uri": "sip:alice@example.org", "new": 2})
    text = path.read_text()
    assert "# work phone\nuri = \"sip:alice@example.org\"\n" in text and "old" not in text
    assert store.section("accounts") == {"alice": {"uri": "sip:alice@example.org", "new": 2}}


def test_section_returns_a_copy(store):
    store.set_section("accounts", "a", {"codecs": ["opus"]})
    store.section("accounts")["a"]["codecs"].append("PCMU")
    assert store.section("accounts") == {"a": {"codecs": ["opus"]}}


def test_bad_sections_are_refused_without_writing(path, store):
    before = path.read_bytes()
    with pytest.raises(SettingError, match="TOML cannot store null"):
        store.set_section("accounts", "a", {"password": None})
    with pytest.raises(SettingError, match="not a raw section"):
        store.set_section("sip", "a", {})
    with pytest.raises(SettingError, match="non-empty string"):
        store.set_section("accounts", "", {})
    with pytest.raises(SettingError, match="must be a table"):
        store.set_section("accounts", "a", ["x"])
    assert path.read_bytes() == before and store.section("accounts") == {}


def test_accounts_must_hold_tables(path):
    write(path, "accounts = 5\n")
    with pytest.raises(ConfigError, match=r"accounts must hold \[accounts.<id>\] tables"):
        SettingsStore.open(path)
