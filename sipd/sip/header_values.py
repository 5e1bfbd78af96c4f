"""Typed views of header field values: name-addr/addr-spec (From, To, Contact, Route...), Via,
CSeq, media types, Event, Subscription-State, token lists and numbers.

Each `parse_*` function takes one value (one element of a list header) and raises
SipParseError (400) naming the header when it does not follow RFC 3261 §25; each class turns
back into its wire form with `str()`.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from .errors import SipParseError
from .syntax import (
    ALPHANUM,
    PARAM_VALUE_CHARS,
    PLAIN_PARAMS,
    QUOTED_TEXT,
    TOKEN_CHARS,
    WSP,
    Params,
    Scanner,
    char_class,
    is_token,
    parse_error,
    parse_params,
    plain_params,
    quote,
    unquote,
)
from .uri import (
    PLAIN_SIP_URI,
    PORT_UP_TO_65535,
    USUAL_SIP_URI,
    Uri,
    format_host,
    is_plain_sip_uri,
    parse_host,
    parse_port,
    parse_uri,
    plain_sip_uri,
)

MAX_CSEQ = 2**32 - 1  # RFC 3261 §8.1.1.5: a 32-bit unsigned integer
MAX_DELTA_SECONDS = 2**32 - 1  # larger values are treated as this one (RFC 3261 §25.1)
_HOST_CHARS = ALPHANUM | frozenset("-._")
_DIGITS = frozenset("0123456789")


# --- name-addr / addr-spec -------------------------------------------------------------------

@dataclass(eq=False)
class Address:
    """`"Display Name" <uri>;params` (From, To, Contact, Route, Record-Route, Refer-To...)."""

    uri: Uri
    display_name: str | None = None
    params: Params = field(default_factory=Params)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @tag.setter
    def tag(self, value: str | None) -> None:
        if value is None:
            self.params.remove("tag")
        else:
            self.params.set("tag", value)

    @property
    def expires(self) -> int | None:
        """The Contact `expires` parameter in seconds (clamped to 2**32-1), None if absent."""
        value = self.params.get("expires")
        return None if value is None else parse_delta_seconds(value, "Contact expires")

    @property
    def q(self) -> float | None:
        value = self.params.get("q")
        if value is None:
            return None
        try:
            q = float(value)
        except ValueError:
            raise parse_error("Contact", "invalid q value", value) from None
        if not 0.0 <= q <= 1.0:
            raise parse_error("Contact", "q value out of range", value)
        return q

    def copy(self) -> Address:
        copy = object.__new__(Address)  # as SipUri.copy
        copy.__dict__.update(self.__dict__)
        copy.uri = self.uri.copy()
        copy.params = self.params.copy()
        return copy

    def __str__(self) -> str:
        # Always the name-addr form: it is never ambiguous about which parameters belong to
        # the URI and which to the header (RFC 3261 §20.10).
        text = f"<{self.uri}>"
        if self.display_name is not None:
            text = f"{quote(self.display_name)} {text}"
        return text + str(self.params)

    def __repr__(self) -> str:
        return f"Address({str(self)!r})"


# tokens and spaces: an unquoted display name
_DISPLAY_RUN = re.compile(char_class(TOKEN_CHARS | set(WSP)) + "*")


# The usual name-addr, `<uri>` or `"Name" <uri>` with nothing odd inside the brackets, read at
# once (parse_address); anything else goes to the general reader and its error messages.
_SIMPLE_NAME_ADDR = re.compile(rf"[ \t]*+(?:({QUOTED_TEXT})[ \t]*+)?<([^<> \t]++)>")


# The usual name-addr with a plain SIP URI and plain parameters, `"Name" <sip:u@h>;tag=x`,
# read by one regex (parse_address) into exactly what the general reader below makes of it.
# Groups: the display name's content (no escapes), the URI's (uri.PLAIN_SIP_URI), the
# header parameters.
_PLAIN_NAME_ADDR = re.compile(
    r'(?:"([^"\\\r\n]*+)"[ \t]*+)?+<' + PLAIN_SIP_URI + ">(" + PLAIN_PARAMS + ")")


def is_plain_address(text: str) -> bool:
    """Whether `parse_address` reads `text` by its fast path: then it is well-formed and
    reading it later cannot fail (what parsing a message checks before the accessors ask)."""
    plain = _PLAIN_NAME_ADDR.fullmatch(text)
    if plain is None:
        return False
    # is_plain_sip_uri(plain, 2), inline: reading every message asks it for its From and To
    port_text, param_text = plain.group(5, 6)
    if port_text is not None and int(port_text) > 65535:
        return False
    return param_text.count(";") < 2 or is_plain_sip_uri(plain, 2)


# _PLAIN_NAME_ADDR whose first parameter named `expires` (any case, as Address.expires finds
# it), if any, is a flag or digits: plain parameters not so named, then that one, then any.
# (The name spelled letter by letter: an IGNORECASE `s` would match `ſ`, no token character.)
_EXPIRES = "[Ee][Xx][Pp][Ii][Rr][Ee][Ss]"
_PARAM_VALUE = f"=(?:{char_class(PARAM_VALUE_CHARS)}++|{QUOTED_TEXT})"
_CONTACT_PARAMS = (
    f"(?:;(?!{_EXPIRES}(?:[=;]|\\Z)){char_class(TOKEN_CHARS)}++(?:{_PARAM_VALUE})?+)*+"
    f"(?:;{_EXPIRES}(?:=[0-9]++)?+(?=;|\\Z){PLAIN_PARAMS})?+")
_PLAIN_CONTACT = re.compile(
    r'(?:"([^"\\\r\n]*+)"[ \t]*+)?+<' + PLAIN_SIP_URI + ">(" + _CONTACT_PARAMS + ")")

# Check-only forms of the plain name-addr and Contact for their most usual values (a SIP URI
# of uri.USUAL_SIP_URI): a value one matches is plain (is_plain_address, is_plain_contact),
# told by the regex alone, no Python step (sipd/sip/parsed_headers.py checks with them first).
# The `...s` forms take a line of one or more such values, as split_list splits it (no such
# value holds a comma outside quotes and <...>, nor white space at either end).
_USUAL_DISPLAY = r'(?:"[^"\\\r\n]*+"[ \t]*+)?+<'
_USUAL_ADDRESS = _USUAL_DISPLAY + USUAL_SIP_URI + ">" + PLAIN_PARAMS
_USUAL_CONTACT = _USUAL_DISPLAY + USUAL_SIP_URI + ">" + _CONTACT_PARAMS


def _list_of(element: str) -> str:
    return f"{element}(?:[ \\t]*+,[ \\t]*+{element})*+"


usual_address = re.compile(_USUAL_ADDRESS).fullmatch
usual_addresses = re.compile(_list_of(_USUAL_ADDRESS)).fullmatch
usual_contacts = re.compile(_list_of(_USUAL_CONTACT)).fullmatch


def is_plain_contact(text: str) -> bool:
    """is_plain_address, and an `expires` parameter (the first, as Address.expires reads it)
    that is absent, a flag or digits: a Contact reading a message need not parse."""
    plain = _PLAIN_CONTACT.fullmatch(text)
    return plain is not None and is_plain_sip_uri(plain, 2)


def parse_address(text: str, what: str = "Address") -> Address:
    """Parses a name-addr (`Name <uri>;p`) or an addr-spec (`uri;p`, where every `;` after
    the URI starts a header parameter, and `,` `?` are not allowed)."""
    plain = _PLAIN_NAME_ADDR.fullmatch(text)
    if plain is not None:
        plain_uri = plain_sip_uri(plain, 2)
        if plain_uri is not None:
            return Address(plain_uri, plain[1], plain_params(plain[7]))
    scanner = Scanner(text, what)
    simple = _SIMPLE_NAME_ADDR.match(text)
    if simple is not None:
        quoted, uri_text = simple.groups()
        uri = parse_uri(uri_text, what)
        scanner.pos = simple.end()
        params = parse_params(scanner)
        scanner.ensure_end()
        return Address(uri, None if quoted is None else unquote(quoted), params)
    scanner.skip_ws()
    display: str | None = None
    if scanner.peek() == '"':
        display = unquote(scanner.quoted_string())
        scanner.skip_ws()
        if scanner.peek() != "<":
            raise scanner.error("expected '<' after the display name")
    elif scanner.peek() != "<":
        # Either display-name tokens followed by '<' (no space needed before it, RFC 4475
        # §3.1.1.6) or an addr-spec: look at the first character that is no token or space.
        probe = _DISPLAY_RUN.match(text, scanner.pos).end()  # type: ignore[union-attr]
        if probe < len(text) and text[probe] == "<":
            display = text[scanner.pos:probe].strip(WSP)
            scanner.pos = probe
        elif probe < len(text) and text[probe] != ":" and "<" in text[probe:]:
            raise parse_error(what, f"display name contains {text[probe]!r} and is not quoted",
                              text)
        else:
            return _parse_addr_spec(scanner)
    scanner.pos += 1  # '<'
    close = text.find(">", scanner.pos)
    if close < 0:
        raise scanner.error("missing '>'")
    uri_text = text[scanner.pos:close]
    if uri_text != uri_text.strip(WSP):
        raise parse_error(what, "whitespace inside <...>", text)
    uri = parse_uri(uri_text, what)
    scanner.pos = close + 1
    params = parse_params(scanner)
    scanner.ensure_end()
    return Address(uri, display, params)


def _parse_addr_spec(scanner: Scanner) -> Address:
    text = scanner.text
    end = text.find(";", scanner.pos)
    end = len(text) if end < 0 else end
    uri_text = text[scanner.pos:end].strip(WSP)
    if any(c in uri_text for c in ",?") or any(c in uri_text for c in WSP):
        raise parse_error(scanner.what, "a URI with ',', '?' or spaces must be enclosed in <>",
                          text)
    uri = parse_uri(uri_text, scanner.what)
    scanner.pos = end
    params = parse_params(scanner)
    scanner.ensure_end()
    return Address(uri, None, params)


# --- Via -----------------------------------------------------------------------------------

@dataclass(eq=False)
class Via:
    """One Via value: `SIP/2.0/UDP host:port;branch=...;received=...;rport=...`."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value filled in by the server, None if absent or still empty."""
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() else None

    @property
    def wants_rport(self) -> bool:
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """(host lowercased, port or None): how transactions compare sent-by values."""
        return self.host.lower(), self.port

    @property
    def host_port(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def copy(self) -> Via:
        copy = object.__new__(Via)  # as SipUri.copy
        copy.__dict__.update(self.__dict__)
        copy.params = self.params.copy()
        return copy

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.host_port}{self.params}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"


