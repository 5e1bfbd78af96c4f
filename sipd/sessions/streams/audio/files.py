"""Checks of the files `sessions.play` and `sessions.record` name, before a worker sees them.

The daemon and its media workers share a host, so the daemon can look at the file itself and
refuse with a reason a user understands ("no such file", "8-bit PCM, not 16-bit") instead of
passing on pjsua's error text (PJMEDIA_EWAVEUNSUPP, PJ_ENOTSUP). A refused `record` also
leaves the recording already running alone: the worker stops it before it opens the new file.
What the checks cannot know (a WAV format Python cannot read but pjsua may) is left to the
worker, whose error still comes back to the client.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

# pjmedia's WAV player reads PCM at 16 bits per sample (any rate, mono or stereo: the
# conference bridge resamples and mixes down), and A-law / u-law, which Python's wave module
# does not read (those are left to the worker).
PLAYABLE_SAMPLE_BYTES = 2


class MediaFileError(ValueError):
    """The file cannot be played or recorded to; the text says why."""


def check_playable(path: str) -> None:
    file = Path(path)
    if not file.exists():
        raise MediaFileError(f"no such file: {path}")
    if file.is_dir():
        raise MediaFileError(f"{path} is a folder, not a WAV file")
    if not os.access(file, os.R_OK):
        raise MediaFileError(f"cannot read {path}: permission denied")
    try:
        with file.open("rb") as raw:
            head = raw.read(12)
    except OSError as exc:
        raise MediaFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise MediaFileError(f"{path} is not a WAV file (a RIFF/WAVE header is expected)")
    try:
        with wave.open(str(file), "rb") as source:
            width, frames = source.getsampwidth(), source.getnframes()
    except wave.Error as exc:
        if "unknown format" in str(exc):
            return  # A-law, u-law...: the worker's engine decides
        raise MediaFileError(f"{path} is not a usable WAV file: {exc}") from None
    except (EOFError, OSError) as exc:
        raise MediaFileError(f"{path} is not a usable WAV file: {exc or 'truncated'}") from None
    if width != PLAYABLE_SAMPLE_BYTES:
        raise MediaFileError(f"{path} holds {width * 8}-bit PCM; only 16-bit PCM WAV files "
                             f"can be played")
    if frames == 0:
        raise MediaFileError(f"{path} holds no audio")


def check_recordable(path: str) -> None:
    """pjsua writes WAV only, and chooses the format by the file name: a path without .wav
    is refused by it (PJ_ENOTSUP). Whether the file can be written is tried, not guessed from
    permissions (root may write where the bits say no, and nobody on a read-only mount)."""
    file = Path(path)
    if file.is_dir():
        raise MediaFileError(f"{path} is a folder; give the path of a .wav file to write")
    if file.suffix.lower() != ".wav":
        raise MediaFileError(f"cannot record to {path}: recordings are WAV files, and the "
                             f"name must end in .wav")
    folder = file.parent
    if not folder.is_dir():
        raise MediaFileError(f"cannot record to {path}: there is no folder {folder}")
    existed = file.exists()
    try:
        with file.open("r+b" if existed else "xb"):
            pass
    except OSError as exc:
        raise MediaFileError(f"cannot record to {path}: {exc.strerror or exc}") from None
    if not existed:
        try:
            file.unlink()
        except OSError:
            pass
