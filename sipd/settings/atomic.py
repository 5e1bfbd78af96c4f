"""Replace a private file atomically: a reader (or a crash) sees the old file or the new one,
never half of either.

Write a temp file next to the target (same file system, so the rename is atomic), created
0600 from the start because the settings hold passwords, fsync it, rename it over the target,
then fsync the directory so the rename itself survives a power cut (`sync_directory=False`
skips that last step for files written often, such as one account's file: a power cut may then
undo the latest renames, but never leaves a torn or empty file; a killed process loses nothing).

A target without its owner's write bit (an admin's `chmod 0400`) is not replaced: renaming over
it would succeed (the directory is writable; root ignores modes anyway) and silently turn the
admin's read-only file into a writable 0600 one. The write is refused instead, with the reason.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import stat
from pathlib import Path

from sipd.settings.errors import PersistError

log = logging.getLogger(__name__)

PRIVATE_MODE = 0o600


def _temp_name(target: Path) -> str:
    return f".{target.name}.{secrets.token_hex(4)}.tmp"


def _temp_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(target.name)}\.[0-9a-f]{{8}}\.tmp$")


def write_private_file(target: Path, text: str, *, sync_directory: bool = True) -> None:
    """Atomically replace `target` with `text` (mode 0600). PersistError if it cannot; then the
    old file is intact and no temp file is left behind."""
    # Follow a symlinked config (dotfile managers do that) instead of replacing the link.
    target = Path(os.path.realpath(target))
    refuse_read_only(target)
    directory = target.parent
    temp = directory / _temp_name(target)
    data = text.encode("utf-8")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE)
    except OSError as error:
        raise PersistError.from_os_error(f"save {target}", target, error) from error
    try:
        try:
            os.fchmod(fd, PRIVATE_MODE)  # a strict umask may have left it narrower than 0600
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException as error:
        _unlink_quietly(temp)
        if isinstance(error, OSError):
            raise PersistError.from_os_error(f"save {target}", target, error) from error
        raise
    if not sync_directory:
        return
    try:
        fsync_directory(directory)
    except OSError as error:
        # The new file is in place and readable; only its durability across a power cut is
        # unsure. Failing here would leave memory and file disagreeing, so warn instead.
        log.warning("saved %s but could not fsync its directory: %s", target, error.strerror)


def refuse_read_only(target: Path, saving: Path | None = None) -> None:
    """PersistError when `target` exists without its owner's write bit (an admin's freeze).
    `saving` names the file about to be written when it is another one that the freeze of
    `target` covers (an account's file: the settings file is read-only)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    except OSError as error:
        raise PersistError.from_os_error(f"save {saving or target}", target, error) from error
    if not mode & stat.S_IWUSR:
        what = "it is" if saving is None else f"{target} is"
        log.warning("not saving %s: %s read-only (mode %04o); chmod u+w it to allow "
                    "changes over RPC", saving or target, what, mode)
        subject = "the file" if saving is None else str(target)
        raise PersistError(f"cannot save {saving or target}: {subject} is read-only (mode "
                           f"{mode:04o}), so it is left as it is; make it writable (chmod u+w) "
                           "to change it over RPC, or edit it and send SIGHUP", path=target,
                           errno_=errno.EACCES)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(target: Path) -> list[Path]:
    """Delete temp files a killed process left next to `target`; returns what was removed."""
    target = Path(os.path.realpath(target))
    pattern = _temp_pattern(target)
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        if pattern.match(name):
            path = target.parent / name
            if _unlink_quietly(path):
                log.info("removed %s, left over by an interrupted save", path)
                removed.append(path)
    return removed


def _unlink_quietly(path: Path) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True
