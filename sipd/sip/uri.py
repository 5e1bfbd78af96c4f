"""URIs found in SIP messages: sip/sips (RFC 3261 §19.1), tel (RFC 3966) and any other
absolute URI, kept opaque (RFC 4475 §3.3.2-3.3.4: an unknown scheme parses, the application
decides what to answer).

Escapes in the user, password, parameters and headers of a SIP URI are decoded exactly once on
parsing and re-encoded on output, so `sip:%61lice@x` and `sip:alice@x` are the same URI and
`value%2541` decodes to `value%41`, never to `valueA` (RFC 4475 §3.1.1.3). IPv6 hosts are kept
without brackets; `host_port` and `str()` add them.
"""

from __future__ import annotations

import ipaddress
import re
import string
from dataclasses import dataclass, field

from .errors import SipParseError
from .syntax import (
    ALPHANUM,
    UNRESERVED,
    Params,
    char_class,
    check_chars,
    parse_error,
    percent_decode,
    percent_encode,
)

_USER_SAFE = UNRESERVED | frozenset("&=+$,;?/")
_PASSWORD_SAFE = UNRESERVED | frozenset("&=+$,")
_PARAM_SAFE = UNRESERVED | frozenset("[]/:&+$")
_HEADER_SAFE = UNRESERVED | frozenset("[]/?:+$")
_HOSTNAME_CHARS = ALPHANUM | frozenset("-._")
_SCHEME_CHARS = ALPHANUM | frozenset("+-.")
_HOSTNAME = re.compile("[A-Za-z0-9._-]+")  # _HOSTNAME_CHARS, as one regex
_SCHEME = re.compile("[A-Za-z0-9+.-]+")  # _SCHEME_CHARS
# What may appear in each part of a SIP URI as received: the safe characters and escapes
# (checked by percent_decode).
_USER_CHARS = _USER_SAFE | {"%"}
_PASSWORD_CHARS = _PASSWORD_SAFE | {"%"}
_PARAM_CHARS = _PARAM_SAFE | {"%"}
_HEADER_CHARS = _HEADER_SAFE | {"%"}
# Characters an opaque absolute URI may not contain (they delimit it inside a header value).
_OPAQUE_FORBIDDEN = frozenset(' \t\r\n<>"') | frozenset(chr(c) for c in range(0x20)) | {"\x7f"}
_TEL_CHARS = frozenset(string.hexdigits + "*#+-.()")
_TEL_VISUAL = str.maketrans("", "", "-.()")
# uri-parameters that must match when present in either URI (RFC 3261 §19.1.4).
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")

DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "sctp": 5060, "tls": 5061, "ws": 80, "wss": 443}


def format_host(host: str) -> str:
    """`host` as it appears in a URI or Via: IPv6 addresses get their brackets."""
    return f"[{host}]" if ":" in host else host


def parse_host(text: str, what: str) -> str:
    """Validates a hostname, IPv4 address or [IPv6] reference; returns it without brackets."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise parse_error(what, "unterminated IPv6 reference", text)
        inner = text[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise parse_error(what, "invalid IPv6 address", text) from None
        return inner
    if not text:
        raise parse_error(what, "empty host", text)
    if _HOSTNAME.fullmatch(text) is None or text.startswith((".", "-")):
        raise parse_error(what, "invalid host", text)
    return text


def parse_port(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise parse_error(what, "invalid port", text)
    return int(text)


def _host_key(host: str) -> str:
    """Hosts compare case-insensitively; IPv6 addresses in their canonical form."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            pass
    return host.lower()


