"""The header section of a message: an ordered list of (name, value) fields.

Names are looked up case-insensitively and through their compact forms (`v` is Via, `i` is
Call-ID...); known names are stored in their canonical spelling (`CSeq`, `WWW-Authenticate`),
unknown ones as received. Values are kept as received (unfolded), one entry per header line;
`values()` splits the comma-separated lists of the headers whose grammar is a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .syntax import is_token, split_list

_CANONICAL_NAMES = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Accept-Resource-Priority",
    "Alert-Info", "Allow", "Allow-Events", "Authentication-Info", "Authorization", "Call-ID",
    "Call-Info", "Contact", "Content-Disposition", "Content-Encoding", "Content-ID",
    "Content-Language", "Content-Length", "Content-Transfer-Encoding", "Content-Type", "CSeq",
    "Date", "Error-Info", "Event", "Expires", "Flow-Timer", "From", "History-Info", "Identity",
    "Identity-Info", "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE",
    "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Record-Route", "Refer-Sub", "Refer-To", "Referred-By", "Reject-Contact", "Replaces",
    "Reply-To", "Request-Disposition", "Require", "Resource-Priority", "Retry-After", "Route",
    "RSeq", "Security-Client", "Security-Server", "Security-Verify", "Server", "Service-Route",
    "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject", "Subscription-State", "Supported",
    "Target-Dialog", "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning",
    "WWW-Authenticate",
]
CANONICAL = {name.lower(): name for name in _CANONICAL_NAMES}

# RFC 3261 §7.3.3 and the extensions that define one.
COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact",
    "k": "Supported", "l": "Content-Length", "m": "Contact", "n": "Identity-Info",
    "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To", "u": "Allow-Events",
    "v": "Via", "x": "Session-Expires", "y": "Identity",
}

# Headers whose grammar is a comma-separated list (`#element`); every other header is one
# value even when it contains commas (Date, WWW-Authenticate, Subject...).
LIST_HEADERS = frozenset(name.lower() for name in [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language",
    "Error-Info", "History-Info", "In-Reply-To", "P-Asserted-Identity", "P-Preferred-Identity",
    "Path", "Privacy", "Proxy-Require", "Reason", "Record-Route", "Reject-Contact", "Require",
    "Route", "Security-Client", "Security-Server", "Security-Verify", "Service-Route",
    "Supported", "Unsupported", "Via", "Warning",
])

# Headers a request or response may carry at most once (RFC 3261 §7.3.1 / table 2).
SINGLE_VALUE_HEADERS = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length",
                        "Content-Type", "Expires", "Min-Expires")


def _checked(name: str, value: str) -> tuple[str, str]:
    """Refuses what would break the message on the wire (or inject header lines into it)."""
    canonical = _CHECKED_NAMES.get(name)
    if canonical is None:
        canonical = checked_name(name)
        if canonical is None:
            raise ValueError(f"header name {name!r} is not a token")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} value contains a line break: {value[:40]!r}")
    return canonical, value


def checked_name(name: str) -> str | None:
    """The canonical spelling of `name` when it is a token (None when it is not), kept for
    the next message that has it."""
    canonical = _CHECKED_NAMES.get(name)
    if canonical is None:
        if not is_token(name):
            return None
        canonical = canonical_name(name)
        if len(_CHECKED_NAMES) >= 1024:  # bounded: a peer's made-up names do not pile up
            _CHECKED_NAMES.clear()
        _CHECKED_NAMES[name] = canonical
    return canonical


# Names found to be tokens, each with its canonical spelling: every message read or built
# checks the same few dozen names (parse_head has already checked a received one).
_CHECKED_NAMES: dict[str, str] = {}
# The same table, for the parser's fast path (sipd/sip/message.py): read it, never write it.
CHECKED_NAMES = _CHECKED_NAMES
# The canonical spellings: a field with one of these names is stored with exactly it.
_KNOWN = frozenset(CANONICAL.values())


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name; compact forms are expanded."""
    if name in _KNOWN:
        return name
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return CANONICAL.get(lower, name)


