"""Default locations (user, root, systemd) and directory helpers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sipd.settings.errors import PersistError
from sipd.settings.paths import Paths, check_writable, default_paths, ensure_dir


@pytest.fixture
def xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    return tmp_path


def test_a_user_gets_the_xdg_directories(xdg):
    paths = default_paths(environ={}, euid=1000)
    assert paths == Paths(config_file=xdg / "config" / "sipd" / "sipd.toml",
                          state_dir=xdg / "state" / "sipd",
                          runtime_dir=xdg / "runtime" / "sipd")


def test_root_gets_the_system_directories(xdg):
    assert default_paths(environ={}, euid=0) == Paths(Path("/etc/sipd/sipd.toml"),
                                                      Path("/var/lib/sipd"), Path("/run/sipd"))


@pytest.mark.parametrize("euid", [0, 1000])
def test_systemd_directories_win(xdg, euid):
    environ = {"CONFIGURATION_DIRECTORY": "/etc/sipd-a:/etc/sipd-b",
               "STATE_DIRECTORY": "/var/lib/sipd-a", "RUNTIME_DIRECTORY": "/run/sipd-a"}
    assert default_paths(environ=environ, euid=euid) == Paths(
        Path("/etc/sipd-a/sipd.toml"), Path("/var/lib/sipd-a"), Path("/run/sipd-a"))


def test_an_empty_systemd_variable_is_ignored(xdg):
    assert default_paths(environ={"STATE_DIRECTORY": ""}, euid=0).state_dir == Path(
        "/var/lib/sipd")


def test_default_paths_reads_the_process_by_default(xdg, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", "/srv/sipd-state")
    assert default_paths().state_dir == Path("/srv/sipd-state")


def test_ensure_dir_creates_private_parents_and_leaves_existing_ones(tmp_path):
    os.chmod(tmp_path, 0o755)
    target = tmp_path / "a" / "b"
    old = os.umask(0o022)
    try:
        assert ensure_dir(target) == target
    finally:
        os.umask(old)
    for directory in (tmp_path / "a", target):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o755
    assert ensure_dir(target, mode=0o750) == target  # exists: mode untouched
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700


def test_ensure_dir_honours_the_mode(tmp_path):
    ensure_dir(tmp_path / "shared", mode=0o750)
    assert stat.S_IMODE(os.stat(tmp_path / "shared").st_mode) == 0o750


def test_ensure_dir_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(PersistError, match="exists and is not a directory") as caught:
        ensure_dir(tmp_path / "file" / "sub")
    assert str(tmp_path / "file") in str(caught.value)


def test_ensure_dir_reports_the_os_reason(tmp_path):
    with pytest.raises(PersistError) as caught:
        ensure_dir(Path("/proc/sipd-cannot-exist"))
    assert "cannot create directory /proc/sipd-cannot-exist" in str(caught.value)
    assert caught.value.path == Path("/proc/sipd-cannot-exist")


def test_check_writable(tmp_path):
    check_writable(tmp_path)
    assert os.listdir(tmp_path) == []
    with pytest.raises(PersistError, match="cannot write in .*missing"):
        check_writable(tmp_path / "missing")
    # /proc refuses new files even to root: a real "not writable" directory.
    with pytest.raises(PersistError, match="cannot write in /proc"):
        check_writable(Path("/proc"))
