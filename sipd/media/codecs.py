"""Choosing the codec priority order from configured names, and the conference bridge clock
those codecs need (pure: no pjsua2, unit-testable; the main process imports it too).

pjsua2 must be given explicit priorities (DESIGN.md §2: its default prefers speex/16000, which
clips a full-scale tone). A configured name matches codec ids by leading '/'-separated parts,
case-insensitively: "PCMU" matches "PCMU/8000/1", "speex/16000" matches only that rate.
"""

from __future__ import annotations

from typing import Iterable, Sequence

# When the configuration names no codec at all.
DEFAULT_CODECS = ("G722", "PCMU", "PCMA")


def codec_matches(name: str, codec_id: str) -> bool:
    wanted = [part.lower() for part in name.strip().split("/") if part]
    parts = codec_id.lower().split("/")
    return bool(wanted) and parts[:len(wanted)] == wanted


def select_codecs(requested: Iterable[str],
                  available: Sequence[str]) -> tuple[list[str], list[str]]:
    """(codec ids in priority order, requested names that match nothing available)."""
    order: list[str] = []
    unknown: list[str] = []
    for name in requested:
        matches = [cid for cid in available if codec_matches(name, cid) and cid not in order]
        if not matches and not any(codec_matches(name, cid) for cid in order):
            unknown.append(name)
        order.extend(matches)
    return order, unknown


# pjsua's conference bridge clock when nothing else is said (its own default).
DEFAULT_CLOCK_RATE = 16000
# Sample rates of codecs whose configured name carries none ("speex" enables all three of
# its rates: the widest counts). A name like "speex/16000" or an id like "PCMU/8000/1"
# carries its own rate; a name found in neither gets the default clock.
CODEC_CLOCK_RATES = {
    "pcmu": 8000, "pcma": 8000, "gsm": 8000, "ilbc": 8000, "g729": 8000, "amr": 8000,
    "g722": 16000, "g7221": 16000, "amr-wb": 16000, "speex": 32000, "l16": 44100,
    "opus": 48000,
}


def codec_clock_rate(name: str) -> int:
    """The sample rate a configured codec name or a pjsua codec id runs at."""
    parts = [part for part in name.strip().split("/") if part]
    if len(parts) > 1 and parts[1].isdigit():
        return int(parts[1])
    return CODEC_CLOCK_RATES.get(parts[0].lower(), DEFAULT_CLOCK_RATE) if parts \
        else DEFAULT_CLOCK_RATE


def bridge_clock_rate(codecs: Iterable[str]) -> int:
    """The conference bridge clock a media worker needs for these codecs: the highest rate
    among them. A bridge slower than a call's codec narrows its audio (G722 through an 8 kHz
    bridge is telephone band again); a faster one resamples every narrowband call both ways
    on every 20 ms frame, the largest single cost of a call (docs/decisions.md)."""
    return max((codec_clock_rate(name) for name in codecs), default=DEFAULT_CLOCK_RATE)
