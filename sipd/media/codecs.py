"""Choosing the codec priority order from configured names (pure: no pjsua2, unit-testable).

pjsua2 must be given explicit priorities (docs/design.md §2: its default prefers speex/16000, which
clips a full-scale tone). A configured name matches codec ids by leading '/'-separated parts,
case-insensitively: "PCMU" matches "PCMU/8000/1", "speex/16000" matches only that rate.
"""

from __future__ import annotations

from typing import Iterable, Sequence

# When the configuration names no codec at all.
DEFAULT_CODECS = ("G722", "PCMU", "PCMA")
# pjsua's conference bridge clock by default (pjsua2's medConfig.clockRate).
WIDEBAND_CLOCK_RATE = 16000
NARROWBAND_CLOCK_RATE = 8000
# Codecs whose audio is 8 kHz whatever the rate written after their name.
NARROWBAND_CODECS = frozenset({"pcmu", "pcma", "gsm", "ilbc", "g729", "amr"})


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


def bridge_clock_rate(codecs: Iterable[str]) -> int:
    """The clock rate a media worker's conference bridge runs at for these configured codecs:
    8 kHz when every one of them is narrowband (PCMU, PCMA, GSM, iLBC, G729, AMR, or a name
    with /8000), so that nothing is resampled between the bridge and the calls (resampling
    both ways was most of a call's CPU: docs/decisions.md); else pjsua's 16 kHz."""
    names = [name.strip().lower() for name in codecs if name.strip()]
    if not names:
        return WIDEBAND_CLOCK_RATE
    for name in names:
        base, _, rest = name.partition("/")
        rate = rest.partition("/")[0]
        if not (base in NARROWBAND_CODECS or rate == str(NARROWBAND_CLOCK_RATE)):
            return WIDEBAND_CLOCK_RATE
    return NARROWBAND_CLOCK_RATE
