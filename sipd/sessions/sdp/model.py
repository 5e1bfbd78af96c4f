"""Session descriptions (RFC 8866, RFC 4566): the model, its serialisation and typed access.

A description is kept as its lines, in order, so that what was parsed (sdp_parse) is written
back byte for byte with CRLF line ends, lines this module does not know included; the typed
properties read and rewrite single lines, and lines added by code go where RFC 8866 §5 orders
them. Parsing validates every line whose grammar is known, so the accessors of a parsed
description never raise; values set through the model are validated the same way (SDPError).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .attributes import (
    DIRECTIONS,
    Crypto,
    Direction,
    FileSelector,
    Fmtp,
    Rtcp,
    RtpMap,
    parse_accept_types,
    parse_path,
    parse_ptime,
    validate_attribute,
)
from .fields import (
    MEMO_LIMIT,
    Bandwidth,
    Connection,
    MediaLine,
    Origin,
    SDPError,
    Timing,
    check_repeat,
    check_zone,
)

SESSION_ORDER = "vosiuepcbtrzka"  # RFC 8866 §5
MEDIA_ORDER = "icbka"  # after the m= line


@dataclass(frozen=True)
class Line:
    """One `<type>=<value>` line; `number` is its 1-based line number in the parsed text
    (None for lines made by code)."""

    type: str
    value: str
    number: int | None = None

    def __str__(self) -> str:
        return f"{self.type}={self.value}"


@dataclass(frozen=True)
class Attribute:
    """An `a=` line: a flag (`value` None) or `name:value`."""

    name: str
    value: str | None = None

    @classmethod
    def of(cls, line: Line) -> Attribute:
        name, colon, value = line.value.partition(":")
        return cls(name, value if colon else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


# NUL, CR and LF are no text (RFC 8866 §9); a lone surrogate is no character, except the
# escapes of undecodable bytes (U+DC80..U+DCFF), which turn back into those bytes.
_BAD_CHARS = re.compile("[\x00\r\n\ud800-\udc7f\udd00-\udfff]")


def check_line(kind: str, value: str, number: int | None = None) -> Line:
    """A line after checking it: a letter, text, and the grammar of the types known here
    (o, c, b, t, r, z, m, v and the attributes of sdp_attributes). SDPError otherwise."""
    if (kind, value) in _CHECKED:  # the same text checked before: the checks are pure
        return Line(kind, value, number)
    if not (len(kind) == 1 and ("a" <= kind <= "z" or "A" <= kind <= "Z")):
        raise SDPError(f"line type {kind!r} is not a letter", number)
    bad = _BAD_CHARS.search(value)
    if bad:
        raise SDPError(f"character {bad.group()!r} is not allowed in a {kind}= line", number)
    if kind == "v" and value != "0":
        raise SDPError(f"only SDP version 0 is known, not v={value[:20]!r}", number)
    check = _LINE_CHECKS.get(kind)
    if check is not None:
        check(value, number)
    if len(_CHECKED) >= MEMO_LIMIT:
        _CHECKED.clear()
    _CHECKED.add((kind, value))
    return Line(kind, value, number)


# Lines found well formed, by (type, text): a call setup checks the same lines many times (the
# worker's rtpmap lines in every call, each line again whenever a description is rebuilt).
# Bounded like the memos of sdp_fields; a line that failed is never in it.
_CHECKED: set[tuple[str, str]] = set()


_LINE_CHECKS: dict[str, Callable[[str, int | None], object]] = {
    "o": Origin.parse, "c": Connection.parse, "b": Bandwidth.parse, "t": Timing.parse,
    "r": check_repeat, "z": check_zone, "m": MediaLine.parse, "a": validate_attribute}


class _Section:
    """What session and media levels share: attributes, connection, bandwidth, information."""

    _order = SESSION_ORDER
    lines: list[Line]

    # -- lines by type
    def values(self, kind: str) -> list[str]:
        return [line.value for line in self.lines if line.type == kind]

    def value(self, kind: str) -> str | None:
        return next((line.value for line in self.lines if line.type == kind), None)

    def _first(self, kind: str) -> Line | None:
        return next((line for line in self.lines if line.type == kind), None)

    def insert_line(self, line: Line) -> None:
        """Add a line (checked: SDPError) where its type belongs in the order of RFC 8866 §5."""
        check_line(line.type, line.value)
        rank = self._order.find(line.type)
        if rank < 0:
            self.lines.append(line)
            return
        position = 0
        for index, other in enumerate(self.lines):
            other_rank = self._order.find(other.type)
            if 0 <= other_rank <= rank:
                position = index + 1
        self.lines.insert(position, line)

    def _set_single(self, kind: str, value: str | None) -> None:
        """Replace the first line of this type (dropping the others), insert it, or remove all
        lines of the type when `value` is None."""
        self._replace_all(lambda line: line.type == kind,
                          None if value is None else Line(kind, value))

    # -- information, connection, bandwidth
    @property
    def information(self) -> str | None:
        return self.value("i")

    @information.setter
    def information(self, text: str | None) -> None:
        self._set_single("i", text)

    @property
    def connection(self) -> Connection | None:
        """The (first) c= line of this level."""
        line = self._first("c")
        return Connection.parse(line.value, line.number) if line else None

    @connection.setter
    def connection(self, connection: Connection | None) -> None:
        self._set_single("c", None if connection is None else str(connection))

    @property
    def bandwidths(self) -> list[Bandwidth]:
        return [Bandwidth.parse(line.value, line.number) for line in self.lines if line.type == "b"]

    def add_bandwidth(self, bandwidth: Bandwidth) -> None:
        self.insert_line(Line("b", str(bandwidth)))

    def remove_bandwidths(self, *types: str) -> int:
        """Remove the b= lines of these types (all b= lines when none is given)."""
        wanted = {kind.upper() for kind in types}
        return self._remove(lambda line: line.type == "b" and (
            not wanted or line.value.partition(":")[0].upper() in wanted))

    def _remove(self, predicate: Callable[[Line], bool]) -> int:
        before = len(self.lines)
        self.lines = [line for line in self.lines if not predicate(line)]
        return before - len(self.lines)

    # -- attributes (names compare case-insensitively)
    @property
    def attributes(self) -> list[Attribute]:
        return [Attribute.of(line) for line in self.lines if line.type == "a"]

    def _attribute_lines(self, name: str) -> Iterator[Line]:
        wanted = name.lower()
        return (line for line in self.lines if line.type == "a"
                and line.value.partition(":")[0].lower() == wanted)

    def has_attribute(self, name: str) -> bool:
        return next(self._attribute_lines(name), None) is not None

    def attribute(self, name: str) -> str | None:
        """The value of the first `a=name:value` (None when absent or a flag)."""
        line = next(self._attribute_lines(name), None)
        return None if line is None else Attribute.of(line).value

    def attribute_values(self, name: str) -> list[str]:
        """The values of every `a=name` line, in order (a flag gives "")."""
        return [Attribute.of(line).value or "" for line in self._attribute_lines(name)]

    def add_attribute(self, name: str, value: str | None = None) -> None:
        """Append an attribute after the other lines of this level (SDPError if malformed)."""
        self.insert_line(Line("a", str(Attribute(name, value))))

    def remove_attributes(self, *names: str) -> int:
        """Remove every attribute with one of these names; returns how many went."""
        wanted = {name.lower() for name in names}
        return self._remove(
            lambda line: line.type == "a" and line.value.partition(":")[0].lower() in wanted)

    def set_attribute(self, name: str, value: str | None = None) -> None:
        """Make `a=name[:value]` the only attribute of that name, in place of the first one."""
        wanted = name.lower()
        self._replace_all(lambda line: line.type == "a"
                          and line.value.partition(":")[0].lower() == wanted,
                          Line("a", str(Attribute(name, value))))

    def _replace_all(self, predicate: Callable[[Line], bool], new: Line | None) -> None:
        """Put `new` in place of the first line matching and drop the other matches (only drop
        them when `new` is None); insert `new` when no line matches."""
        matches = [index for index, line in enumerate(self.lines) if predicate(line)]
        if not matches:
            if new is not None:
                self.insert_line(new)
            return
        if new is not None:
            check_line(new.type, new.value)
        first, others = matches[0], set(matches[1:])
        lines = [new if index == first else line for index, line in enumerate(self.lines)
                 if index not in others]
        self.lines = [line for line in lines if line is not None]

    @property
    def direction(self) -> Direction | None:
        """The direction attribute written at this level (None when there is none)."""
        for attribute in self.attributes:
            if attribute.name.lower() in DIRECTIONS:
                return Direction(attribute.name.lower())
        return None

    @direction.setter
    def direction(self, direction: Direction | None) -> None:
        self._replace_all(lambda line: line.type == "a" and line.value.lower() in DIRECTIONS,
                          None if direction is None else Line("a", str(Direction(direction))))

    def _text(self) -> Iterator[str]:
        for line in self.lines:
            yield f"{line.type}={line.value}\r\n"


class MediaDescription(_Section):
    """One media section: the m= line and the lines after it."""

    _order = MEDIA_ORDER

    def __init__(self, media_line: Line, lines: Iterable[Line] = ()) -> None:
        self.media_line = media_line
        self.lines = list(lines)

    @classmethod
    def new(cls, type: str, port: int, proto: str, formats: Sequence[str],
            connection: Connection | None = None) -> MediaDescription:
        media = cls(check_line("m", str(MediaLine(type, port, proto, tuple(formats)))))
        if connection is not None:
            media.connection = connection
        return media

    def copy(self) -> MediaDescription:
        return MediaDescription(self.media_line, self.lines)

    # -- the m= line
    @property
    def m(self) -> MediaLine:
        return MediaLine.parse(self.media_line.value, self.media_line.number)

    def _set_m(self, **changes: Any) -> None:
        self.media_line = check_line("m", str(replace(self.m, **changes)))

    type = property(lambda self: self.m.type, lambda self, value: self._set_m(type=value),
                    doc="audio, video, message, application, ...")
    port = property(lambda self: self.m.port, lambda self, value: self._set_m(port=value))
    port_count = property(lambda self: self.m.port_count,
                          lambda self, value: self._set_m(port_count=value))
    proto = property(lambda self: self.m.proto, lambda self, value: self._set_m(proto=value),
                     doc="RTP/AVP, RTP/SAVP, TCP/MSRP, TCP/TLS/MSRP, UDP/TLS/RTP/SAVP, ...")
    formats = property(lambda self: list(self.m.formats),
                       lambda self, value: self._set_m(formats=tuple(value)))

    @property
    def is_rejected(self) -> bool:
        """Port 0: a rejected, removed or disabled stream (RFC 3264 §6, §8.2)."""
        return self.m.port == 0

    @property
    def is_rtp(self) -> bool:
        return "RTP" in self.m.proto.upper().split("/")

    @property
    def is_msrp(self) -> bool:
        return self.m.proto.upper().split("/")[-1] == "MSRP"

    @property
    def is_secure(self) -> bool:
        """SRTP (SAVP, SAVPF, DTLS) or MSRP over TLS."""
        parts = self.proto.upper().split("/")
        return "TLS" in parts or any(part.startswith("SAVP") for part in parts)

    def rejected(self) -> MediaDescription:
        """The answer rejecting this stream: port 0, the same type, transport and formats,
        nothing else (RFC 3264 §6)."""
        m = self.m
        return MediaDescription(Line("m", str(MediaLine(m.type, 0, m.proto, m.formats))))

    @property
    def connections(self) -> list[Connection]:
        return [Connection.parse(line.value, line.number)
                for line in self.lines if line.type == "c"]

    # -- RTP
    def rtpmaps(self) -> list[RtpMap]:
        return [RtpMap.parse(value) for value in self.attribute_values("rtpmap")]

    def rtpmap(self, payload_type: int | str) -> RtpMap | None:
        """The rtpmap of a payload type, or the static one of RFC 3551."""
        for rtpmap in self.rtpmaps():
            if str(rtpmap.payload_type) == str(payload_type):
                return rtpmap
        text = str(payload_type)
        return RtpMap.static(int(text)) if text.isascii() and text.isdigit() else None

    def codecs(self) -> list[RtpMap]:
        """The payload formats in order of preference, static ones included (a dynamic format
        with no rtpmap is left out)."""
        return [rtpmap for fmt in self.formats if (rtpmap := self.rtpmap(fmt)) is not None]

    def fmtps(self) -> list[Fmtp]:
        return [Fmtp.parse(value) for value in self.attribute_values("fmtp")]

    def fmtp(self, fmt: int | str) -> Fmtp | None:
        return next((fmtp for fmtp in self.fmtps() if fmtp.format == str(fmt)), None)

    @property
    def crypto(self) -> list[Crypto]:
        return [Crypto.parse(value) for value in self.attribute_values("crypto")]

    @property
    def rtcp(self) -> Rtcp | None:
        value = self.attribute("rtcp")
        return Rtcp.parse(value) if value is not None else None

    @property
    def ptime(self) -> float | None:
        value = self.attribute("ptime")
        return parse_ptime(value) if value is not None else None

    @property
    def maxptime(self) -> float | None:
        value = self.attribute("maxptime")
        return parse_ptime(value) if value is not None else None

    @property
    def candidates(self) -> list[str]:
        """ICE candidates (RFC 8839), as their text."""
        return self.attribute_values("candidate")

    # -- MSRP (RFC 4975) and file transfer (RFC 5547)
    @property
    def path(self) -> list[str]:
        value = self.attribute("path")
        return parse_path(value) if value is not None else []

    @path.setter
    def path(self, uris: Sequence[str]) -> None:
        self.set_attribute("path", " ".join(uris))

    @property
    def accept_types(self) -> list[str]:
        value = self.attribute("accept-types")
        return parse_accept_types(value) if value is not None else []

    @accept_types.setter
    def accept_types(self, types: Sequence[str]) -> None:
        self.set_attribute("accept-types", " ".join(types))

    @property
    def accept_wrapped_types(self) -> list[str]:
        value = self.attribute("accept-wrapped-types")
        return parse_accept_types(value) if value is not None else []

    @accept_wrapped_types.setter
    def accept_wrapped_types(self, types: Sequence[str]) -> None:
        if types:
            self.set_attribute("accept-wrapped-types", " ".join(types))
        else:
            self.remove_attributes("accept-wrapped-types")

    @property
    def max_size(self) -> int | None:
        value = self.attribute("max-size")
        return int(value) if value is not None else None

    @property
    def setup(self) -> str | None:
        """RFC 4145 role: active, passive, actpass or holdconn."""
        value = self.attribute("setup")
        return value.strip(" \t").lower() if value is not None else None

    @property
    def file_selector(self) -> FileSelector | None:
        value = self.attribute("file-selector")
        return FileSelector.parse(value) if value is not None else None

    @property
    def file_transfer_id(self) -> str | None:
        return self.attribute("file-transfer-id")

    @property
    def file_disposition(self) -> str | None:
        return self.attribute("file-disposition")

    def _text(self) -> Iterator[str]:
        yield f"m={self.media_line.value}\r\n"
        yield from super()._text()

    def __str__(self) -> str:
        return "".join(self._text())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MediaDescription) and str(self) == str(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<MediaDescription {self.media_line.value!r}>"


class SessionDescription(_Section):
    """A whole description: the session-level lines and the media sections in order."""

    _order = SESSION_ORDER

    def __init__(self, lines: Iterable[Line], media: Iterable[MediaDescription] = ()) -> None:
        self.lines = list(lines)
        self.media = list(media)

    @classmethod
    def new(cls, origin: Origin, session_name: str = "-", *,
            connection: Connection | None = None, timing: Timing = Timing()) -> SessionDescription:
        lines = [Line("v", "0"), Line("o", str(origin)), Line("s", session_name or "-")]
        if connection is not None:
            lines.append(Line("c", str(connection)))
        lines.append(Line("t", str(timing)))
        return cls(lines)

    def copy(self) -> SessionDescription:
        return SessionDescription(self.lines, (media.copy() for media in self.media))

    @property
    def version(self) -> int:
        return int(self.value("v") or 0)

    @property
    def origin(self) -> Origin:
        line = self._first("o")
        if line is None:
            raise SDPError("the description has no o= line")
        return Origin.parse(line.value, line.number)

    @origin.setter
    def origin(self, origin: Origin) -> None:
        self._set_single("o", str(origin))

    @property
    def session_name(self) -> str:
        return self.value("s") or ""

    @session_name.setter
    def session_name(self, name: str) -> None:
        self._set_single("s", name or "-")

    @property
    def uri(self) -> str | None:
        return self.value("u")

    @property
    def emails(self) -> list[str]:
        return self.values("e")

    @property
    def phones(self) -> list[str]:
        return self.values("p")

    @property
    def timing(self) -> Timing | None:
        line = self._first("t")
        return Timing.parse(line.value, line.number) if line else None

    @timing.setter
    def timing(self, timing: Timing) -> None:
        self._remove(lambda line: line.type == "r")
        self._set_single("t", str(timing))

    def _media(self, media: MediaDescription | int) -> MediaDescription:
        return self.media[media] if isinstance(media, int) else media

    def connection_of(self, media: MediaDescription | int) -> Connection | None:
        """Where a stream goes: its own c= line, else the session's."""
        return self._media(media).connection or self.connection

    def direction_of(self, media: MediaDescription | int) -> Direction:
        """The effective direction of a stream: media level, else session level, else
        sendrecv (RFC 8866 §6.7)."""
        return self._media(media).direction or self.direction or Direction.SENDRECV

    def media_of_type(self, type: str) -> list[MediaDescription]:
        return [media for media in self.media if media.type == type]

    def _text(self) -> Iterator[str]:
        yield from super()._text()
        for media in self.media:
            yield from media._text()

    def __str__(self) -> str:
        # What _text() yields, without a generator per section (every message sent with SDP
        # is written, and a description is compared by its text).
        parts = [f"{line.type}={line.value}\r\n" for line in self.lines]
        for media in self.media:
            parts.append(f"m={media.media_line.value}\r\n")
            parts += [f"{line.type}={line.value}\r\n" for line in media.lines]
        return "".join(parts)

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8", "surrogateescape")

    encode = __bytes__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SessionDescription) and str(self) == str(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<SessionDescription o={self.value('o')!r} media={[m.type for m in self.media]}>"
