"""The core header values of one message, parsed once.

Reading a message must check the syntax of every Via, From, To, Call-ID, CSeq, Max-Forwards,
Expires, Contact, Route and Record-Route (so no layer above meets a malformed one), and the
layers above then read most of those same values through the message's accessors. Parsing is
most of what reading a message costs, so `check_core_headers` keeps what it parsed and the
accessors (sipd/sip/message.py) reuse it instead of parsing the same text again.

Why this cannot go stale: what is kept for a header is tied to the exact text of its lines
(`Headers.get_all(name)`). Each accessor reads the lines anew and compares (unless
`Headers.version` says no field changed since its last look: `ParsedHeaders.current`); a
header changed by any means (`headers.set`, `replace_first_value`, a new `Headers` object...)
no longer matches, and its new text is parsed when it is first asked for. The parsed objects never
leave this module unshared: Address and Via are mutable, so the accessors hand out copies, and
a caller editing its copy (the tag of a To, the branch of a Via) changes nothing here.

Sans-I/O, like the rest of the parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, cast

from .errors import SipParseError
from .header_values import (
    is_plain_address,
    is_plain_contact,
    is_plain_via,
    parse_address,
    parse_call_id,
    parse_cseq,
    parse_delta_seconds,
    parse_via,
    usual_address,
    usual_addresses,
    usual_contacts,
    usual_vias,
)
from .headers import LIST_HEADERS, Headers
from .syntax import TOKEN_CHARS, WSP, char_class, split_list

_UNPARSED = object()

# The messages of one dialog repeat the same values: the From of an INVITE is in each of its
# responses, its ACK and the BYE; its top Via is in every response to it; the To with its tag
# from the first answer on. A value is a function of its text, so the addresses and Vias
# parsed lately are kept by text, and a value seen again is not parsed again: the same object
# is kept for every message that has it. That is safe for the same reason as sharing it
# between a message and its copies (`ParsedValues.copy`): what is parsed here is never
# changed and never leaves this module but as a copy (the accessors of sipd/sip/message.py).
# Only what parsed is kept (a malformed value raises each time, with the name of its
# header). Bounded: a peer sending ever new values empties the table, it does not grow it.
MEMO_LIMIT = 512
_MEMOS: dict[str, dict[str, Any]] = {}  # by header name


def _remembered(name: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` (of an Address or Via value of header `name`), with the values parsed lately
    kept by text (shared: copy before handing one out, as `ParsedValues.get` says)."""
    done: dict[str, Any] = _MEMOS.setdefault(name, {})

    def parse_once(value: str) -> Any:
        found = done.get(value)
        if found is None:
            found = parse(value)
            if found is None:
                return None
            if len(done) >= MEMO_LIMIT:
                done.clear()
            done[value] = found
        return found
    return parse_once


def forget() -> None:
    """Empties the tables of values parsed lately (for benchmarks of parsing itself)."""
    for done in _MEMOS.values():
        done.clear()


def _contact(value: str) -> object:
    # `Contact: *` is no address; the `contacts` accessor leaves it out.
    return None if value == "*" else parse_address(value, "Contact")


# The headers kept parsed, each with how one of its values is parsed: the same functions, with
# the same names in their error messages, as the accessors always used.
PARSERS: dict[str, Callable[[str], Any]] = {
    "Via": _remembered("Via", parse_via),
    "From": _remembered("From", lambda v: parse_address(v, "From")),
    "To": _remembered("To", lambda v: parse_address(v, "To")),
    "Call-ID": parse_call_id,
    "CSeq": parse_cseq,
    "Max-Forwards": lambda v: parse_delta_seconds(v, "Max-Forwards"),
    "Expires": lambda v: parse_delta_seconds(v, "Expires"),
    "Contact": _remembered("Contact", _contact),
    "Route": _remembered("Route", lambda v: parse_address(v, "Route")),
    "Record-Route": _remembered("Record-Route", lambda v: parse_address(v, "Record-Route")),
}
_LISTS = frozenset(name for name in PARSERS if name.lower() in LIST_HEADERS)


# Contact is parsed at once unless a regex tells it well-formed, its expires parameter too.
# (Not by the table of values parsed lately: a Contact parsed before may have had a malformed
# expires.) A name of its own: tests/sip/test_fast_paths.py switches it off.
_plain_contact = is_plain_contact

# The headers whose usual values a regex tells well-formed (the fast paths of parse_via and
# parse_address, which cannot fail on what they take): reading a message checks such a value
# with it and builds the Via or Address only when an accessor first asks (and once, as any
# other: ParsedValues.get). Other values, and those of other headers, are parsed at reading.
# Each with the table of its values parsed lately: a value in it is well-formed too.
PLAIN: dict[str, tuple[dict[str, Any], Callable[[str], bool]]] = {
    "Via": (_MEMOS["Via"], is_plain_via),
    "From": (_MEMOS["From"], is_plain_address),
    "To": (_MEMOS["To"], is_plain_address),
    "Route": (_MEMOS["Route"], is_plain_address),
    "Record-Route": (_MEMOS["Record-Route"], is_plain_address),
}