@dataclass(eq=False)
class SipUri:
    """A sip: or sips: URI. `user`, `password`, parameter values and header values are
    decoded text."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = field(default_factory=Params)
    headers: list[tuple[str, str]] = field(default_factory=list)
    scheme: str = "sip"

    # -- convenient views ----------------------------------------------------------------
    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def host_port(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def copy(self) -> SipUri:
        # the fields as they are (the dataclass __init__ would set them one by one), then
        # the two mutable ones copied: accessors hand out a copy of every URI they read
        copy = object.__new__(SipUri)
        copy.__dict__.update(self.__dict__)
        copy.params = self.params.copy()
        copy.headers = list(self.headers)
        return copy

    def without_headers(self) -> SipUri:
        """The URI with its headers and `method` parameter removed: what may be placed in a
        Request-URI (RFC 3261 §19.1.1 table and §12.2.1.1)."""
        uri = self.copy()
        uri.headers = []
        uri.params.remove("method")
        return uri

    # -- text ---------------------------------------------------------------------------
    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(percent_encode(self.user, _USER_SAFE))
            if self.password is not None:
                out += [":", percent_encode(self.password, _PASSWORD_SAFE)]
            out.append("@")
        out.append(self.host_port)
        for name, value in self.params:
            out += [";", percent_encode(name, _PARAM_SAFE)]
            if value is not None:
                out += ["=", percent_encode(value, _PARAM_SAFE)]
        if self.headers:
            out.append("?")
            out.append("&".join(
                f"{percent_encode(k, _HEADER_SAFE)}={percent_encode(v, _HEADER_SAFE)}"
                for k, v in self.headers))
        return "".join(out)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    # -- comparison (RFC 3261 §19.1.4) --------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        if self.scheme != other.scheme:
            return False
        if self.user != other.user or self.password != other.password:
            return False  # userinfo is case-sensitive (after decoding)
        if _host_key(self.host) != _host_key(other.host) or self.port != other.port:
            return False
        mine = {k.lower(): (v.lower() if v is not None else None) for k, v in self.params}
        theirs = {k.lower(): (v.lower() if v is not None else None) for k, v in other.params}
        for name in _SIGNIFICANT_PARAMS:
            if mine.get(name, "\0absent") != theirs.get(name, "\0absent"):
                return False
        for name in mine.keys() & theirs.keys():
            if mine[name] != theirs[name]:
                return False
        # Header components are never ignored; names compare case-insensitively.
        return sorted((k.lower(), v) for k, v in self.headers) == \
            sorted((k.lower(), v) for k, v in other.headers)

    def __hash__(self) -> int:
        return hash((self.scheme, self.user, _host_key(self.host), self.port))


@dataclass(eq=False)
class TelUri:
    """A tel: URI (RFC 3966): a global (+...) or local number and its parameters."""

    number: str
    params: Params = field(default_factory=Params)
    scheme: str = "tel"

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    def copy(self) -> TelUri:
        return TelUri(self.number, self.params.copy())

    def __str__(self) -> str:
        return "tel:" + self.number + str(self.params)

    def __repr__(self) -> str:
        return f"TelUri({str(self)!r})"

    def _key(self) -> tuple[str, frozenset[tuple[str, str | None]]]:
        number = self.number.translate(_TEL_VISUAL).lower()
        params = frozenset((k.lower(), v.lower() if v else v) for k, v in self.params)
        return number, params

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelUri):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key()[0])


@dataclass(eq=False)
class AbsoluteUri:
    """Any other URI (`isbn:`, `http:`, `urn:`...), kept as received after the scheme."""

    scheme: str
    opaque: str

    def copy(self) -> AbsoluteUri:
        return AbsoluteUri(self.scheme, self.opaque)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"

    def __repr__(self) -> str:
        return f"AbsoluteUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.opaque == other.opaque

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.opaque))


Uri = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str, what: str = "URI") -> Uri:
    """Parses an absolute URI; sip/sips/tel are parsed fully, other schemes kept opaque.

    Raises SipParseError (400) on malformed input; `what` names the element in the message.
    """
    plain = _PLAIN_SIP_URI.fullmatch(text)
    if plain is not None:
        uri = plain_sip_uri(plain)
        if uri is not None:
            return uri
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isalpha() or _SCHEME.fullmatch(scheme) is None:
        raise parse_error(what, "missing or invalid URI scheme", text)
    lower = scheme.lower()
    if lower in ("sip", "sips"):
        return _parse_sip(lower, rest, text, what)
    if lower == "tel":
        return _parse_tel(rest, text, what)
    if not rest or any(c in _OPAQUE_FORBIDDEN for c in rest):
        raise parse_error(what, "invalid characters in URI", text)
    return AbsoluteUri(scheme, rest)


def parse_sip_uri(text: str, what: str = "URI") -> SipUri:
    uri = parse_uri(text, what)
    if not isinstance(uri, SipUri):
        raise SipParseError(f"{what}: not a sip or sips URI: {text!r}", status=416)
    return uri


_USER_RUN, _PASSWORD_RUN, _PARAM_RUN, _HEADER_RUN = (
    re.compile(char_class(chars) + "*")
    for chars in (_USER_CHARS, _PASSWORD_CHARS, _PARAM_CHARS, _HEADER_CHARS))


# The usual SIP URI, `sip:user@host:port;name=value`, without escapes, password, IPv6
# reference or headers, read by one regex (`parse_uri`, `plain_sip_uri`): every character of
# it is one `_parse_sip` allows where it stands, so it reads it the same way; anything else
# goes to `_parse_sip` and its error messages. Groups: scheme, user, host, port, parameters.
PLAIN_SIP_URI = (
    f"(sips?|SIPS?):(?:({char_class(_USER_SAFE)}++)@)?+"
    r"((?![.-])[A-Za-z0-9._-]++)(?::([0-9]{1,5}+))?+"
    f"((?:;{char_class(_PARAM_SAFE - {'='})}++(?:={char_class(_PARAM_SAFE)}*+)?+)*+)")
_PLAIN_SIP_URI = re.compile(PLAIN_SIP_URI)
# A port of 1 to 5 digits up to 65535 (leading zeros allowed, as int() reads them).
PORT_UP_TO_65535 = ("(?:[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]"
                    "|[0-9]{1,4})(?![0-9])")
# The most usual of those, for a check alone: no groups, a port up to 65535 and at most one
# parameter (so none named twice): what plain_sip_uri always makes a SipUri of.
USUAL_SIP_URI = (
    f"(?:sips?|SIPS?):(?:{char_class(_USER_SAFE)}++@)?+"
    f"(?![.-])[A-Za-z0-9._-]++(?::{PORT_UP_TO_65535})?+"
    f"(?:;{char_class(_PARAM_SAFE - {'='})}++(?:={char_class(_PARAM_SAFE)}*+)?+)?+")


def plain_sip_uri(match: re.Match[str], first: int = 1) -> SipUri | None:
    """The SipUri of a match of PLAIN_SIP_URI (its groups from `first` on), None when the
    general reader must decide (a port over 65535, a parameter named twice)."""
    scheme, user, host, port_text, param_text = match.group(
        first, first + 1, first + 2, first + 3, first + 4)
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return None
    params = Params()
    if param_text:
        items = params._items
        for part in param_text[1:].split(";"):
            name, equals, value = part.partition("=")
            items.append((name, value if equals else None))
        if len(items) > 1 and len({name.lower() for name, _ in items}) < len(items):
            return None
    return SipUri(host, user, None, port, params, [], scheme.lower())


def is_plain_sip_uri(match: re.Match[str], first: int = 1) -> bool:
    """Whether `plain_sip_uri(match, first)` makes a SipUri (rather than None), without
    making it: for a reader that only checks a value now and builds it when asked."""
    port_text, param_text = match.group(first + 3, first + 4)
    if port_text is not None and int(port_text) > 65535:
        return False
    if param_text.count(";") > 1:
        names = [part.partition("=")[0].lower() for part in param_text[1:].split(";")]
        return len(set(names)) == len(names)
    return True


def _check(text: str, run: re.Pattern[str], allowed: frozenset[str], what: str) -> None:
    """check_chars(text, allowed, what) with the regex of `allowed` at hand."""
    if run.fullmatch(text) is None:
        check_chars(text, allowed, what)  # raises, naming the character


def _parse_sip(scheme: str, rest: str, text: str, what: str) -> SipUri:
    user = password = None
    # Only the userinfo may end in '@' (escaped '@' elsewhere), so the first '@' ends it;
    # the user part may legally contain ';' '?' ',' '/' (RFC 4475 §3.1.1.2, §3.1.1.9).
    if "@" in rest:
        userinfo, _, rest = rest.partition("@")
        if "@" in rest:
            raise parse_error(what, "more than one '@'", text)
        user_text, colon, password_text = userinfo.partition(":")
        if not user_text:
            raise parse_error(what, "empty user part", text)
        _check(user_text, _USER_RUN, _USER_CHARS, what)
        user = percent_decode(user_text, what)
        if colon:
            _check(password_text, _PASSWORD_RUN, _PASSWORD_CHARS, what)
            password = percent_decode(password_text, what)
    rest, question, header_text = rest.partition("?")
    host_part, *param_parts = rest.split(";")
    port_text: str | None
    if host_part.startswith("["):
        close = host_part.find("]")
        host_text, after = host_part[:close + 1], host_part[close + 1:]
        if close < 0 or (after and not after.startswith(":")):
            raise parse_error(what, "invalid IPv6 reference", text)
        port_text = after[1:] if after else None
    else:
        host_text, colon, after = host_part.partition(":")
        port_text = after if colon else None
    host = parse_host(host_text, what)
    port = parse_port(port_text, what) if port_text is not None else None
    params = Params()
    items = params._items
    positions: dict[str, int] = {}  # a name seen again replaces its value, as Params.set does
    for part in param_parts:
        name, equals, value = part.partition("=")
        if not name:
            raise parse_error(what, "empty URI parameter", text)
        _check(name, _PARAM_RUN, _PARAM_CHARS, what)
        if equals:
            _check(value, _PARAM_RUN, _PARAM_CHARS, what)
        name = percent_decode(name, what)
        decoded = percent_decode(value, what) if equals else None
        key = name.lower()
        position = positions.get(key)
        if position is None:
            positions[key] = len(items)
            items.append((name, decoded))
        else:
            items[position] = (items[position][0], decoded)
    headers: list[tuple[str, str]] = []
    if question:
        for part in header_text.split("&"):
            name, equals, value = part.partition("=")
            if not name or not equals:
                raise parse_error(what, "malformed URI header", text)
            _check(name, _HEADER_RUN, _HEADER_CHARS, what)
            _check(value, _HEADER_RUN, _HEADER_CHARS, what)
            headers.append((percent_decode(name, what), percent_decode(value, what)))
    return SipUri(host, user, password, port, params, headers, scheme)


def _parse_tel(rest: str, text: str, what: str) -> TelUri:
    number, *param_parts = rest.split(";")
    if not number or not all(c in _TEL_CHARS for c in number):
        raise parse_error(what, "invalid telephone number", text)
    params = Params()
    for part in param_parts:
        name, equals, value = part.partition("=")
        if not name or any(c in _OPAQUE_FORBIDDEN for c in part):
            raise parse_error(what, "invalid tel URI parameter", text)
        params.set(name, value if equals else None)
    return TelUri(number, params)


def target_uri(text: str) -> SipUri:
    """A SIP URI a user typed as a destination: 'sip:bob@example.com', 'sips:...', or the
    shorthand 'bob@example.com'. Headers are dropped. ValueError says what is wrong."""
    cleaned = text.strip()
    if ":" not in cleaned.split("@", 1)[0]:
        cleaned = f"sip:{cleaned}"
    try:
        uri = parse_uri(cleaned, "to")
    except SipParseError as exc:
        raise ValueError(f"{text!r} is not a SIP URI: {exc.detail or exc}") from None
    if not isinstance(uri, SipUri) or not uri.host:
        raise ValueError(f"{text!r} is not a sip: or sips: URI")
    return uri.without_headers()
