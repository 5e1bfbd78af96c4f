"""SDP line values (RFC 8866, RFC 4566): limits, SDPError, and the typed views of the o=, c=,
b=, t=, r=, z= and m= lines.

Each class parses the text after `x=` with `parse(value, line)` and gives it back with `str()`.
`parse` raises SDPError naming the line number, never anything else. The parser of whole
descriptions (sdp_parse) validates every line it knows with these and with the attribute
values of sdp_attributes, so the accessors of a parsed description never raise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

# --- limits and errors -----------------------------------------------------------------------

MAX_SDP_SIZE = 64 * 1024  # bytes; an offer larger than this is refused whole
MAX_MEDIA = 64  # m= lines in one description
MAX_LINES = 4096


class SDPError(ValueError):
    """A session description that does not follow the SDP grammar (or is too large).

    `line` is the 1-based line number in the parsed text (None when the problem is not on one
    line, e.g. the size, or when the value was not parsed from text); `detail` says what is
    wrong, for logs and a Warning header of the 488 answer.
    """

    def __init__(self, detail: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {detail}" if line else detail)
        self.detail = detail
        self.line = line


# --- lexical helpers ------------------------------------------------------------------------

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "!#$%&'*+-.^_`{|}~")
_DIGITS = re.compile(r"[0-9]+")
_TYPED_TIME = re.compile(r"-?[0-9]+[dhms]?")
_SPACES = re.compile(r"[ \t]+")


def split_fields(value: str, maxsplit: int = 0) -> list[str]:
    """The fields of a value separated by spaces (runs of spaces and tabs tolerated; other
    Unicode white space is no separator)."""
    value = value.strip(" \t")
    return _SPACES.split(value, maxsplit) if value else []


_TOKEN = re.compile("[" + re.escape("".join(sorted(TOKEN_CHARS))) + "]+")


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


# The typed values are frozen and a function of their text alone (the line number only goes
# into an error), and a call setup reads the same few lines again and again: the worker's
# rtpmap lines in every call, the m= line each time a property of the stream is read. What
# parsed is kept, by text; what failed is not (it raises each time, with its line number).
# Bounded: a peer sending ever new values empties the table, it does not grow it.
MEMO_LIMIT = 4096


def memoized(parse: Callable[[str, int | None], T]) -> Callable[[str, int | None], T]:
    """`parse(value, line)` remembered by `value` (for pure parsers of immutable values)."""
    done: dict[str, T] = {}

    def remembered(value: str, line: int | None = None) -> T:
        found = done.get(value)
        if found is None:
            found = parse(value, line)
            if len(done) >= MEMO_LIMIT:
                done.clear()
            done[value] = found
        return found
    remembered.__doc__ = parse.__doc__
    return remembered


def check_token(text: str, what: str, line: int | None) -> str:
    if not is_token(text):
        raise SDPError(f"{what} {text!r} is not a token", line)
    return text


def parse_number(text: str, what: str, line: int | None, *, maximum: int | None = None) -> int:
    if not _DIGITS.fullmatch(text):
        raise SDPError(f"{what} {text!r} is not a number", line)
    if len(text) > 20:
        raise SDPError(f"{what} {text[:24]!r}... is too long", line)
    number = int(text)
    if maximum is not None and number > maximum:
        raise SDPError(f"{what} {number} is larger than {maximum}", line)
    return number


def fields_of(value: str, what: str, line: int | None, count: int | None = None,
              minimum: int = 1) -> list[str]:
    """The space-separated fields of a value, `count` of them or at least `minimum`."""
    parts = split_fields(value)
    if count is not None and len(parts) != count:
        raise SDPError(f"{what} needs {count} fields, got {len(parts)}: {value!r}", line)
    if len(parts) < minimum:
        raise SDPError(f"{what} needs at least {minimum} field(s): {value!r}", line)
    return parts


# --- session and media fields ---------------------------------------------------------------

@dataclass(frozen=True)
class Origin:
    """o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>"""

    username: str
    session_id: str
    session_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> Origin:
        username, sess_id, version, nettype, addrtype, address = fields_of(value, "o=", line, 6)
        check_token(sess_id, "o= session id", line)
        return cls(username, sess_id, parse_number(version, "o= session version", line),
                   check_token(nettype, "o= network type", line),
                   check_token(addrtype, "o= address type", line), address)

    def same_session(self, other: Origin) -> bool:
        """The same session (RFC 3264 §8: all but the version are the same)."""
        return (self.username, self.session_id, self.nettype, self.addrtype, self.address) == (
            other.username, other.session_id, other.nettype, other.addrtype, other.address)

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} {self.nettype} "
                f"{self.addrtype} {self.address}")


HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})


@dataclass(frozen=True)
class Connection:
    """c=<nettype> <addrtype> <connection-address>, with the multicast /ttl and /count."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"
    ttl: int | None = None
    count: int | None = None

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> Connection:
        nettype, addrtype, full = fields_of(value, "c=", line, 3)
        check_token(nettype, "c= network type", line)
        check_token(addrtype, "c= address type", line)
        address, *suffix = full.split("/")
        if not address:
            raise SDPError(f"c= address is empty: {value!r}", line)
        numbers = [parse_number(part, "c= multicast suffix", line) for part in suffix]
        if addrtype.upper() == "IP6":
            if len(numbers) > 1:
                raise SDPError(f"c= IP6 address takes at most one /count: {full!r}", line)
            return cls(address, addrtype, nettype, None, numbers[0] if numbers else None)
        if len(numbers) > 2:
            raise SDPError(f"c= address takes at most /ttl/count: {full!r}", line)
        ttl = numbers[0] if numbers else None
        count = numbers[1] if len(numbers) > 1 else None
        return cls(address, addrtype, nettype, ttl, count)

    @property
    def is_hold(self) -> bool:
        """The RFC 2543 way of putting a call on hold: the address 0.0.0.0."""
        return self.address in HOLD_ADDRESSES

    def __str__(self) -> str:
        suffix = "".join(f"/{number}" for number in (self.ttl, self.count) if number is not None)
        return f"{self.nettype} {self.addrtype} {self.address}{suffix}"