# Every header kept parsed, with how reading a message tells a usual value of it well-formed
# without parsing it: the table of its values parsed lately (by text, if kept), a check that
# only takes what its parser (PARSERS) reads without fail. Each check is a regex alone, no
# Python step per value: the most usual of the values PLAIN takes for a Via, an address and
# a Contact (its expires included), a line of one or more of them for a list header
# (header_values.usual_vias, usual_address, usual_addresses, usual_contacts; a value they
# miss may still be plain, for check_core_headers' slower checks); a Call-ID of
# visible ASCII (parse_call_id refuses only white space and controls), a CSeq of at most 9
# digits (below 2**32), one space and a token (parse_cseq), a Max-Forwards or Expires of at
# most 9 digits (parse_delta_seconds). A header whose every line is one such value is only
# checked when a message is read, and parsed when an accessor first asks (once); others are
# parsed at reading (check_core_headers). A name of its own: tests/sip/test_fast_paths.py
# empties it.
_NO_MEMO: dict[str, Any] = {}
_DIGITS = re.compile("[0-9]{1,9}+").fullmatch
_QUICK: dict[str, tuple[dict[str, Any], Callable[[str], object]]] = {
    "Via": (_MEMOS["Via"], usual_vias),
    "From": (_MEMOS["From"], usual_address),
    "To": (_MEMOS["To"], usual_address),
    "Route": (_MEMOS["Route"], usual_addresses),
    "Record-Route": (_MEMOS["Record-Route"], usual_addresses),
    "Call-ID": (_NO_MEMO, re.compile("[!-~]++").fullmatch),
    "CSeq": (_NO_MEMO, re.compile(f"[0-9]{{1,9}}+ {char_class(TOKEN_CHARS)}++").fullmatch),
    "Max-Forwards": (_NO_MEMO, _DIGITS),
    "Expires": (_NO_MEMO, _DIGITS),
    "Contact": (_NO_MEMO, usual_contacts),
}


