"""Names for received files that stay inside the download folder and overwrite nothing.

    name = safe_name('../../etc/pass\\x00wd')     # 'passwd'
    for candidate in candidate_names(name):      # 'passwd', 'passwd (1)', 'passwd (2)'...
        try_to_create(part_name(candidate))      # 'passwd.part' until complete and verified

A received name is only a suggestion. `safe_name` keeps its last path component (`/` and `\\`
both separate), drops control characters (NUL, C0, DEL, C1) and the invisible bidirectional
controls that can disguise an extension, replaces the characters Windows forbids (`<>:"|?*`),
drops leading dots (no hidden files, no `.` or `..`) and trailing dots and spaces, prefixes
Windows device names (`CON`, `NUL.txt`, `COM1`...) with `_`, and cuts a long name to
MAX_NAME_BYTES of UTF-8 (keeping a short extension) so that ` (NNNN)` and `.part` still fit the
255-byte limit of common file systems. Nothing is left: `file`.

`inside(folder, name)` is the last check before a path is opened: the joined path's parent is
the folder itself.
"""

from __future__ import annotations

import os.path
import re
import unicodedata
from collections.abc import Iterator

MAX_NAME_BYTES = 200
MAX_EXTENSION_BYTES = 20
PART_SUFFIX = ".part"
FALLBACK_NAME = "file"
_INVISIBLE = {0x061C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067,
              0x2068, 0x2069, 0xFEFF}
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"} | {
    f"{port}{n}" for port in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³")}


def safe_name(received: str | None) -> str:
    """A file name made from what the peer suggested (see the module documentation)."""
    text = unicodedata.normalize("NFC", received or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(c for c in text if unicodedata.category(c) != "Cc"
                   and ord(c) not in _INVISIBLE)
    text = _WINDOWS_FORBIDDEN.sub("_", text)
    text = text.strip().lstrip(".").rstrip(". ").strip()
    if not text:
        return FALLBACK_NAME
    stem = text.split(".", 1)[0].rstrip(" ")
    if stem.upper() in _WINDOWS_DEVICES:
        text = "_" + text
    return _shorten(text, MAX_NAME_BYTES)


def split_extension(name: str) -> tuple[str, str]:
    """`report.pdf` -> (`report`, `.pdf`); an extension longer than MAX_EXTENSION_BYTES, or
    none, gives (`name`, ``)."""
    stem, extension = os.path.splitext(name)
    if not stem or len(extension.encode()) > MAX_EXTENSION_BYTES:
        return name, ""
    return stem, extension


def _shorten(name: str, limit: int) -> str:
    if len(name.encode()) <= limit:
        return name
    stem, extension = split_extension(name)
    room = limit - len(extension.encode())
    cut = stem.encode()[:room].decode("utf-8", errors="ignore").rstrip(". ")
    return (cut or FALLBACK_NAME) + extension


def candidate_names(name: str) -> Iterator[str]:
    """`name`, then `stem (1).ext`, `stem (2).ext`... (endless: the caller stops when one
    is free)."""
    yield name
    stem, extension = split_extension(name)
    number = 1
    while True:
        yield f"{stem} ({number}){extension}"
        number += 1


def part_name(name: str) -> str:
    """The name a file carries until it is complete and verified."""
    return name + PART_SUFFIX


def inside(folder: str, name: str) -> str:
    """`folder/name`, when `name` is one plain component (ValueError otherwise)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name or (
            os.path.altsep and os.path.altsep in name):
        raise ValueError(f"{name!r} is not a plain file name")
    path = os.path.join(folder, name)
    if os.path.dirname(os.path.normpath(path)) != os.path.normpath(folder):
        raise ValueError(f"{name!r} leaves the folder {folder}")
    return path
