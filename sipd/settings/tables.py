"""A directory of TOML files, one table each: settings that grow with use (accounts), so that
changing one entry costs the same at ten entries and at ten thousand (docs/design.md §3).

Each file `<name>.toml` holds one table's keys at its top level; its name is the table's name.
A write replaces that one file atomically (a temp file, fsync, rename: `write_private_file`
without the directory fsync, see docs/decisions.md), so a killed process leaves the old file or
the new one and never loses a write that returned. A file an admin edits keeps its comments and
key order through later writes (tomlkit, on that one file). Reading every file (start, SIGHUP)
uses tomllib, and a reload parses again only the files whose inode, size or mtime changed.

Files are private (0600, in a 0700 directory): they hold passwords. A file or directory without
its owner's write bit is an admin's "do not change this" and is refused like the settings file;
so is every file here while `frozen_by` (the settings file) is read-only.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError

from sipd.settings.atomic import (
    PRIVATE_MODE,
    fsync_directory,
    refuse_read_only,
    write_private_file,
)
from sipd.settings.errors import ConfigError, PersistError, SettingError
from sipd.settings.paths import ensure_dir

__all__ = ["TableDirectory", "SUFFIX", "valid_name"]

log = logging.getLogger(__name__)

SUFFIX = ".toml"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # a bare TOML key, so also a safe file name
_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # write_private_file's temp files

Signature = tuple[int, int, int]  # inode, size, mtime (ns): "the file changed"


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


class TableDirectory:
    """The tables stored as `<path>/<name>.toml`. `load()` reads them all; `write()` and
    `remove()` change one file each."""

    def __init__(self, path: Path, *, what: str = "table", frozen_by: Path | None = None) -> None:
        self.path = Path(path)
        self.what = what  # for messages: "account"
        self.frozen_by = frozen_by
        self._seen: dict[str, tuple[Signature, dict[str, Any]]] = {}
        self._cleaned = False
        #: the names the last load() parsed anew (new or changed files); the others are
        #: what was read or written before
        self.changed: set[str] = set()

    def file(self, name: str) -> Path:
        return self.path / f"{name}{SUFFIX}"

    def names(self) -> set[str]:
        """The tables the last load() found (and written or removed since)."""
        return set(self._seen)

    def __contains__(self, name: object) -> bool:
        return name in self._seen

    def forget(self) -> None:
        """Read every file again at the next load (what was read could not be used)."""
        self._seen = {}

    # Reading.

    def load(self) -> dict[str, dict[str, Any]]:
        """Every table, by name in sorted order. ConfigError names the file (and line) of the
        first unusable one; then nothing is kept from this load."""
        try:
            entries = sorted(os.scandir(self.path), key=lambda entry: entry.name)
        except FileNotFoundError:
            self._seen, self.changed = {}, set()
            return {}
        except OSError as error:
            raise ConfigError(f"{self.path}: cannot read the directory: {error.strerror}",
                              path=self.path) from error
        seen: dict[str, tuple[Signature, dict[str, Any]]] = {}
        changed: set[str] = set()
        for entry in entries:
            name, suffix = os.path.splitext(entry.name)
            if entry.name.startswith("."):
                if not self._cleaned and _TEMP.match(entry.name):
                    _remove_stale(Path(entry.path))
                continue
            if suffix != SUFFIX:
                continue
            if not valid_name(name):
                log.warning("%s is ignored: a %s file is named <name>%s with letters, digits, "
                            "- and _ only", entry.path, self.what, SUFFIX)
                continue
            try:
                info = entry.stat()
            except OSError as error:
                raise ConfigError(f"{entry.path}: cannot read it: {error.strerror}",
                                  path=Path(entry.path)) from error
            if not stat.S_ISREG(info.st_mode):
                continue
            signature = (info.st_ino, info.st_size, info.st_mtime_ns)
            known = self._seen.get(name)
            if known is not None and known[0] == signature:
                seen[name] = known
                continue
            _make_private(Path(entry.path), info.st_mode)
            seen[name] = (signature, _read(Path(entry.path)))
            changed.add(name)
        self._cleaned = True
        self._seen, self.changed = seen, changed
        return {name: _plain_copy(table) for name, (_, table) in seen.items()}

    # Changing.

    def write(self, name: str, mapping: Mapping[str, Any]) -> None:
        """Create or replace `<name>.toml` with `mapping`. An existing file is updated in place
        (its comments and key order survive). SettingError for what TOML cannot hold,
        PersistError when it cannot be written; either way the file is as it was."""
        if not valid_name(name):
            raise SettingError(self.what, f"a {self.what} name must be letters, digits, - "
                                          f"and _ only; got {name!r}")
        target = self.file(name)
        self._refuse_frozen(target)
        document = _existing_document(target)
        try:
            for key in [key for key in document if key not in mapping]:
                del document[key]
            for key, value in mapping.items():
                document[key] = value
            text = document.as_string()
        except (TypeError, ValueError) as error:
            raise SettingError(f"{self.what}s.{name}",
                               f"{self.what} {name} cannot be written as TOML: {error}") from None
        ensure_dir(self.path)
        write_private_file(target, text, sync_directory=False)
        self._remember(name, target, mapping)

    def remove(self, name: str) -> bool:
        """Delete `<name>.toml`; False if there is none."""
        target = self.file(name)
        self._refuse_frozen(target)
        refuse_read_only(target)
        try:
            os.unlink(target)
        except FileNotFoundError:
            self._seen.pop(name, None)
            return False
        except OSError as error:
            raise PersistError.from_os_error(f"remove {target}", target, error) from error
        self._seen.pop(name, None)
        try:
            fsync_directory(self.path)  # a removed account must not come back after a power cut
        except OSError as error:
            log.warning("removed %s but could not fsync %s: %s", target, self.path,
                        error.strerror)
        return True

    # Internals.

    def _refuse_frozen(self, target: Path) -> None:
        if self.frozen_by is not None:
            refuse_read_only(self.frozen_by, saving=target)
        refuse_read_only(self.path, saving=target)

    def _remember(self, name: str, target: Path, mapping: Mapping[str, Any]) -> None:
        try:
            info = os.stat(target)
        except OSError:
            self._seen.pop(name, None)  # read again at the next load
            return
        signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        self._seen[name] = (signature, _plain_copy(dict(mapping)))


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror}", path=path) from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad_line = raw[:error.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{bad_line}: the file is not UTF-8 text", path=path,
                          line=bad_line) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line: int | None = int(match.group(1)) if match else None
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: TOML syntax error: {error}", path=path, line=line) from None


def _existing_document(target: Path) -> tomlkit.TOMLDocument:
    """The file as tomlkit reads it, to edit in place; a new document when there is none (or
    it no longer parses: what the daemon holds in memory is what gets written)."""
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError) as error:
        log.warning("%s could not be read (%s); it is written anew", target, error)
        return tomlkit.document()
    try:
        return tomlkit.parse(text)
    except (ParseError, TOMLKitError) as error:
        log.warning("%s no longer parses (%s); it is written anew from what sipd holds",
                    target, error)
        return tomlkit.document()


def _make_private(path: Path, mode: int) -> None:
    """Passwords: only the owner may read. The owner's bits stay (0440 becomes 0400)."""
    mode = stat.S_IMODE(mode)
    if not mode & 0o077:
        return
    private = mode & 0o700 or PRIVATE_MODE
    try:
        os.chmod(path, private)
        log.warning("%s was readable by others (mode %04o); made it %04o", path, mode, private)
    except OSError as error:
        log.warning("%s may be readable by others and could not be made private: %s", path,
                    error.strerror)


def _remove_stale(path: Path) -> None:
    try:
        os.unlink(path)
        log.info("removed %s, left over by an interrupted save", path)
    except OSError:
        pass


def _plain_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    return value
