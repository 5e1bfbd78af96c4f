"""Offer/answer (RFC 3264) for a back-to-back media worker (docs/design.md §2).

The remote party sees one description; the media worker (pjsua2 on the loopback leg) sees only
the audio part of it, because pjsua answers an `m=message` line with port 0 and refuses an offer
without audio. So an incoming offer is split: the audio m-lines, with the session-level lines,
go to the worker; the other m-lines (MSRP chat, file transfer, screen sharing) stay here. The
answers are merged back into one answer in the offer's m-line order, with as many m-lines as
the offer (RFC 3264 §6): a stream nobody answered is rejected with port 0. Outgoing offers are
merged the same way from the worker's offer and our own streams.

The worker's lines that must not go outside (`s=pjmedia`, `b=AS`, `b=TIAS`, `a=X-nat`,
`a=ssrc`, ...) are removed by `sanitize_worker_sdp`, which the merges apply.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .attributes import DIRECTIONS, Direction
from .fields import Connection, Origin, Timing
from .model import Line, MediaDescription, SessionDescription

WORKER_MEDIA_TYPES = ("audio",)
DEFAULT_SESSION_NAME = "sipd"
# What the worker writes for itself, not for the remote party.
STRIPPED_BANDWIDTHS = frozenset({"AS", "TIAS"})
STRIPPED_ATTRIBUTES = frozenset({"x-nat", "ssrc", "ssrc-group", "msid", "msid-semantic"})
# Session-level lines that describe the session's media (compared for changes, kept in merges).
_MEDIA_SESSION_TYPES = frozenset("cbtrzka")


# --- split ----------------------------------------------------------------------------------

@dataclass
class MediaSplit:
    """A description cut in two: `worker` is a full description holding only the worker's
    m-lines (the audio ones, rejected ones included so that the m-line positions of the
    loopback leg stay stable across re-offers), or None when there is no audio line;
    `worker_indices[i]` is the position in the original of the worker's i-th m-line;
    `others` holds copies of the other m-lines by their position; `count` is the number of
    m-lines of the original."""

    worker: SessionDescription | None
    worker_indices: tuple[int, ...]
    others: dict[int, MediaDescription]
    count: int

    @property
    def has_active_worker_media(self) -> bool:
        """Whether any worker m-line has a port (pjsua answers 488 when none does)."""
        return self.worker is not None and any(not m.is_rejected for m in self.worker.media)


def split_media(sdp: SessionDescription, *, worker_types: Sequence[str] = WORKER_MEDIA_TYPES,
                origin: Origin | None = None) -> MediaSplit:
    """Split a description (an offer or an answer) into the worker's part and the rest.

    The worker's part keeps every session-level line (its c= and direction apply to the
    audio too); `origin` replaces its o= line when the loopback leg keeps its own versions.
    """
    worker_indices = tuple(i for i, media in enumerate(sdp.media) if media.type in worker_types)
    others = {i: media.copy() for i, media in enumerate(sdp.media) if i not in worker_indices}
    worker = None
    if worker_indices:
        worker = SessionDescription(sdp.lines, (sdp.media[i].copy() for i in worker_indices))
        if origin is not None:
            worker.origin = origin
    return MediaSplit(worker, worker_indices, others, len(sdp.media))


# --- sanitise and merge ---------------------------------------------------------------------

def sanitize_worker_sdp(sdp: SessionDescription,
                        session_name: str = DEFAULT_SESSION_NAME) -> SessionDescription:
    """A copy of a worker's description fit for the outside: our session name instead of
    `s=pjmedia`, no b=AS / b=TIAS, no a=X-nat, a=ssrc, a=ssrc-group, a=msid(-semantic);
    everything else (crypto, rtcp, rtpmap, fmtp, direction, ptime, ICE) is kept."""
    clean = sdp.copy()
    clean.session_name = session_name
    for section in (clean, *clean.media):  # one pass per section (a call setup does this 4×)
        section.lines = [line for line in section.lines if _kept(line)]
    return clean


def _kept(line: Line) -> bool:
    """Whether sanitising keeps this line (what remove_bandwidths(*STRIPPED_BANDWIDTHS) and
    remove_attributes(*STRIPPED_ATTRIBUTES) keep)."""
    if line.type == "b":
        return line.value.partition(":")[0].upper() not in STRIPPED_BANDWIDTHS
    if line.type == "a":
        return line.value.partition(":")[0].lower() not in STRIPPED_ATTRIBUTES
    return True


def merge_answer(offer: SessionDescription, worker_answer: SessionDescription | None,
                 answers: Mapping[int, MediaDescription | None], *, origin: Origin,
                 session_name: str = DEFAULT_SESSION_NAME,
                 worker_types: Sequence[str] = WORKER_MEDIA_TYPES) -> SessionDescription:
    """Our answer to `offer`: the worker's answer to its part (see `split_media`) for the
    audio m-lines and `answers[index]` for the others, in the offer's order.

    A stream the offer rejected, that the worker did not answer, or that has no (or a None)
    entry in `answers` is answered with port 0 and the offered formats. The t= line is the
    offer's (RFC 3264 §6). Every accepted stream of `answers` needs its own c= line
    (ValueError otherwise, as for an answer of another media type).
    """
    split = split_media(offer, worker_types=worker_types)
    worker_media = _worker_media(worker_answer, session_name)
    layout: list[MediaDescription] = []
    for index, offered in enumerate(offer.media):
        if index in split.worker_indices:
            position = split.worker_indices.index(index)
            answer = worker_media[position] if position < len(worker_media) else None
            if answer is not None and answer.type != offered.type:
                answer = None  # the worker answered another stream: reject this one
        else:
            answer = answers.get(index)
            if answer is not None and answer.type != offered.type:
                raise ValueError(f"m-line {index} offers {offered.type}, "
                                 f"the answer is {answer.type}")
        if answer is None or offered.is_rejected:
            answer = offered.rejected()
        layout.append(answer)
    return _assemble(worker_answer, layout, origin, session_name,
                     offer.timing or Timing())


def merge_offer(worker_offer: SessionDescription | None,
                layout: Sequence[MediaDescription | None], *, origin: Origin,
                session_name: str = DEFAULT_SESSION_NAME) -> SessionDescription:
    """Our offer: `layout` gives the m-lines in order, None standing for the worker's next
    m-line. A re-offer keeps every earlier m-line position (RFC 3264 §8): reuse the layout
    and put a `rejected()` stream where one was removed. Our accepted streams need their own
    c= line, and the layout must take all of the worker's m-lines (ValueError otherwise)."""
    worker_media = iter(_worker_media(worker_offer, session_name))
    media = []
    for entry in layout:
        if entry is None:
            entry = next(worker_media, None)
            if entry is None:
                raise ValueError("the layout has more worker m-lines than the worker offered")
        media.append(entry)
    if next(worker_media, None) is not None:
        raise ValueError("the worker offered more m-lines than the layout has room for")
    return _assemble(worker_offer, media, origin, session_name, Timing())


