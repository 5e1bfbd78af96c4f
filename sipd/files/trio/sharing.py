"""Which file of the share folder an incoming pull asks for (RFC 5547, the offerer receives).

    found = await find_shared(share_dir, wanted)     # (path, its full FileSelector) or None
    if found is None: refuse the offer (no such file)
    SharingRefused: no share folder (files.share_dir empty), or it cannot be read

Only regular files directly in the folder are offered (no subfolders, no hidden files, no
symbolic link that leads out of the folder); a selector with no field matches nothing (a pull
must say what it wants). Hashes are computed only for files whose name, size and type already
match, in a worker thread, and remembered by (path, size, mtime) so a repeated pull does not
read the file again.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import trio

from ..selector import FileHash, FileSelector
from .hashing import hash_file
from .sender import guess_type


class SharingRefused(Exception):
    """No file can be offered; the message says why (for the 488/603 reason and the log)."""


_hash_cache: dict[tuple[str, int, int], FileHash] = {}
_CACHE_LIMIT = 1024


def _candidates(folder: Path) -> list[tuple[Path, os.stat_result]]:
    real_folder = folder.resolve()
    out = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if path.resolve().parent != real_folder:
                    continue  # a link out of the folder
                info = path.stat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                out.append((path, info))
    out.sort(key=lambda item: item[0].name)
    return out


async def find_shared(share_dir: str | os.PathLike[str] | None,
                      wanted: FileSelector) -> tuple[Path, FileSelector] | None:
    """The first file (by name) of `share_dir` that `wanted` matches, with its selector."""
    if not share_dir:
        raise SharingRefused("this daemon shares no files (files.share_dir is empty)")
    if wanted.empty:
        return None
    folder = Path(share_dir)
    try:
        candidates = await trio.to_thread.run_sync(_candidates, folder)
    except OSError as exc:
        raise SharingRefused(f"the share folder {folder} cannot be read: "
                             f"{exc.strerror or exc}") from exc
    for path, info in candidates:
        described = FileSelector(name=path.name, type=guess_type(path.name), size=info.st_size)
        if not FileSelector(wanted.name, wanted.type, wanted.size).matches(described):
            continue
        # the answer's a=file-selector carries the hash whether the pull gave one or not
        key = (str(path), info.st_size, info.st_mtime_ns)
        file_hash = _hash_cache.get(key)
        if file_hash is None:
            try:
                file_hash = await hash_file(path, length=info.st_size)
            except OSError:
                continue  # gone or shrunk meanwhile
            if len(_hash_cache) >= _CACHE_LIMIT:
                _hash_cache.pop(next(iter(_hash_cache)))
            _hash_cache[key] = file_hash
        described = FileSelector(described.name, described.type, described.size, file_hash)
        if wanted.matches(described):
            return path, described
    return None
