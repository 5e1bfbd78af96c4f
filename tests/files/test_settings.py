"""The file transfer settings: the folders, and the account's auto-accept from contacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipd.accounts.model import AccountConfig
from sipd.settings import schema
from sipd.settings.errors import SettingError
from sipd.settings.paths import default_download_dir


def test_folders_default_to_empty_and_take_absolute_paths():
    for key in ("files.download_dir", "files.share_dir"):
        setting = schema.BY_KEY[key]
        assert setting.default == "" and setting.help
        assert setting.validate("/srv/files") == "/srv/files"
        with pytest.raises(SettingError):
            setting.validate("relative/dir")
    assert "refused" in schema.BY_KEY["files.share_dir"].help


def test_default_download_dir():
    state = Path("/var/lib/sipd")
    assert default_download_dir(state, {}, euid=0) == state / "downloads"
    assert default_download_dir(state, {"STATE_DIRECTORY": "/x"}, euid=1000) == \
        state / "downloads"
    assert default_download_dir(state, {}, euid=1000).name  # the user's Downloads folder


def test_accepting_files_from_contacts_is_off_unless_set():
    account = AccountConfig.create("a", {"aor": "sip:alice@example.test"})
    assert account.accept_files_from_contacts is False
    assert account.to_public()["accept_files_from_contacts"] is False
    changed = account.updated({"accept_files_from_contacts": True})
    assert changed.to_storage()["accept_files_from_contacts"] is True
    with pytest.raises(SettingError) as refused:
        account.updated({"accept_files_from_contacts": "yes"})
    assert refused.value.key == "accept_files_from_contacts"
