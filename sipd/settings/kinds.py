"""Setting types: how a value of each kind is checked, coerced and described.

Validation is strict where a guess could be wrong: an int must be an int (the string "5060"
is refused, not parsed), a bool must be true/false. A SettingError names the key and says what
is allowed, so the same message serves an RPC client and an admin editing the file.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sipd.settings import addresses
from sipd.settings.errors import SettingError

# Checks an already type-checked string; raises ValueError describing the problem.
StringCheck = Callable[[str], None]

# Caps on the size of a value. A value is kept in memory, written to the file, and sent to
# every subscriber in `settings.changed` and to the replay buffer: without a cap, one client
# could make the daemon hold and send megabytes per change. Generous for any real value.
TEXT_MAX = 1024              # characters of a free-text value (a name, a URL, a password)
PATH_MAX = 4096              # characters of a file path (Linux's PATH_MAX)
LIST_MAX_ITEMS = 1000        # items of a list
LIST_MAX_CHARACTERS = 16384  # characters of all the items of a list together

# Shown values are cut to this many characters: an error about a long value must stay short.
_SHOWN_MAX = 80

_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_in(text: str) -> str | None:
    """The first lone surrogate in `text` (JSON's "\\ud800" escapes decode to one), or None.
    It is not a character: it cannot be written as UTF-8, so not to a file nor to a client."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    return found.group() if found else None


def show(value: Any) -> str:
    """A value as the user would have written it, with its kind when that is the problem;
    long values are cut short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {_cut(json.dumps(value[:_SHOWN_MAX + 1]), len(value))}"
    if isinstance(value, (list, tuple)):
        return f"the list {_cut(_json(list(value[:8])), len(value), 'items')}"
    if isinstance(value, dict):
        return "a table"
    if value is None:
        return "null"
    return _json(value)


def _cut(text: str, length: int, unit: str = "characters") -> str:
    if len(text) <= _SHOWN_MAX and (unit == "characters" or length <= 8):
        return text
    return f"{text[:_SHOWN_MAX]}... ({length} {unit})"


def _json(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    help: str
    secret: bool = field(default=False, kw_only=True)

    type_name: ClassVar[str] = "any"

    def __post_init__(self) -> None:
        # A default the schema itself refuses is a programming error: fail at import.
        self.validate(self.default)

    @property
    def table(self) -> str:
        return self.key.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]

    def validate(self, value: Any) -> Any:
        """The value to store (possibly normalised), or SettingError."""
        raise NotImplementedError

    def allowed(self) -> str:
        """What is allowed, completing "<key> must be ..."."""
        raise NotImplementedError

    def public(self, value: Any) -> Any:
        """The value as it may appear in events, logs and settings.get: secrets never do."""
        return None if self.secret else value

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for settings.schema."""
        return {"key": self.key, "type": self.type_name, "default": self.default,
                "help": self.help, "allowed": self.allowed(), "secret": self.secret}

    def _check_text(self, value: str, limit: int) -> None:
        """Refuse a string that is too long or not valid Unicode (before any other check
        spends time on it)."""
        if len(value) > limit:
            raise self._refuse(value, f"it is {len(value)} characters long; at most {limit}")
        surrogate = surrogate_in(value)
        if surrogate is not None:
            raise self._refuse(value, f"it contains a lone surrogate (\\u{ord(surrogate):04x}), "
                                      "which is not a character")

    def _refuse(self, value: Any, problem: str | None = None) -> SettingError:
        shown = "a hidden value" if self.secret else show(value)
        message = f"{self.key} must be {self.allowed()}; got {shown}"
        if problem:
            message += f": {problem}"
        return SettingError(self.key, message)


@dataclass(frozen=True)
class IntSetting(Setting):
    minimum: int = field(kw_only=True)
    maximum: int = field(kw_only=True)

    type_name: ClassVar[str] = "int"

    def validate(self, value: Any) -> int:
        # bool is a subclass of int in Python; `true` for a port is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            hint = "write it as a number, without quotes" if _is_integer_text(value) else None
            raise self._refuse(value, hint)
        if not self.minimum <= value <= self.maximum:
            raise self._refuse(value, "out of range")
        return value

    def allowed(self) -> str:
        return f"an integer {self.minimum}..{self.maximum}"

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"minimum": self.minimum, "maximum": self.maximum}


