"""Whether a remote audio offer names any codec our media workers use (`rtp.audio_codecs`).

An offer of only codecs we lack is refused at once with 488 and a Warning (RFC 3261
§13.3.1.1, RFC 3264 §6): without this check the call would ring, and fail only once
answered, when the worker finds nothing in common. Sans-I/O.
"""

from __future__ import annotations

from typing import Iterable

from ...sdp import MediaDescription, SessionDescription, split_media

# Formats that carry no audio of their own: a match on them alone is no match.
_NOT_AUDIO = frozenset({"telephone-event", "cn", "red", "ulpfec", "rtx"})


def missing_codecs(offer: SessionDescription, configured: Iterable[str]) -> str | None:
    """Why no audio stream of the offer can be taken (the Warning text), or None."""
    names = [name for name in configured if name]
    # By encoding name only: a configured rate need not be the rtpmap's (G722 runs at 16 kHz
    # but is written G722/8000, RFC 3551 §4.5.2). A false match only lets the worker decide.
    wanted = {name.split("/", 1)[0].strip().lower() for name in names}
    worker = split_media(offer).worker
    if not names or worker is None:
        return None
    offered: list[str] = []
    for media in worker.media:
        if media.is_rejected:
            continue
        for codec in media.codecs():
            if codec.encoding.lower() in _NOT_AUDIO:
                continue
            if codec.encoding.lower() in wanted:
                return None
            offered.append(f"{codec.encoding}/{codec.clock_rate}")
    if not offered:
        return None  # nothing we can read (dynamic types without rtpmap): the worker decides
    return (f"no common audio codec: offered {', '.join(dict.fromkeys(offered))}; "
            f"this sipd takes {', '.join(names)}")


def line_missing_codecs(media: MediaDescription, configured: Iterable[str]) -> str | None:
    """The same check for one offered audio m-line (an offer is answered line by line)."""
    names = [name for name in configured if name]
    wanted = {name.split("/", 1)[0].strip().lower() for name in names}
    if not names or media.is_rejected:
        return None
    offered: list[str] = []
    for codec in media.codecs():
        if codec.encoding.lower() in _NOT_AUDIO:
            continue
        if codec.encoding.lower() in wanted:
            return None
        offered.append(f"{codec.encoding}/{codec.clock_rate}")
    if not offered:
        return None
    return (f"no common audio codec: offered {', '.join(dict.fromkeys(offered))}; "
            f"this sipd takes {', '.join(names)}")