def _worker_media(worker: SessionDescription | None, session_name: str) -> list[MediaDescription]:
    """The worker's m-lines, sanitised, each with its own c= and direction (taken from the
    session level), since the session level of the merge is shared with other streams."""
    if worker is None:
        return []
    clean = sanitize_worker_sdp(worker, session_name)
    result = []
    for media in clean.media:
        if media.connection is None and clean.connection is not None and not media.is_rejected:
            media.connection = clean.connection
        if media.direction is None and clean.direction is not None and not media.is_rejected:
            media.direction = clean.direction
        result.append(media)
    return result


def _assemble(worker: SessionDescription | None, media: Sequence[MediaDescription],
              origin: Origin, session_name: str, timing: Timing) -> SessionDescription:
    result = SessionDescription.new(origin, session_name, timing=timing)
    if worker is not None:
        # Session-level bandwidth and attributes of the worker (ICE options, ...), sanitised;
        # its direction went down to its own streams. (Only its session level is read: the
        # lines a sanitised copy with `direction = None` would have, without copying it.)
        for line in worker.lines:
            if line.type in "ba" and _kept(line) and not (
                    line.type == "a" and line.value.lower() in DIRECTIONS):
                result.insert_line(Line(line.type, line.value))
    result.media = [entry.copy() for entry in media]
    for index, entry in enumerate(result.media):
        if entry.connection is None and not entry.is_rejected:
            raise ValueError(f"m-line {index} ({entry.type}) has no c= line")
    if any(entry.connection is None for entry in result.media):
        # A rejected m-line needs a c= too (RFC 8866 §5.7): any address does.
        result.connection = next(
            (entry.connection for entry in result.media if entry.connection is not None),
            Connection(origin.address, origin.addrtype, origin.nettype))
    return result


# --- o= line versions -----------------------------------------------------------------------