def _is_integer_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lstrip("+-").isdigit()


@dataclass(frozen=True)
class PortSetting(IntSetting):
    minimum: int = field(default=0, kw_only=True)
    maximum: int = field(default=65535, kw_only=True)

    type_name: ClassVar[str] = "port"

    def allowed(self) -> str:
        return "a port number 0..65535 (0 = a random free port above 1024, picked at start)"


@dataclass(frozen=True)
class BoolSetting(Setting):
    type_name: ClassVar[str] = "bool"

    def validate(self, value: Any) -> bool:
        if not isinstance(value, bool):
            hint = None
            if isinstance(value, str) and value.lower() in ("true", "false"):
                hint = f"write {value.lower()} without quotes"
            raise self._refuse(value, hint)
        return value

    def allowed(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class StrSetting(Setting):
    """Free text, optionally checked; `form` describes what the check accepts."""
    form: str = field(default="a string", kw_only=True)
    check: StringCheck | None = field(default=None, kw_only=True)
    allow_empty: bool = field(default=True, kw_only=True)
    max_length: int = field(default=TEXT_MAX, kw_only=True)

    type_name: ClassVar[str] = "str"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._refuse(value)
        self._check_text(value, self.max_length)
        if value == "":
            if not self.allow_empty:
                raise self._refuse(value, "it may not be empty")
            return value
        if "\x00" in value:
            raise self._refuse(value, "it contains a NUL character")
        if self.check is not None:
            try:
                self.check(value)
            except ValueError as error:
                raise self._refuse(value, str(error)) from None
        return value

    def allowed(self) -> str:
        return self.form

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"max_length": self.max_length}


def _check_absolute_path(text: str) -> None:
    if not (text.startswith("/") or text.startswith("~")):
        raise ValueError("a relative path depends on where the daemon was started; "
                         "give an absolute path")


@dataclass(frozen=True)
class PathSetting(StrSetting):
    """A file path; "" means the documented default. Relative paths are refused because the
    daemon's working directory is arbitrary (a service starts in /)."""
    form: str = field(default='an absolute file path (~ allowed), or "" for the default',
                      kw_only=True)
    check: StringCheck | None = field(default=_check_absolute_path, kw_only=True)
    max_length: int = field(default=PATH_MAX, kw_only=True)

    type_name: ClassVar[str] = "path"


@dataclass(frozen=True)
class EnumSetting(Setting):
    choices: tuple[str, ...] = field(kw_only=True)

    type_name: ClassVar[str] = "enum"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            if isinstance(value, str):
                self._check_text(value, TEXT_MAX)
            raise self._refuse(value, _suggest(value, self.choices))
        return value

    def allowed(self) -> str:
        return "one of " + ", ".join(json.dumps(c) for c in self.choices)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"choices": list(self.choices)}


def _suggest(value: Any, choices: tuple[str, ...]) -> str | None:
    if not isinstance(value, str):
        return None
    for choice in choices:
        if choice.lower() == value.lower():
            return f"did you mean {json.dumps(choice)}?"
    close = difflib.get_close_matches(value, choices, n=1)
    return f"did you mean {json.dumps(close[0])}?" if close else None


