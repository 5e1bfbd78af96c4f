"""Choosing the codec priority order from configured names (pure: no pjsua2, unit-testable).

pjsua2 must be given explicit priorities (docs/design.md §2: its default prefers speex/16000, which
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