# `SIP/2.0/UDP host:port` with single separators, then ';' or the end: the usual sent-protocol
# and sent-by, read at once (parse_via). Possessive, so that it only matches what the general
# reader below reads the same way; anything else (spaces around '/' or ':', an IPv6
# reference, a malformed value) is left to that reader and its error messages.
_TOKEN_CLASS = char_class(TOKEN_CHARS)
_VIA_START = (f"({_TOKEN_CLASS}++)/({_TOKEN_CLASS}++)/({_TOKEN_CLASS}++) ([A-Za-z0-9._-]++)"
              r"(?::([0-9]++))?+")
_SIMPLE_VIA = re.compile(_VIA_START + r"(?=;|\Z)")


# A whole Via value of that usual shape with plain parameters (plain_params): read at once.
_PLAIN_VIA = re.compile(_VIA_START + "(" + PLAIN_PARAMS + ")")


# A check-only form of _PLAIN_VIA and _plain_via_fits: a value it matches is plain
# (is_plain_via), told by the regex alone (see usual_address).
_USUAL_VIA = (f"{_TOKEN_CLASS}++/{_TOKEN_CLASS}++/{_TOKEN_CLASS}++ (?![.-])[A-Za-z0-9._-]++"
              f"(?::{PORT_UP_TO_65535})?+{PLAIN_PARAMS}")