@dataclass(frozen=True)
class Bandwidth:
    """b=<bwtype>:<bandwidth> (AS and CT in kbit/s, TIAS in bit/s)."""

    type: str
    value: int

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> Bandwidth:
        kind, colon, amount = value.partition(":")
        if not colon:
            raise SDPError(f"b= needs <type>:<bandwidth>, got {value!r}", line)
        return cls(check_token(kind, "b= type", line),
                   parse_number(amount.strip(" \t"), "b= bandwidth", line))

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


@dataclass(frozen=True)
class Timing:
    """t=<start-time> <stop-time> (NTP seconds; 0 0 for a permanent session as SIP uses)."""

    start: int = 0
    stop: int = 0

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> Timing:
        start, stop = fields_of(value, "t=", line, 2)
        return cls(parse_number(start, "t= start time", line),
                   parse_number(stop, "t= stop time", line))

    def __str__(self) -> str:
        return f"{self.start} {self.stop}"


def check_repeat(value: str, line: int | None) -> None:
    """r=<repeat interval> <active duration> <offsets from start-time>"""
    parts = fields_of(value, "r=", line, minimum=3)
    for part in parts:
        if not _TYPED_TIME.fullmatch(part) or part.startswith("-"):
            raise SDPError(f"r= time {part!r} is not a number of d/h/m/s", line)


def check_zone(value: str, line: int | None) -> None:
    """z=<adjustment time> <offset> <adjustment time> <offset> ..."""
    parts = fields_of(value, "z=", line, minimum=2)
    if len(parts) % 2:
        raise SDPError(f"z= needs pairs of <adjustment time> <offset>: {value!r}", line)
    for time, offset in zip(parts[::2], parts[1::2], strict=True):
        parse_number(time, "z= adjustment time", line)
        if not _TYPED_TIME.fullmatch(offset):
            raise SDPError(f"z= offset {offset!r} is not a time", line)


@dataclass(frozen=True)
class MediaLine:
    """m=<media> <port>[/<number of ports>] <proto> <fmt> ..."""

    type: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> MediaLine:
        parts = fields_of(value, "m=", line, minimum=3)
        kind, port_text, proto, *formats = parts
        check_token(kind, "m= media type", line)
        port_part, slash, count_part = port_text.partition("/")
        port = parse_number(port_part, "m= port", line, maximum=65535)
        count = parse_number(count_part, "m= port count", line) if slash else None
        if count == 0:
            raise SDPError("m= port count must be at least 1", line)
        if not all(is_token(piece) for piece in proto.split("/")):
            raise SDPError(f"m= transport protocol {proto!r} is not a list of tokens", line)
        if not formats and port != 0:
            raise SDPError(f"m= line has no media format: {value!r}", line)
        for fmt in formats:
            check_token(fmt, "m= media format", line)
        return cls(kind, port, proto, tuple(formats), count)

    def __str__(self) -> str:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        return " ".join([self.type, port, self.proto, *self.formats])


for _kind in (Origin, Connection, Bandwidth, Timing, MediaLine):
    _kind.parse = staticmethod(memoized(_kind.parse))  # type: ignore[assignment]
