"""Typed MSRP header values (RFC 4975 §9, RFC 4976 §5): Byte-Range, Status, the report headers,
Expires and the digest headers; each parser raises MsrpParseError with what is wrong.

Digest values (WWW-Authenticate, Authorization, Authentication-Info) are parsed by the SIP core's
digest parser: the syntax is HTTP's in both protocols.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..sip.auth import Challenge, parse_challenge
from ..sip.errors import SipParseError
from .errors import MsrpParseError

# The headers this core reads; any others are kept as they came.
TO_PATH = "To-Path"
FROM_PATH = "From-Path"
MESSAGE_ID = "Message-ID"
BYTE_RANGE = "Byte-Range"
SUCCESS_REPORT = "Success-Report"
FAILURE_REPORT = "Failure-Report"
STATUS = "Status"
CONTENT_TYPE = "Content-Type"
USE_PATH = "Use-Path"
EXPIRES = "Expires"
MIN_EXPIRES = "Min-Expires"
MAX_EXPIRES = "Max-Expires"
WWW_AUTHENTICATE = "WWW-Authenticate"
AUTHORIZATION = "Authorization"
AUTHENTICATION_INFO = "Authentication-Info"

_BYTE_RANGE = re.compile(r"(\d{1,19})-(\d{1,19}|\*)/(\d{1,19}|\*)")
_STATUS = re.compile(r"(\d{3}) (\d{3})(?: (.*))?")
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{0,63}")  # RFC: 4-32; liberal
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&\-^_.+]+/[A-Za-z0-9!#$&\-^_.+]+(\s*;.*)?")
_DIGITS = re.compile(r"\d{1,10}")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+\-.^_`|~]*")


def is_ident(text: str) -> bool:
    """True for a transaction-id or Message-ID (RFC 4975 `ident`, 4 to 32 characters;
    shorter and longer ones, up to 64, are taken too)."""
    return _IDENT.fullmatch(text) is not None


def is_header_name(text: str) -> bool:
    return _NAME.fullmatch(text) is not None


@dataclass(frozen=True)
class ByteRange:
    """`start-end/total`; None stands for `*`. Positions count from 1, end is inclusive."""

    start: int
    end: int | None
    total: int | None

    def __str__(self) -> str:
        end = "*" if self.end is None else str(self.end)
        total = "*" if self.total is None else str(self.total)
        return f"{self.start}-{end}/{total}"


@functools.lru_cache(maxsize=256)  # a chunk's range is read twice; chat messages repeat them
def parse_byte_range(value: str) -> ByteRange:
    match = _BYTE_RANGE.fullmatch(value.strip())
    if match is None:
        raise MsrpParseError(f"bad Byte-Range {value!r} (expected start-end/total)")
    start = int(match.group(1))
    end = None if match.group(2) == "*" else int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    if start < 1:
        raise MsrpParseError(f"bad Byte-Range {value!r}: positions start at 1")
    if end is not None and end < start - 1:
        raise MsrpParseError(f"bad Byte-Range {value!r}: the end lies before the start")
    if total is not None and end is not None and end > total:
        raise MsrpParseError(f"bad Byte-Range {value!r}: the end lies past the total")
    if total is not None and start > total + 1:
        raise MsrpParseError(f"bad Byte-Range {value!r}: the start lies past the total")
    return ByteRange(start, end, total)


@dataclass(frozen=True)
class Status:
    """The Status header of a REPORT: `000 200 OK` (namespace 000 is the only one defined)."""

    code: int
    comment: str = ""
    namespace: int = 0

    def __str__(self) -> str:
        text = f"{self.namespace:03d} {self.code:03d}"
        return f"{text} {self.comment}" if self.comment else text


def parse_status(value: str) -> Status:
    match = _STATUS.fullmatch(value.strip())
    if match is None:
        raise MsrpParseError(f"bad Status {value!r} (expected e.g. '000 200 OK')")
    return Status(int(match.group(2)), match.group(3) or "", int(match.group(1)))


def parse_success_report(value: str) -> bool:
    text = value.strip().lower()
    if text not in ("yes", "no"):
        raise MsrpParseError(f"bad Success-Report {value!r} (yes or no)")
    return text == "yes"


def parse_failure_report(value: str) -> str:
    text = value.strip().lower()
    if text not in ("yes", "no", "partial"):
        raise MsrpParseError(f"bad Failure-Report {value!r} (yes, no or partial)")
    return text


def parse_seconds(value: str, name: str = EXPIRES) -> int:
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        raise MsrpParseError(f"bad {name} {value!r} (seconds expected)")
    return int(text)


@functools.lru_cache(maxsize=128)
def parse_content_type(value: str) -> str:
    """The media type without parameters, lower case (`text/plain`)."""
    text = value.strip()
    if not _MEDIA_TYPE.fullmatch(text):
        raise MsrpParseError(f"bad Content-Type {value!r}")
    return text.split(";", 1)[0].strip().lower()


def parse_digest(value: str, name: str = WWW_AUTHENTICATE) -> Challenge:
    """A WWW-Authenticate or Authorization value."""
    try:
        return parse_challenge(value, what=name)
    except SipParseError as exc:
        raise MsrpParseError(f"bad {name}: {exc.detail}") from None


def parse_auth_info(value: str) -> dict[str, str]:
    """Authentication-Info parameters (`nextnonce`, `rspauth`, `qop`, `cnonce`, `nc`)."""
    try:
        return parse_challenge("Digest " + value, what=AUTHENTICATION_INFO).params
    except SipParseError as exc:
        raise MsrpParseError(f"bad {AUTHENTICATION_INFO}: {exc.detail}") from None


class Headers:
    """Header fields in arrival order; names are looked up case-insensitively (through an
    index of the first value of each lower-cased name, built on the first lookup: a frame's
    headers are read several times each)."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)
        self._index: dict[str, str] | None = None

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        index = self._index
        if index is not None:
            index.setdefault(name.lower(), value)

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = name.lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]
        self._index = None

    def get(self, name: str) -> str | None:
        index = self._index
        if index is None:
            index = {}
            for n, v in self._items:
                index.setdefault(n.lower(), v)
            self._index = index
        return index.get(name.lower())

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self._items if n.lower() == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        return Headers(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
