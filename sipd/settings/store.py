"""The settings file: one TOML file read and written with tomlkit, so that an admin's comments
and key order survive every change made through RPC.

Every change is validated first (SettingError: nothing changes), then written atomically
(PersistError: nothing changes, in memory either), then applied in memory. A file that cannot
be used at start or on reload raises ConfigError and leaves the file, and the values in
memory, untouched.
"""

from __future__ import annotations

import builtins
import copy
import logging
import os
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError
from tomlkit.toml_document import TOMLDocument

from sipd.settings import schema
from sipd.settings.atomic import PRIVATE_MODE, remove_stale_temp_files, write_private_file
from sipd.settings.errors import ConfigError, PersistError, SettingError
from sipd.settings.paths import ensure_dir

__all__ = ["SettingsStore", "ConfigError", "SettingError", "PersistError"]

log = logging.getLogger(__name__)


class _Loaded(NamedTuple):
    document: TOMLDocument
    values: dict[str, Any]       # validated values of the schema keys present in the file
    unknown_keys: tuple[str, ...]


class SettingsStore:
    """The effective settings: the file's values over the schema's defaults."""

    def __init__(self, path: Path, loaded: _Loaded) -> None:
        # Use SettingsStore.open(); this only wires up what it loaded.
        self.path = path
        self._document = loaded.document
        self._text: str | None = None  # the text last written (None: not known yet)
        self._values = loaded.values
        self.unknown_keys = loaded.unknown_keys

    @classmethod
    def open(cls, path: Path) -> SettingsStore:
        """Load `path`, creating it from the annotated example when it does not exist."""
        path = Path(path)
        if not _exists(path):
            ensure_dir(path.parent)
            write_private_file(path, schema.render_example())
            log.info("created %s with the default settings", path)
        remove_stale_temp_files(path)
        loaded = _load(path)
        _make_private(path)
        return cls(path, loaded)

    # Reading.

    def get(self, key: str) -> Any:
        """The effective value of `key` (SettingError for an unknown key)."""
        setting = schema.lookup(key)
        return copy.copy(self._values.get(key, setting.default))

    def values(self) -> dict[str, Any]:
        """Every key's effective value, in schema order."""
        return {setting.key: self.get(setting.key) for setting in schema.SETTINGS}

    def is_default(self, key: str) -> bool:
        return self.get(key) == schema.lookup(key).default

    def public_view(self, key: str) -> dict[str, Any]:
        """What settings.get may show: a secret's value is null, with "set" telling whether
        one is stored."""
        setting = schema.lookup(key)
        value = self.get(key)
        view = {"key": key, "value": setting.public(value), "is_default": self.is_default(key),
                "secret": setting.secret}
        if setting.secret:
            view["set"] = value not in ("", None)
        return view

    def public_views(self) -> list[dict[str, Any]]:
        return [self.public_view(setting.key) for setting in schema.SETTINGS]

    # Changing.

    def set(self, key: str, value: Any) -> tuple[Any, Any]:
        """Validate, persist and apply one value; returns (old, new) effective values."""
        setting = schema.lookup(key)
        new = setting.validate(value)
        old = self.get(key)
        with self._editing() as document:
            container = document
            for name in setting.table.split("."):
                container = _child_table(container, name)
            container[setting.name] = new
        self._values[key] = new
        return old, copy.copy(new)

    def reset(self, key: str) -> tuple[Any, Any]:
        """Back to the default. The default is written into the file rather than the key
        removed, so the comment above the key keeps describing a key that is there."""
        return self.set(key, schema.lookup(key).default)

    def reload(self) -> dict[str, tuple[Any, Any]]:
        """Re-read the file (SIGHUP). Returns {key: (old, new)} for the values that changed.
        ConfigError if the file is now unusable; the current values then stay."""
        loaded = _load(self.path)
        before = self.values()
        self._document, self._values = loaded.document, loaded.values
        self._text = None
        self.unknown_keys = loaded.unknown_keys
        after = self.values()
        return {key: (before[key], after[key]) for key in after if before[key] != after[key]}

    # Raw sections ([accounts.<id>]): kept and persisted, validated by their owners.

    def section(self, section: str) -> dict[str, dict[str, Any]]:
        """A plain copy of a raw section, e.g. {"alice": {...}, "bob": {...}}."""
        _check_section(section)
        container = self._document.get(section)
        return {} if container is None else copy.deepcopy(container.unwrap())

    def section_names(self, section: str) -> builtins.set[str]:  # `set` is a method here
        """The names of the tables of a raw section (no copy of their contents)."""
        _check_section(section)
        container = self._document.get(section)
        return set() if container is None else set(container.keys())

    def set_section(self, section: str, name: str, mapping: Mapping[str, Any]) -> None:
        """Create or replace the table [section.name] with `mapping`. An existing table is
        updated in place, so comments in it and its key order survive."""
        _check_section(section)
        where = f"{section}.{name}"
        if not isinstance(name, str) or not name:
            raise SettingError(section, f"a {section} id must be a non-empty string")
        if not isinstance(mapping, Mapping):
            raise SettingError(where, f"{where} must be a table (a mapping of keys to values)")
        _check_storable(where, mapping)
        with self._editing() as document:
            container = document.get(section)
            if container is None:
                document[section] = tomlkit.table(is_super_table=True)
                container = document[section]
            try:
                existing = container.get(name)
                if isinstance(existing, tomlkit.items.Table):
                    for key in [key for key in existing if key not in mapping]:
                        del existing[key]
                    for key, value in mapping.items():
                        existing[key] = value
                else:
                    table = tomlkit.table()
                    for key, value in mapping.items():
                        table[key] = value
                    container[name] = table
            except (TypeError, ValueError) as error:
                raise SettingError(where, f"{where} cannot be written as TOML: {error}") from None

    def remove_section(self, section: str, name: str) -> bool:
        """Remove [section.name]; False if there was no such table."""
        if name not in self.section_names(section):
            return False
        with self._editing() as document:
            del document[section][name]
        return True

    # Internals.

    @contextmanager
    def _editing(self) -> Iterator[TOMLDocument]:
        """Edit the document in place, then write it. If the edit or the write fails, the
        document goes back to what the file holds. (Parsing a copy before each edit instead
        made every change cost as much as reading a file of many accounts.)"""
        if self._text is None:
            self._text = self._document.as_string()
        try:
            yield self._document
            text = self._document.as_string()
            write_private_file(self.path, text)
        except BaseException:
            self._document = tomlkit.parse(self._text)
            raise
        self._text = text


