"""The SDP a back-to-back call passes between its two legs (docs/design.md §2), sans-I/O.

The outside sees one description, with our o= line (`SessionVersion` of the outside leg):
the worker's audio, sanitised, in the m-line layout of the session (other m-lines rejected
until sipd carries other streams itself). The worker sees only the audio part of what the
remote party sent, with the o= line of the internal leg. Both o= lines keep their version
while the description does not change (RFC 3264 §8), so a session refresh changes nothing.
"""

from __future__ import annotations

from typing import Mapping

from ...sdp import (WORKER_MEDIA_TYPES, MediaDescription, Origin, SDPError, SessionDescription,
                  SessionVersion, held_by_remote, media_changed, merge_answer, merge_offer,
                  parse_sdp, split_media)

__all__ = ["SdpMismatch", "for_worker", "outside_offer", "outside_answer", "has_audio",
           "holds", "parse", "layout_of", "outgoing_lines", "changes"]


class SdpMismatch(ValueError):
    """A description that cannot be passed on (malformed, no audio, a layout that does not
    fit): the message says why; answer 488."""


def parse(body: bytes | None) -> SessionDescription:
    if not body:
        raise SdpMismatch("no SDP")
    try:
        return parse_sdp(body)
    except SDPError as exc:
        raise SdpMismatch(f"malformed SDP: {exc}") from None


def has_audio(sdp: SessionDescription) -> bool:
    split = split_media(sdp)
    return split.has_active_worker_media


def for_worker(sdp: SessionDescription, versions: SessionVersion) -> bytes:
    """The audio part of a remote description (offer or answer), for the worker."""
    worker = split_media(sdp).worker
    if worker is None:
        raise SdpMismatch("the description has no audio stream")
    worker.origin = versions.current()
    return bytes(versions.stamp(worker, only_if_changed=True))


def layout_of(previous: bytes | None, lines: Mapping[int, MediaDescription] | None = None,
              count: int = 1) -> list[MediaDescription | None]:
    """The m-line layout of a new outside offer: the worker's lines where the previous
    description had audio, the session's other streams' `lines` in their places, the rest
    kept in place as rejected streams (RFC 3264 §8). Without a previous description: `count`
    lines, the worker's where `lines` has none."""
    lines = lines or {}
    if not previous:
        return [lines.get(index) for index in range(max(count, 1))]
    try:
        sdp = parse_sdp(previous)
    except SDPError:
        return [None]
    return [lines[index] if index in lines
            else None if media.type in WORKER_MEDIA_TYPES else media.rejected()
            for index, media in enumerate(sdp.media)] or [None]


def outside_offer(worker_offer: SessionDescription | None, versions: SessionVersion,
                  previous: bytes | None = None,
                  lines: Mapping[int, MediaDescription] | None = None,
                  count: int = 1) -> bytes:
    """Our offer to the remote party from the worker's offer (sanitised) and the lines of
    the session's other streams, by m-line position."""
    try:
        offer = merge_offer(worker_offer, layout_of(previous, lines, count),
                            origin=versions.current())
    except ValueError as exc:
        raise SdpMismatch(f"cannot offer the media engine's description: {exc}") from None
    return bytes(versions.stamp(offer, only_if_changed=True))


def outside_answer(offer: SessionDescription, worker_answer: SessionDescription | None,
                   versions: SessionVersion,
                   answers: Mapping[int, MediaDescription] | None = None) -> bytes:
    """Our answer to the remote party's offer, from the worker's answer to its audio part
    and the lines other streams answer (`answers`, by m-line position); port 0 elsewhere."""
    try:
        answer = merge_answer(offer, worker_answer, answers or {}, origin=versions.current())
    except ValueError as exc:
        raise SdpMismatch(f"cannot answer with the media engine's description: {exc}") \
            from None
    return bytes(versions.stamp(answer, only_if_changed=True))


def outgoing_lines(worker: SessionDescription) -> list[MediaDescription]:
    """The worker's m-lines as they go out: sanitised, each with its own c= and direction."""
    merged = merge_offer(worker, [None] * len(worker.media),
                         origin=Origin("-", "0", 0, "IN", "IP4", "127.0.0.1"))
    return merged.media


def holds(sdp: SessionDescription) -> bool:
    """Whether the writer of this offer puts the audio on hold."""
    return held_by_remote(sdp)


def changes(previous: bytes, body: bytes) -> bool:
    """Whether `body` changes the media `previous` described (unreadable: it does)."""
    try:
        return media_changed(parse(previous), parse(body))
    except SdpMismatch:
        return True