usual_vias = re.compile(_list_of(_USUAL_VIA)).fullmatch


def _plain_via_fits(host: str, port_text: str | None) -> bool:
    return not host.startswith((".", "-")) and (
        port_text is None or (len(port_text) <= 5 and int(port_text) <= 65535))


def is_plain_via(text: str) -> bool:
    """Whether `parse_via` reads `text` by its fast path (see is_plain_address)."""
    plain = _PLAIN_VIA.fullmatch(text)
    return plain is not None and _plain_via_fits(plain[4], plain[5])


def parse_via(text: str) -> Via:
    plain = _PLAIN_VIA.fullmatch(text)
    if plain is not None:
        name, version, transport, host, port_text, param_text = plain.groups()
        if _plain_via_fits(host, port_text):
            port = None if port_text is None else int(port_text)
            return Via(transport.upper(), host, port, plain_params(param_text),
                       f"{name.upper()}/{version}")
    scanner = Scanner(text, "Via")
    simple = _SIMPLE_VIA.match(text)
    if simple is not None:
        name, version, transport, host_text, port_text = simple.groups()
        host = parse_host(host_text, "Via")
        port = None if port_text is None else parse_port(port_text, "Via")
        scanner.pos = simple.end()
        params = parse_params(scanner)
        scanner.ensure_end()
        return Via(transport.upper(), host, port, params, f"{name.upper()}/{version}")
    name = scanner.token("protocol name")
    scanner.expect("/")
    version = scanner.token("protocol version")
    scanner.expect("/")
    transport = scanner.token("transport")
    if not scanner.skip_ws():
        raise scanner.error("expected whitespace before sent-by")
    if scanner.peek() == "[":
        close = text.find("]", scanner.pos)
        if close < 0:
            raise scanner.error("unterminated IPv6 reference")
        host_text = text[scanner.pos:close + 1]
        scanner.pos = close + 1
    else:
        host_text = scanner.take_while(_HOST_CHARS)
    host = parse_host(host_text, "Via")
    port = None
    if scanner.accept(":"):
        scanner.skip_ws()
        port = parse_port(scanner.take_while(_DIGITS), "Via")
    params = parse_params(scanner)
    scanner.ensure_end()
    protocol = f"{name.upper()}/{version}"
    return Via(transport.upper(), host, port, params, protocol)