def _exists(path: Path) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the settings file: {error.strerror}",
                          path=path) from error
    return True


def _make_private(path: Path) -> None:
    """The file holds passwords: make sure only its owner can read it. The owner's own bits
    stay: a file the admin made read-only (0440) stays read-only (0400)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            private = mode & 0o700 or PRIVATE_MODE
            os.chmod(path, private)
            log.warning("%s was readable by others (mode %04o); made it %04o", path, mode,
                        private)
    except OSError as error:
        log.warning("%s may be readable by others and could not be made private: %s",
                    path, error.strerror)


def _check_section(section: str) -> None:
    if section not in schema.RAW_SECTIONS:
        raise SettingError(str(section), f"{section!r} is not a raw section; "
                           f"raw sections are: {', '.join(schema.RAW_SECTIONS)}")


def _check_storable(where: str, value: Any) -> None:
    # TOML has no null; say so instead of tomlkit's conversion error.
    if value is None:
        raise SettingError(where, f"{where} is null: TOML cannot store null, leave the key out")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SettingError(where, f"{where} has a non-string key {key!r}")
            _check_storable(f"{where}.{key}", item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_storable(f"{where}[{index}]", item)


def _child_table(container: Any, name: str) -> Any:
    """container[name], created as a table when missing (load made sure it is a table).
    Inside an inline table (`nat = { ice = true }`) only an inline table may be nested."""
    if name not in container:
        inline = isinstance(container, tomlkit.items.InlineTable)
        container[name] = tomlkit.inline_table() if inline else tomlkit.table()
    return container[name]


# Loading and validating a file.

def _load(path: Path) -> _Loaded:
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the settings file: {error.strerror}",
                          path=path) from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: the settings file is not UTF-8 text",
                          path=path, line=line) from None
    try:
        document = tomlkit.parse(text)
    except ParseError as error:
        raise ConfigError(f"{path}:{error.line}:{error.col}: TOML syntax error: {error}",
                          path=path, line=error.line) from None
    except TOMLKitError as error:
        raise ConfigError(f"{path}: TOML error: {error}", path=path) from None

    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    unknown: list[str] = []
    _collect(document.unwrap(), "", values, problems, unknown)
    if problems:
        lines = [_line_of(text, key) for key, _ in problems]
        report = "\n".join(f"{path}:{line}: {message}" if line else f"{path}: {message}"
                           for line, (_, message) in zip(lines, problems, strict=True))
        first_key = problems[0][0]
        raise ConfigError(report, path=path, line=lines[0], key=first_key)
    for key in unknown:
        close = schema.close_keys(key, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        log.warning("%s:%s: unknown setting %s is ignored%s", path, _line_of(text, key) or "?",
                    key, hint)
    return _Loaded(document, values, tuple(unknown))


def _collect(tree: dict[str, Any], prefix: str, values: dict[str, Any],
             problems: list[tuple[str, str]], unknown: list[str]) -> None:
    for name, value in tree.items():
        key = prefix + name
        if key in schema.BY_KEY:
            try:
                values[key] = schema.BY_KEY[key].validate(value)
            except SettingError as error:
                problems.append((key, str(error)))
        elif not prefix and key in schema.RAW_SECTIONS:
            if not isinstance(value, dict):
                problems.append((key, f"{key} must hold [{key}.<id>] tables, not a value"))
        elif key in schema.TABLE_PREFIXES:
            if isinstance(value, dict):
                _collect(value, key + ".", values, problems, unknown)
            else:
                problems.append((key, f"{key} must be a table ([{key}]) of settings, "
                                      "not a value"))
        else:
            unknown.append(key)


_TABLE_HEADER = re.compile(r"^\s*\[\[?([^\[\]]+)\]\]?\s*(#.*)?$")
_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _dotted(text: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in text.split("."))


def _line_of(text: str, key: str) -> int | None:
    """The line where `key` is set, for error messages; None if this simple scan misses it
    (keys inside inline tables, for example)."""
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            continue
        match = _KEY_LINE.match(line)
        if match:
            full = _dotted(match.group(1))
            if (f"{table}.{full}" if table else full) == key:
                return number
    return None