@dataclass(frozen=True)
class ListSetting(Setting):
    """A list of strings, each one of `choices` or passing `item_check`; no duplicates."""
    item_form: str = field(default="strings", kw_only=True)
    choices: tuple[str, ...] | None = field(default=None, kw_only=True)
    item_check: StringCheck | None = field(default=None, kw_only=True)
    non_empty: bool = field(default=False, kw_only=True)

    type_name: ClassVar[str] = "list"

    def validate(self, value: Any) -> list[str]:
        if isinstance(value, str):
            raise self._refuse(value, f"give a list, e.g. [{json.dumps(value)}]")
        if not isinstance(value, (list, tuple)):
            raise self._refuse(value)
        if self.non_empty and not value:
            raise self._refuse(value, "the list may not be empty")
        if len(value) > LIST_MAX_ITEMS:
            raise self._refuse(value, f"it has {len(value)} items; at most {LIST_MAX_ITEMS}")
        characters = sum(len(item) for item in value if isinstance(item, str))
        if characters > LIST_MAX_CHARACTERS:
            raise self._refuse(value, f"its items are {characters} characters long together; "
                                      f"at most {LIST_MAX_CHARACTERS}")
        seen: set[str] = set()
        for item in value:
            problem = self._item_problem(item)
            if problem:
                raise self._refuse(value, problem)
            if item in seen:
                raise self._refuse(value, f"{json.dumps(item)} is listed twice")
            seen.add(item)
        return list(value)

    def _item_problem(self, item: Any) -> str | None:
        if not isinstance(item, str) or not item:
            return f"{show(item)} is not a non-empty string"
        if len(item) > TEXT_MAX:
            return f"an item is {len(item)} characters long; at most {TEXT_MAX}"
        surrogate = surrogate_in(item)
        if surrogate is not None:
            return f"an item contains a lone surrogate (\\u{ord(surrogate):04x})"
        if self.choices is not None and item not in self.choices:
            suggestion = _suggest(item, self.choices)
            return f"{json.dumps(item)} is not allowed" + (f" ({suggestion})" if suggestion else "")
        if self.item_check is not None:
            try:
                self.item_check(item)
            except ValueError as error:
                return str(error)
        return None

    def allowed(self) -> str:
        if self.choices is not None:
            items = "values from " + ", ".join(json.dumps(c) for c in self.choices)
        else:
            items = self.item_form
        return ("a non-empty list of " if self.non_empty else "a list of ") + items

    def describe(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"non_empty": self.non_empty}
        if self.choices is not None:
            extra["choices"] = list(self.choices)
        return super().describe() | extra


@dataclass(frozen=True)
class PortRangeSetting(Setting):
    """"LOW-HIGH", both 1024..65535. RTP takes an even port and RTCP the odd one above it,
    so an even LOW is preferred (help text says so) but not required."""
    type_name: ClassVar[str] = "port_range"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._refuse(value)
        self._check_text(value, TEXT_MAX)
        try:
            return str(addresses.parse_port_range(value))
        except ValueError as error:
            raise self._refuse(value, str(error)) from None

    def allowed(self) -> str:
        return 'a port range "LOW-HIGH" with 1024 <= LOW <= HIGH <= 65535'


@dataclass(frozen=True)
class ListenAddressSetting(Setting):
    # "" turns off what listens there (web.listen); rpc.listen must always listen.
    allow_empty: bool = field(default=False, kw_only=True)

    type_name: ClassVar[str] = "listen_address"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._refuse(value)
        self._check_text(value, TEXT_MAX)
        if value == "" and self.allow_empty:
            return value
        try:
            addresses.parse_listen_address(value)
        except ValueError as error:
            raise self._refuse(value, str(error)) from None
        return value

    def allowed(self) -> str:
        if self.allow_empty:
            return '"HOST:PORT", "[IPv6]:PORT" (port 0 = any free port) or "" (off)'
        return ('an address to listen on, "HOST:PORT" or "[IPv6]:PORT" '
                "(port 0 = any free port)")


# Reusable string checks for the schema.

def check_ip_address(text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def check_host_port(text: str) -> None:
    addresses.parse_host_port(text)


def check_origin(text: str) -> None:
    addresses.parse_origin(text)


_CODEC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$")


def check_codec_name(text: str) -> None:
    if not _CODEC_NAME.match(text):
        raise ValueError(f"{text!r} is not a codec name such as opus, G722 or speex/16000")
