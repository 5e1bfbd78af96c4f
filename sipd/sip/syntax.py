"""Lexical pieces of the SIP grammar (RFC 3261 §25): character classes, a scanner for header
values, quoted strings, comma-separated lists, percent escapes and `;name=value` parameters.

Header values reach this module already unfolded (every CRLF+WSP replaced by one SP) and
decoded from UTF-8 with `surrogateescape`, so any byte string round-trips through `str`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator

from .errors import SipParseError

ALPHANUM = frozenset(string.ascii_letters + string.digits)
TOKEN_CHARS = ALPHANUM | frozenset("-.!%*_+`'~")
WORD_CHARS = TOKEN_CHARS | frozenset('()<>:\\"/[]?{}')
UNRESERVED = ALPHANUM | frozenset("-_.!~*'()")
WSP = " \t"
HEX = frozenset(string.hexdigits)
# A generic-param value is a token, a host (IPv6 references included) or a quoted string.
PARAM_VALUE_CHARS = TOKEN_CHARS | frozenset("[]:")


_RUN_PATTERNS: dict[frozenset[str], re.Pattern[str]] = {}


def char_class(chars: frozenset[str]) -> str:
    """The regex character class `[...]` of exactly `chars`."""
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


def _run_of(chars: frozenset[str]) -> re.Pattern[str]:
    """A compiled `[chars]*` (the scanner's hot loop, done by the regex engine)."""
    pattern = _RUN_PATTERNS.get(chars)
    if pattern is None:
        pattern = re.compile(char_class(chars) + "*")
        _RUN_PATTERNS[chars] = pattern
    return pattern


_TOKEN_RUN = _run_of(TOKEN_CHARS)
_WS_RUN = re.compile("[ \t]*")


# A quoted string without line breaks, quoted-pairs included (Scanner.quoted_string).
QUOTED_TEXT = r'"(?:[^"\\\r\n]++|\\[^\r\n])*+"'
_QUOTED = re.compile(QUOTED_TEXT)
# The common shape of one parameter, `;name` or `;name=value` with no white space and a
# token, host or quoted-string value (groups: name, value).
_PLAIN_PARAM_TEXT = (f";({char_class(TOKEN_CHARS)}++)"
                     f"(?:=({char_class(PARAM_VALUE_CHARS)}++|{QUOTED_TEXT}))?+")
PLAIN_PARAM_RE = re.compile(_PLAIN_PARAM_TEXT)
# One such parameter read by one regex (parse_params). Possessive, and refused when white
# space or '=' follows, so it never reads a prefix of what the general reader would read
# longer (`;a =b`, `;a= b`, `;a=b=c` go to it).
_SIMPLE_PARAM = re.compile(_PLAIN_PARAM_TEXT + r"(?![ \t=])")


# `*( SEMI generic-param )` without white space: what _SIMPLE_PARAM reads, repeated, for a
# regex that reads a whole header value (`plain_params` splits it).
PLAIN_PARAMS = (f"(?:;{char_class(TOKEN_CHARS)}++(?:=(?:{char_class(PARAM_VALUE_CHARS)}++|"
                f"{QUOTED_TEXT}))?+)*+")


def plain_params(text: str) -> Params:
    """The Params of `text`, a match of PLAIN_PARAMS: what `parse_params` reads from it."""
    params = Params.__new__(Params)
    params._items = [(name, value or None) for name, value in PLAIN_PARAM_RE.findall(text)] \
        if text else []
    return params


def is_token(text: str) -> bool:
    return _TOKEN_RUN.fullmatch(text) is not None and bool(text)


def parse_error(what: str, problem: str, text: str) -> SipParseError:
    """A 400 error naming the header (or element) and what is wrong with it."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    return SipParseError(f"{what}: {problem} in {shown!r}", reason=f"Malformed {what}")


class Scanner:
    """Reads a header value left to right; `what` names it in error messages."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0

    def error(self, problem: str) -> SipParseError:
        return parse_error(self.what, f"{problem} at offset {self.pos}", self.text)

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> bool:
        start = self.pos
        self.pos = _WS_RUN.match(self.text, start).end()  # type: ignore[union-attr]
        return self.pos > start

    def accept(self, char: str) -> bool:
        """Consume `char` (one character, after optional whitespace) if it is next."""
        pos = _WS_RUN.match(self.text, self.pos).end()  # type: ignore[union-attr]
        if self.text.startswith(char, pos):
            self.pos = pos + 1
            return True
        return False

    def expect(self, char: str) -> None:
        if not self.accept(char):
            raise self.error(f"expected {char!r}")

    def take_while(self, chars: frozenset[str]) -> str:
        match = _run_of(chars).match(self.text, self.pos)
        assert match is not None  # `[...]*` always matches
        self.pos = match.end()
        return match.group()

    def token(self, what: str = "token") -> str:
        self.skip_ws()
        value = self.take_while(TOKEN_CHARS)
        if not value:
            raise self.error(f"expected a {what}")
        return value

    def quoted_string(self) -> str:
        """Reads a quoted string (the opening quote is next) and returns its raw text, quotes
        included; use `unquote` for the content."""
        start = self.pos
        match = _QUOTED.match(self.text, start)
        if match is not None:  # the usual case; the loop below says what is wrong otherwise
            self.pos = match.end()
            return match.group()
        if self.peek() != '"':
            raise self.error("expected '\"'")
        self.pos += 1
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                if self.pos + 1 >= len(text) or text[self.pos + 1] in "\r\n":
                    raise self.error("bad escape in quoted string")
                self.pos += 2
                continue
            if char == '"':
                self.pos += 1
                return text[start:self.pos]
            if char in "\r\n":
                break
            self.pos += 1
        raise parse_error(self.what, "unterminated quoted string", self.text)

    def rest(self) -> str:
        value = self.text[self.pos:]
        self.pos = len(self.text)
        return value

    def ensure_end(self) -> None:
        self.skip_ws()
        if not self.at_end:
            raise self.error(f"unexpected {self.peek()!r}")


def unquote(value: str) -> str:
    """The content of a quoted string with quoted-pairs resolved; other text is returned as is."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    if "\\" not in value:
        return value[1:-1]
    out = []
    i, end = 1, len(value) - 1
    while i < end:
        if value[i] == "\\" and i + 1 < end:
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out)


def quote(value: str) -> str:
    """A quoted string holding `value` (backslash and double quote escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# One element of a comma-separated list: text, quoted strings (with quoted-pairs) and <...>
# (without quotes inside), up to a top-level comma. What it cannot read (an unterminated quote
# or bracket, a quote inside <...>) goes to the character loop, which has the last word.
_LIST_ELEMENT = re.compile(r'(?:[^,"<]++|"(?:[^"\\]++|\\.)*+"|<[^>"]*+>)*+', re.S)


def split_list(value: str) -> list[str]:
    """Splits a comma-separated header value into its elements (stripped), ignoring commas
    inside quoted strings and inside <...>. Empty elements are kept so callers can reject them."""
    if "," not in value:
        return [value.strip(WSP)]
    if '"' not in value and "<" not in value:
        return [part.strip(WSP) for part in value.split(",")]
    parts: list[str] = []
    start, size = 0, len(value)
    while True:
        end = _LIST_ELEMENT.match(value, start).end()  # type: ignore[union-attr]
        if end < size and value[end] != ",":
            return _split_list_by_character(value)
        parts.append(value[start:end].strip(WSP))
        if end >= size:
            return parts
        start = end + 1


def _split_list_by_character(value: str) -> list[str]:
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    while i < len(value):
        char = value[i]
        if in_quotes:
            if char == "\\":
                i += 1
            elif char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_angle = True
        elif char == ">":
            in_angle = False
        elif char == "," and not in_angle:
            parts.append(value[start:i].strip(WSP))
            start = i + 1
        i += 1
    parts.append(value[start:].strip(WSP))
    return parts


# --- percent escapes (RFC 3261 §25.1 `escaped`) ---------------------------------------------

def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _from_bytes(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def percent_decode(text: str, what: str) -> str:
    """Resolves %HH escapes exactly once; a '%' not followed by two hex digits is an error."""
    if "%" not in text:
        return text
    raw = _to_bytes(text)
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == 0x25:  # '%'
            pair = raw[i + 1:i + 3]
            if len(pair) != 2 or not all(chr(b) in HEX for b in pair):
                raise parse_error(what, "'%' not followed by two hex digits", text)
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(byte)
            i += 1
    return _from_bytes(bytes(out))


def percent_encode(text: str, safe: frozenset[str]) -> str:
    """Escapes every character outside `safe` as %HH of its UTF-8 octets."""
    if safe.issuperset(text):  # the common case, checked at C speed
        return text
    out = []
    for byte in _to_bytes(text):
        char = chr(byte)
        out.append(char if byte < 0x80 and char in safe else f"%{byte:02X}")
    return "".join(out)


def check_chars(text: str, allowed: frozenset[str], what: str) -> None:
    """Raises unless every character of `text` is in `allowed`."""
    match = _run_of(allowed).match(text)
    assert match is not None
    if match.end() != len(text):
        raise parse_error(what, f"character {text[match.end()]!r} not allowed", text)


# --- parameters ------------------------------------------------------------------------------

class Params:
    """Ordered `;name[=value]` parameters. Names compare case-insensitively and keep their
    spelling; a value is None for a flag parameter (`;lr`) and is kept raw (a quoted value
    keeps its quotes: use `get_unquoted`)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str | None]] = ()) -> None:
        self._items: list[tuple[str, str | None]] = list(items)

    def _index(self, name: str) -> int:
        lower = name.lower()
        for i, (key, _) in enumerate(self._items):
            if key.lower() == lower:
                return i
        return -1

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._index(name) >= 0

    def get(self, name: str, default: str | None = None) -> str | None:
        i = self._index(name)
        return self._items[i][1] if i >= 0 else default

    def get_unquoted(self, name: str) -> str | None:
        value = self.get(name)
        return None if value is None else unquote(value)

    def set(self, name: str, value: str | None = None) -> None:
        """Replaces the value of `name` in place, or appends it."""
        i = self._index(name)
        if i >= 0:
            self._items[i] = (self._items[i][0], value)
        else:
            self._items.append((name, value))

    def remove(self, name: str) -> None:
        lower = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lower]

    def items(self) -> list[tuple[str, str | None]]:
        return list(self._items)

    def names(self) -> list[str]:
        return [key for key, _ in self._items]

    def copy(self) -> Params:
        copy = Params.__new__(Params)
        copy._items = self._items.copy()
        return copy

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __eq__(self, other: object) -> bool:
        """Same names (case-insensitively, any order) with the same values."""
        if not isinstance(other, Params):
            return NotImplemented
        return _folded(self) == _folded(other)

    def __str__(self) -> str:
        return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self._items)

    def __repr__(self) -> str:
        return f"Params({self._items!r})"


def _folded(params: Params) -> dict[str, str | None]:
    return {k.lower(): v for k, v in params._items}


def parse_params(scanner: Scanner) -> Params:
    """Reads `*( SEMI generic-param )` up to the end of the value or a character that is not
    part of a parameter (the caller decides whether that is an error)."""
    params = Params()
    text, items = scanner.text, params._items
    while True:
        simple = _SIMPLE_PARAM.match(text, scanner.pos)
        if simple is not None:
            items.append((simple[1], simple[2]))
            scanner.pos = simple.end()
            continue
        if not scanner.accept(";"):
            break
        scanner.skip_ws()
        name = scanner.take_while(TOKEN_CHARS)
        if not name:
            raise scanner.error("empty parameter")
        value: str | None = None
        if scanner.accept("="):
            scanner.skip_ws()
            if scanner.peek() == '"':
                value = scanner.quoted_string()
            else:
                value = scanner.take_while(PARAM_VALUE_CHARS)
                if not value:
                    raise scanner.error(f"empty value for parameter {name!r}")
        params._items.append((name, value))
    return params


def format_param_value(value: str) -> str:
    """A parameter value as it goes on the wire: quoted unless it is a token or host."""
    if value and all(c in PARAM_VALUE_CHARS for c in value):
        return value
    return quote(value)