class Headers:
    """Ordered header fields of one message."""

    __slots__ = ("_fields", "version")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = [_checked(n, v) for n, v in fields]
        # Rises with every change: what was parsed of these fields at one version is still
        # what they say (sipd/sip/parsed_headers.py).
        self.version = 0

    @classmethod
    def read(cls, fields: list[tuple[str, str]]) -> Headers:
        """The fields of a header section as the parser read them: names already canonical
        (`checked_name`), values without line breaks (the lines were split at them)."""
        headers = cls.__new__(cls)
        headers._fields = fields
        headers.version = 0
        return headers

    # -- reading ------------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called `name`."""
        canonical = canonical_name(name)
        if canonical in _KNOWN:  # stored spelled so: no need to lower every name
            for field_name, value in self._fields:
                if field_name == canonical:
                    return value
            return default
        key = canonical.lower()
        for field_name, value in self._fields:
            if field_name.lower() == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """The values of every field called `name`, one per header line."""
        canonical = canonical_name(name)
        if canonical in _KNOWN:  # stored spelled so (see _checked)
            return [value for field_name, value in self._fields if field_name == canonical]
        key = canonical.lower()
        return [value for field_name, value in self._fields if field_name.lower() == key]

    def values(self, name: str) -> list[str]:
        """Every value of `name`: for list headers, the lines split at their top-level commas
        (an empty line gives no value); for other headers, one value per line."""
        lines = self.get_all(name)
        if canonical_name(name).lower() not in LIST_HEADERS:
            return lines
        out: list[str] = []
        for line in lines:
            if line.strip():
                out.extend(split_list(line))
        return out

    def count(self, name: str) -> int:
        return len(self.get_all(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._fields))

    def fields(self) -> list[tuple[str, str]]:
        """The (name, value) fields themselves, not a copy: read them, never change them
        (for readers of every field of a message just parsed, sipd/sip/parsed_headers.py)."""
        return self._fields

    def __len__(self) -> int:
        return len(self._fields)

    def names(self) -> list[str]:
        return [name for name, _ in self._fields]

    # -- changing -----------------------------------------------------------------------
    def add(self, name: str, value: str) -> None:
        """Appends a field (after any existing ones)."""
        self.version += 1
        self._fields.append(_checked(name, value))

    def add_first(self, name: str, value: str) -> None:
        """Inserts a field before the first one of the same name (or at the top): where a new
        Via or Record-Route goes."""
        self.version += 1
        name, value = _checked(name, value)
        key = name.lower()
        for i, (field_name, _) in enumerate(self._fields):
            if field_name.lower() == key:
                self._fields.insert(i, (name, value))
                return
        self._fields.insert(0, (name, value))

    def set(self, name: str, value: str) -> None:
        """Replaces every field called `name` with one (where the first one was)."""
        self.version += 1
        name, value = _checked(name, value)
        key = name.lower()
        for i, (field_name, _) in enumerate(self._fields):
            if field_name.lower() == key:
                self._fields[i] = (name, value)
                self._fields[i + 1:] = [f for f in self._fields[i + 1:] if f[0].lower() != key]
                return
        self._fields.append((name, value))

    def remove(self, name: str) -> None:
        self.version += 1
        key = canonical_name(name).lower()
        self._fields = [f for f in self._fields if f[0].lower() != key]

    def replace_first_value(self, name: str, value: str) -> None:
        """Replaces the first value of a list header (the top Via, say); if its line held
        several values the others move to a line of their own just after it."""
        self.version += 1
        key = _checked(name, value)[0].lower()
        for i, (field_name, line) in enumerate(self._fields):
            if field_name.lower() == key:
                others = split_list(line)[1:] if key in LIST_HEADERS else []
                new = [(field_name, value)]
                if others:
                    new.append((field_name, ", ".join(others)))
                self._fields[i:i + 1] = new
                return
        raise KeyError(name)

    def remove_first_value(self, name: str) -> None:
        """Removes the first value of a list header (the topmost Route, say)."""
        self.version += 1
        key = canonical_name(name).lower()
        for i, (field_name, line) in enumerate(self._fields):
            if field_name.lower() == key:
                others = split_list(line)[1:] if key in LIST_HEADERS else []
                if others:
                    self._fields[i] = (field_name, ", ".join(others))
                else:
                    del self._fields[i]
                return
        raise KeyError(name)

    def copy(self) -> Headers:
        copy = Headers()
        copy._fields = list(self._fields)
        return copy

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._fields == other._fields

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"

    def to_text(self) -> str:
        return "".join(f"{name}: {value}\r\n" for name, value in self._fields)