# --- CSeq ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_SIMPLE_CSEQ = re.compile(f"([0-9]++) ({_TOKEN_CLASS}++)")  # `20 INVITE`, nothing around


def parse_cseq(text: str) -> CSeq:
    simple = _SIMPLE_CSEQ.fullmatch(text)
    if simple is not None:
        digits, method = simple.groups()
        if len(digits) <= 10:
            number = int(digits)
            if number <= MAX_CSEQ:
                return CSeq(number, method)
    scanner = Scanner(text, "CSeq")
    scanner.skip_ws()
    digits = scanner.take_while(_DIGITS)
    if not digits:
        raise scanner.error("expected a sequence number")
    number = int(digits)
    if number > MAX_CSEQ:
        raise SipParseError(f"CSeq: sequence number {digits} exceeds 2**32-1",
                            reason="CSeq Number Too Large")
    if not scanner.skip_ws():
        raise scanner.error("expected whitespace before the method")
    method = scanner.token("method")
    scanner.ensure_end()
    return CSeq(number, method)


# --- numbers, tokens, Call-ID, Date -------------------------------------------------------

def parse_delta_seconds(text: str, what: str) -> int:
    """A non-negative integer; values past 2**32-1 are clamped to it (RFC 3261 §25.1)."""
    value = text.strip(WSP)
    if not value or not value.isascii() or not value.isdigit():
        raise parse_error(what, "expected a non-negative integer", text)
    return min(int(value), MAX_DELTA_SECONDS) if len(value) < 40 else MAX_DELTA_SECONDS


_NOT_IN_CALL_ID = re.compile("[\x00- \x7f]")  # controls, space, DEL


def parse_call_id(text: str) -> str:
    """Call-ID = word ["@" word]. Accepted liberally: any visible characters, no spaces."""
    value = text.strip(WSP)
    if not value or _NOT_IN_CALL_ID.search(value) is not None:
        raise parse_error("Call-ID", "empty or contains whitespace or control characters", text)
    return value


