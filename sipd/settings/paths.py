"""Where sipd keeps its configuration, state and runtime files.

A user's daemon follows the XDG directories (platformdirs); a daemon run as root is a system
service and uses /etc/sipd, /var/lib/sipd and /run/sipd. A systemd unit with
ConfigurationDirectory=, StateDirectory= or RuntimeDirectory= passes the directories it
prepared in environment variables, and those win over both.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from sipd.settings.errors import PersistError

APP_NAME = "sipd"
CONFIG_FILE_NAME = "sipd.toml"

SYSTEM_CONFIG_DIR = Path("/etc/sipd")
SYSTEM_STATE_DIR = Path("/var/lib/sipd")
SYSTEM_RUNTIME_DIR = Path("/run/sipd")


@dataclass(frozen=True)
class Paths:
    config_file: Path
    state_dir: Path     # history database and other data that must survive restarts
    runtime_dir: Path   # the RPC token file and other things that die with the daemon


def default_paths(environ: Mapping[str, str] | None = None, euid: int | None = None) -> Paths:
    """The default locations for this process (arguments exist for tests)."""
    environ = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        config_dir, state_dir, runtime_dir = SYSTEM_CONFIG_DIR, SYSTEM_STATE_DIR, SYSTEM_RUNTIME_DIR
    else:
        config_dir = platformdirs.user_config_path(APP_NAME, appauthor=False)
        state_dir = platformdirs.user_state_path(APP_NAME, appauthor=False)
        runtime_dir = platformdirs.user_runtime_path(APP_NAME, appauthor=False)
    config_dir = _systemd_dir(environ, "CONFIGURATION_DIRECTORY") or config_dir
    state_dir = _systemd_dir(environ, "STATE_DIRECTORY") or state_dir
    runtime_dir = _systemd_dir(environ, "RUNTIME_DIRECTORY") or runtime_dir
    return Paths(config_dir / CONFIG_FILE_NAME, state_dir, runtime_dir)


def default_download_dir(state_dir: Path, environ: Mapping[str, str] | None = None,
                         euid: int | None = None) -> Path:
    """Where received files go when files.download_dir is empty: a daemon run by a user saves
    where that user's other downloads are (XDG_DOWNLOAD_DIR, usually ~/Downloads); a system
    service (root, or a unit that gave it a StateDirectory=) has no such folder and uses
    <state-dir>/downloads."""
    environ = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    if euid == 0 or environ.get("STATE_DIRECTORY"):
        return state_dir / "downloads"
    return platformdirs.user_downloads_path()


def _systemd_dir(environ: Mapping[str, str], name: str) -> Path | None:
    # systemd joins several directories with ':'; the first is the unit's own.
    value = environ.get(name, "")
    first = value.split(":", 1)[0]
    return Path(first) if first else None


ACCOUNTS_DIR_NAME = "accounts"


def accounts_dir_for(config_file: Path) -> Path:
    """The accounts directory beside a settings file: one `<id>.toml` per account
    (/etc/sipd/sipd.toml -> /etc/sipd/accounts/)."""
    return Path(config_file).parent / ACCOUNTS_DIR_NAME


def ensure_dir(path: Path, mode: int = 0o700) -> Path:
    """Create `path` and any missing parents with `mode` (existing ones are left as they are).
    PersistError with the path and the reason when that is not possible."""
    path = Path(path)
    missing = []
    probe = path
    # os.path.isdir/lexists never raise; a directory we cannot look into shows up as a
    # mkdir error below, with the OS reason.
    while not os.path.isdir(probe):
        if os.path.lexists(probe):
            raise PersistError(f"cannot create directory {path}: {probe} exists and is not a "
                               "directory", path=path, errno_=errno.ENOTDIR)
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
            os.chmod(directory, mode)  # mkdir's mode is narrowed by the umask
        except FileExistsError:
            if not directory.is_dir():
                raise PersistError(f"cannot create directory {directory}: it exists and is "
                                   "not a directory", path=directory,
                                   errno_=errno.ENOTDIR) from None
        except OSError as error:
            raise PersistError.from_os_error(f"create directory {directory}", directory,
                                             error) from error
    return path


def check_writable(directory: Path) -> None:
    """PersistError unless files can be created in `directory`. It really creates (and
    removes) one: permission bits alone miss read-only mounts and are all "yes" for root."""
    directory = Path(directory)
    probe = directory / f".sipd-write-check-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise PersistError.from_os_error(f"write in {directory}", directory, error) from error
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass
