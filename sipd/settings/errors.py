"""The three ways settings can go wrong, each with a message a user can act on.

- `SettingError`: a key or value that the schema refuses (an RPC client's mistake);
- `ConfigError`: the file cannot be read or holds bad TOML / bad values (the admin's mistake);
- `PersistError`: the file cannot be written (permissions, read-only or full file system).
"""

from __future__ import annotations

import errno
from pathlib import Path


class SettingError(ValueError):
    """A bad key or value. `key` names the setting; the message says what is allowed."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class ConfigError(Exception):
    """The configuration file cannot be used. The message names the file, line and key."""

    def __init__(self, message: str, *, path: Path, line: int | None = None,
                 key: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.key = key


# What to tell a user for the usual reasons a write fails.
_HINTS = {
    errno.EACCES: "this user may not write there; fix the permissions or use --config",
    errno.EPERM: "this user may not write there; fix the permissions or use --config",
    errno.EROFS: "the file system is mounted read-only",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
}


class PersistError(OSError):
    """Something could not be written to disk. `path` is what we tried to write."""

    def __init__(self, message: str, *, path: Path, errno_: int | None = None) -> None:
        # A single argument keeps OSError from reformatting the message.
        super().__init__(message)
        self.path = path
        if errno_ is not None:
            self.errno = errno_

    @classmethod
    def from_os_error(cls, what: str, path: Path, error: OSError) -> PersistError:
        """`what` completes "cannot ...", e.g. "save settings to /etc/sipd/sipd.toml"."""
        reason = error.strerror or str(error)
        hint = _HINTS.get(error.errno or 0)
        message = f"cannot {what}: {reason}" + (f" ({hint})" if hint else "")
        return cls(message, path=path, errno_=error.errno)