class SessionVersion:
    """Our o= line for one session: a stable session id and a version that goes up by one for
    every new offer or answer we send (RFC 3264 §8; RFC 8866 §5.2)."""

    def __init__(self, address: str, *, addrtype: str | None = None, username: str = "-",
                 session_id: int | None = None) -> None:
        self.session_id = session_id if session_id is not None else secrets.randbelow(2**62) + 1
        self.version = self.session_id  # like pjsua: the first description has version = id
        self.username = username
        self.address = address
        self.addrtype = addrtype or ("IP6" if ":" in address else "IP4")
        self._used = False
        self._last_body: str | None = None

    def current(self) -> Origin:
        """The o= line last sent (to send the same description again)."""
        return Origin(self.username, str(self.session_id), self.version, "IN", self.addrtype,
                      self.address)

    def next(self) -> Origin:
        """The o= line of a new description (the first call gives the initial version)."""
        if self._used:
            self.version += 1
        self._used = True
        return self.current()

    def stamp(self, sdp: SessionDescription, *,
              only_if_changed: bool = False) -> SessionDescription:
        """Put our o= line on `sdp` (in place, and returned): a new version, or with
        `only_if_changed` the previous one when nothing but the o= line differs from the
        description stamped last."""
        body = _body(sdp)
        if only_if_changed and self._used and body == self._last_body:
            sdp.origin = self.current()
        else:
            sdp.origin = self.next()
        self._last_body = body
        return sdp


# --- hold -----------------------------------------------------------------------------------

def set_hold(sdp: SessionDescription, held: bool, *, inactive: bool = False,
             media_types: Sequence[str] = WORKER_MEDIA_TYPES) -> None:
    """Put the accepted streams of these types of our description on hold (sendonly, or
    inactive when we also did not receive or with `inactive`), or take them off it
    (sendrecv). Changes `sdp` in place."""
    for media in sdp.media:
        if media.type in media_types and not media.is_rejected:
            current = sdp.direction_of(media)
            media.direction = current.held(inactive) if held else current.resumed()


def stream_is_held(sdp: SessionDescription, media: MediaDescription | int) -> bool:
    """Whether the side that wrote `sdp` holds this stream: sendonly or inactive, or the
    RFC 2543 way with c=0.0.0.0."""
    connection = sdp.connection_of(media)
    return (sdp.direction_of(media) in (Direction.SENDONLY, Direction.INACTIVE)
            or (connection is not None and connection.is_hold))


def held_by_remote(sdp: SessionDescription, *,
                   media_types: Sequence[str] = WORKER_MEDIA_TYPES) -> bool:
    """Whether a remote offer puts us on hold: it has accepted streams of these types and
    holds every one of them."""
    active = [media for media in sdp.media if media.type in media_types and not media.is_rejected]
    return bool(active) and all(stream_is_held(sdp, media) for media in active)


# --- changes --------------------------------------------------------------------------------

def _body(sdp: SessionDescription) -> str:
    """The description without what does not describe media (o=, s=, i=, u=, e=, p=), to
    tell whether a description we send again changed."""
    session = "".join(f"{line}\r\n" for line in sdp.lines if line.type in _MEDIA_SESSION_TYPES)
    return session + "".join(str(media) for media in sdp.media)


def media_changed(old: SessionDescription, new: SessionDescription) -> bool:
    """Whether `new` (say the offer of a re-INVITE) changes the media of a session described
    by `old`: never when the o= line is the same (RFC 3264 §8: same version, same
    description); otherwise when a stream changed or was added (see `changed_media`). A new
    version that only renames the session or rewrites the same direction is no change."""
    return bool(changed_media(old, new)) or (
        old.origin != new.origin and len(new.media) != len(old.media))


def changed_media(old: SessionDescription, new: SessionDescription) -> list[int]:
    """The positions of the m-lines of `new` that differ from `old` (added ones included),
    comparing each stream with the session-level lines that apply to it (c=, direction,
    attributes). Empty when the o= line is the same."""
    if old.origin == new.origin:
        return []
    old_streams = [_stream_key(old, media) for media in old.media]
    return [index for index, media in enumerate(new.media)
            if index >= len(old_streams) or old_streams[index] != _stream_key(new, media)]


def _stream_key(sdp: SessionDescription, media: MediaDescription) -> tuple[object, ...]:
    """What one stream is: its m= line, effective c= and direction, its other lines and the
    session-level b=, k= and a= lines that apply to it."""

    def describing(lines: Iterable[Line], types: str | None) -> tuple[str, ...]:
        return tuple(str(line) for line in lines
                     if (line.type in types if types else line.type != "c")
                     and not (line.type == "a" and line.value.lower() in _DIRECTION_NAMES))

    return (media.media_line.value, str(sdp.connection_of(media)), sdp.direction_of(media),
            describing(media.lines, None), describing(sdp.lines, "bka"))


_DIRECTION_NAMES = frozenset(direction.value for direction in Direction)