def parse_token_list(values: list[str], what: str) -> list[str]:
    """Allow, Supported, Require, Proxy-Require, Unsupported, Allow-Events: tokens."""
    out = []
    for value in values:
        if not value:
            continue
        if not is_token(value):
            raise parse_error(what, "expected a token", value)
        out.append(value)
    return out


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# rfc1123-date, liberal in spacing, case, a missing weekday or seconds, a one-digit day; not
# email.utils, whose module imports socket into every core that parses a Date.
_DATE_RE = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)\s*,\s*)?(\d{1,2})\s+([a-z]{3})\s+(\d{4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+gmt", re.IGNORECASE | re.ASCII)


def parse_date(text: str) -> datetime.datetime:
    """An rfc1123-date that must be in GMT (RFC 3261 §20.17, RFC 4475 §3.1.2.12)."""
    value = text.strip(WSP)
    if not value.endswith(" GMT"):
        raise parse_error("Date", "time zone must be GMT", text)
    match = _DATE_RE.fullmatch(value)
    if match is None or match[2].lower() not in _MONTHS:
        raise parse_error("Date", "not an RFC 1123 date", text)
    day, year, hour, minute, second = (int(match[i] or 0) for i in (1, 3, 4, 5, 6))
    try:
        return datetime.datetime(year, _MONTHS.index(match[2].lower()) + 1, day, hour, minute,
                                 second, tzinfo=datetime.UTC)
    except ValueError:
        raise parse_error("Date", "not an RFC 1123 date", text) from None


# --- media types ---------------------------------------------------------------------------

@dataclass(eq=False)
class MediaType:
    """`type/subtype;params` of Content-Type and of each Accept value (`*/*` allowed)."""

    type: str
    subtype: str
    params: Params = field(default_factory=Params)

    @property
    def mime(self) -> str:
        """`type/subtype` in lower case."""
        return f"{self.type}/{self.subtype}".lower()

    def matches(self, mime: str) -> bool:
        """Whether this (possibly wildcard) media range covers the concrete type `mime`."""
        kind, _, sub = mime.lower().partition("/")
        return self.type.lower() in ("*", kind) and self.subtype.lower() in ("*", sub)

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{self.params}"


def parse_media_type(text: str, what: str = "Content-Type") -> MediaType:
    scanner = Scanner(text, what)
    kind = scanner.token("media type")
    scanner.expect("/")
    sub = scanner.token("media subtype")
    params = parse_params(scanner)
    scanner.ensure_end()
    return MediaType(kind, sub, params)


# --- Event, Subscription-State (RFC 6665) --------------------------------------------------

@dataclass(eq=False)
class EventHeader:
    package: str
    params: Params = field(default_factory=Params)

    @property
    def id(self) -> str | None:
        return self.params.get("id")

    def __str__(self) -> str:
        return f"{self.package}{self.params}"


def parse_event(text: str) -> EventHeader:
    scanner = Scanner(text, "Event")
    package = scanner.token("event package")
    params = parse_params(scanner)
    scanner.ensure_end()
    return EventHeader(package, params)


@dataclass(eq=False)
class SubscriptionState:
    state: str  # "active", "pending", "terminated" or an extension, lower case
    params: Params = field(default_factory=Params)

    @property
    def reason(self) -> str | None:
        value = self.params.get("reason")
        return value.lower() if value else None

    @property
    def expires(self) -> int | None:
        value = self.params.get("expires")
        return None if value is None else parse_delta_seconds(value, "Subscription-State")

    @property
    def retry_after(self) -> int | None:
        value = self.params.get("retry-after")
        return None if value is None else parse_delta_seconds(value, "Subscription-State")

    def __str__(self) -> str:
        return f"{self.state}{self.params}"


def parse_subscription_state(text: str) -> SubscriptionState:
    scanner = Scanner(text, "Subscription-State")
    state = scanner.token("substate")
    params = parse_params(scanner)
    scanner.ensure_end()
    return SubscriptionState(state.lower(), params)