class ParsedValues:
    """The values of one header (what `Headers.values(name)` gives for `lines`), each parsed
    when first asked for. A malformed value is not kept: it raises each time it is asked for,
    as parsing it again would."""

    __slots__ = ("lines", "values", "_parsed", "_parse")

    def __init__(self, name: str, lines: tuple[str, ...]) -> None:
        self.lines = lines
        if name in _LISTS:  # as Headers.values() splits a list header
            self.values = [v for line in lines if line.strip() for v in split_list(line)]
        else:
            self.values = list(lines)
        self._parse = PARSERS[name]
        self._parsed: list[object] = [_UNPARSED] * len(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def get(self, index: int) -> Any:
        """The parsed value at `index` (shared: copy a mutable one before handing it out)."""
        parsed = self._parsed[index]
        if parsed is _UNPARSED:
            parsed = self._parsed[index] = self._parse(self.values[index])
        return parsed

    def all(self) -> list[Any]:
        """Every value parsed, in order; raises at the first malformed one."""
        if _UNPARSED in self._parsed:
            self._parsed = [self._parse(v) for v in self.values]
        return self._parsed

    def copy(self) -> ParsedValues:
        copy = ParsedValues.__new__(ParsedValues)
        copy.lines, copy.values, copy._parse = self.lines, self.values, self._parse
        copy._parsed = list(self._parsed)
        return copy


class ParsedHeaders:
    """What has been parsed of one message's core headers: one `ParsedValues` per header
    name, for the text its lines had then (at most one per name: a header changed many times
    does not make this grow)."""

    __slots__ = ("_by_name", "_headers", "_version", "_current")

    def __init__(self) -> None:
        # By name, its values; or only the lines of a header whose values reading the message
        # found well-formed without parsing them (check_core_headers): their ParsedValues is
        # made when first asked for (`_values`).
        self._by_name: dict[str, ParsedValues | tuple[str, ...]] = {}
        # The names whose values were checked against the lines of `_headers` at version
        # `_version`: while the fields do not change, they need not be looked up again.
        self._headers: Headers | None = None
        self._version = -1
        self._current: set[str] = set()

    def current(self, name: str, headers: Headers) -> ParsedValues:
        """`of(name, headers.get_all(name))`, without looking at the fields again while
        `headers` has not changed since the last look."""
        if headers is not self._headers or headers.version != self._version:
            self._headers, self._version = headers, headers.version
            self._current = set()
        elif name in self._current:
            found = self._by_name[name]
            return found if found.__class__ is ParsedValues else self._values(name)
        found = self.of(name, headers.get_all(name))
        self._current.add(name)
        return found

    def of(self, name: str, lines: Sequence[str]) -> ParsedValues:
        """The parsed values of header `name` (a key of PARSERS, canonical spelling) whose
        lines are now `lines` (`headers.get_all(name)`)."""
        lines = tuple(lines)
        found = self._by_name.get(name)
        if found is None or (found if isinstance(found, tuple) else found.lines) != lines:
            found = self._by_name[name] = ParsedValues(name, lines)
            return found
        return self._values(name)

    def _values(self, name: str) -> ParsedValues:
        found = self._by_name[name]
        if isinstance(found, tuple):  # only checked so far
            if name in _LISTS:
                found = self._by_name[name] = ParsedValues(name, found)
                return found
            # ParsedValues(name, found), inline: one value a line
            values = ParsedValues.__new__(ParsedValues)
            values.lines, values.values, values._parse = found, list(found), PARSERS[name]
            values._parsed = [_UNPARSED] * len(found)
            self._by_name[name] = found = values
        return found

    def copy(self) -> ParsedHeaders:
        """For a copy of the message (its headers the same text, at first)."""
        copy = ParsedHeaders()
        copy._by_name = {name: values if isinstance(values, tuple) else values.copy()
                         for name, values in self._by_name.items()}
        return copy


def check_core_headers(headers: Headers) -> ParsedHeaders:
    """Checks every value of the headers in PARSERS, raising the first SipParseError (the
    checks run in a fixed order: Via, From, To, Call-ID, CSeq, Max-Forwards, Expires,
    Contact, Route, Record-Route, so a message with several faults always names the same
    one), and returns what it parsed (a header whose every line is one value of the usual
    shape, _QUICK, is only checked: it is parsed when first asked for)."""
    # One pass over the fields (Headers stores known names canonically). It raises nothing:
    # the headers it leaves to the general checks below are checked in the fixed order.
    pending: dict[str, tuple[str, ...]] = {}  # the lines of each header read so far
    slow: set[str] = set()
    quick = _QUICK
    for name, value in headers.fields():
        check = quick.get(name)
        if check is None:
            if name in _PARSED_NAMES:
                slow.add(name)
        elif value in check[0] or check[1](value):
            found = pending.get(name)
            pending[name] = (value,) if found is None else found + (value,)
        else:
            slow.add(name)
    parsed = ParsedHeaders()
    by_name = parsed._by_name = cast(dict[str, ParsedValues | tuple[str, ...]], pending)
    if slow:
        _check_slowly(headers, by_name, slow)
    # Every core header of `headers` is in by_name now, as it reads at this version.
    parsed._headers, parsed._version, parsed._current = headers, headers.version, set(by_name)
    return parsed


def _check_slowly(headers: Headers, by_name: dict[str, ParsedValues | tuple[str, ...]],
                  names: set[str]) -> None:
    """Parses (or checks) each value of the headers `names` now, in the fixed order, into
    `by_name`."""
    lines: dict[str, list[str]] = {name: [] for name in _CHECK_ORDER if name in names}
    for name, value in headers.fields():
        found = lines.get(name)
        if found is not None:
            found.append(value)
    for name, found in lines.items():
        # ParsedValues(name, lines), inline, each value checked or parsed now
        values_of = by_name[name] = ParsedValues.__new__(ParsedValues)
        values_of.lines = tuple(found)
        if name not in _LISTS:
            values = found
        elif name == "Via" and "" in found:
            raise SipParseError("empty Via header", reason="Malformed Via")
        elif len(found) == 1 and "," not in found[0]:  # split_list's answer, at once
            values = [found[0].strip(WSP)] if found[0].strip() else []
        else:
            values = [v for line in found if line.strip() for v in split_list(line)]
        values_of.values = values
        parse = values_of._parse = PARSERS[name]
        plain = PLAIN.get(name)
        if plain is not None:
            known, is_plain = plain
            values_of._parsed = [_UNPARSED if v in known or is_plain(v) else parse(v)
                                 for v in values]
        elif name != "Contact":
            values_of._parsed = [parse(v) for v in values]
        else:
            values_of._parsed = [_UNPARSED] * len(values)
            if "*" in values:
                if len(values) != 1:
                    raise SipParseError("Contact: '*' must be the only contact",
                                        reason="Malformed Contact")
            else:
                for i in range(len(values)):
                    if not _plain_contact(values[i]):
                        values_of.get(i).expires  # noqa: B018 - validates expires too


_CHECK_ORDER = ("Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Expires", "Contact",
                "Route", "Record-Route")
assert set(_CHECK_ORDER) == set(PARSERS), "every header kept parsed is checked, in this order"
_PARSED_NAMES = frozenset(PARSERS)
