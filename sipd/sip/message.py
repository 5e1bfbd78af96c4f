"""SIP requests and responses: the objects, their typed accessors, and bytes in/out.

`parse_datagram(data)` reads one message from a UDP datagram; `sipd.sip.parser.StreamFramer`
cuts messages out of a TCP/TLS byte stream and uses `parse_head` / `build_message` from here.
`message.to_bytes()` serialises, always with a Content-Length equal to the body's length.

What parsing checks eagerly (so every layer above can trust it): the start line; the header
lines; Content-Length; and the syntax of every Via, From, To, Call-ID, CSeq, Max-Forwards,
Contact, Route, Record-Route and Expires value (`parsed_headers.check_core_headers`, which
keeps what it parsed for the accessors; a value of the usual shape is only checked by a regex
then, and parsed when an accessor first asks: it cannot fail). Presence
and multiplicity of headers are checked later by `validation.validate_request_for_uas` (a
request missing a Call-ID is well-formed, only unacceptable). Other headers are parsed
when their accessor is used.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import SipParseError
from .header_values import (
    Address,
    CSeq,
    EventHeader,
    MediaType,
    SubscriptionState,
    Via,
    parse_date,
    parse_delta_seconds,
    parse_event,
    parse_media_type,
    parse_subscription_state,
    parse_token_list,
)
from .headers import CHECKED_NAMES, Headers, checked_name
from .parsed_headers import ParsedHeaders, ParsedValues, check_core_headers
from .syntax import TOKEN_CHARS, WSP, char_class, is_token
from .uri import PLAIN_SIP_URI, SipUri, Uri, parse_uri, plain_sip_uri

_T = TypeVar("_T")

SIP_VERSION = "SIP/2.0"
_VERSION_RE = re.compile(r"SIP/\d+\.\d+\Z", re.IGNORECASE)
HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_LINE_RE = re.compile(r"\r?\n")


class Message:
    """What requests and responses share: header fields, body and typed accessors.

    Accessors return None / [] when the header is absent; a malformed value raises
    SipParseError. Those of the core headers (Via, From, To, Call-ID, CSeq, Max-Forwards,
    Expires, Contact, Route, Record-Route) parse a value once and keep it, tied to the text of
    the header's lines: a header changed in any way is parsed anew, so nothing goes stale
    (sipd/sip/parsed_headers.py). They return copies, so editing what one returned (a To's
    tag, a Via's branch) changes neither the message nor what the next call returns: to
    change the message, set its header.
    """

    headers: Headers
    body: bytes
    _parsed: ParsedHeaders

    def _core(self, name: str) -> ParsedValues:
        return self._parsed.current(name, self.headers)

    def _first(self, name: str) -> Any:
        values = self._core(name)
        return values.get(0) if values else None

    # -- core headers ---------------------------------------------------------------------
    @property
    def vias(self) -> list[Via]:
        return [via.copy() for via in self._core("Via").all()]

    @property
    def top_via(self) -> Via | None:
        via = self._first("Via")
        return None if via is None else via.copy()

    @property
    def from_(self) -> Address | None:
        address = self._first("From")
        return None if address is None else address.copy()

    @property
    def to(self) -> Address | None:
        address = self._first("To")
        return None if address is None else address.copy()

    @property
    def call_id(self) -> str | None:
        value: str | None = self._first("Call-ID")
        return value

    @property
    def cseq(self) -> CSeq | None:
        value: CSeq | None = self._first("CSeq")
        return value  # frozen: shared safely

    @property
    def max_forwards(self) -> int | None:
        value: int | None = self._first("Max-Forwards")
        return value

    # -- addresses ------------------------------------------------------------------------
    @property
    def contacts(self) -> list[Address]:
        """The Contact addresses (empty for `Contact: *`, see `contact_is_star`)."""
        return [a.copy() for a in self._core("Contact").all()
                if a is not None]  # None: the '*' value

    @property
    def contact_is_star(self) -> bool:
        return self.headers.values("Contact") == ["*"]

    @property
    def routes(self) -> list[Address]:
        return [a.copy() for a in self._core("Route").all()]

    @property
    def record_routes(self) -> list[Address]:
        return [a.copy() for a in self._core("Record-Route").all()]

    # -- content --------------------------------------------------------------------------
    @property
    def content_type(self) -> MediaType | None:
        return self._single("Content-Type", parse_media_type)

    @property
    def accept(self) -> list[MediaType]:
        return [parse_media_type(v, "Accept") for v in self.headers.values("Accept") if v]

    # -- numbers, option tags, events -----------------------------------------------------
    @property
    def expires(self) -> int | None:
        value: int | None = self._first("Expires")
        return value

    @property
    def min_expires(self) -> int | None:
        return self._single("Min-Expires", lambda v: parse_delta_seconds(v, "Min-Expires"))

    @property
    def date(self) -> datetime.datetime | None:
        return self._single("Date", parse_date)

    def token_list(self, name: str) -> list[str]:
        """Allow, Supported, Require, Proxy-Require, Unsupported, Allow-Events as tokens."""
        return parse_token_list(self.headers.values(name), name)

    @property
    def allow(self) -> list[str]:
        return self.token_list("Allow")

    @property
    def supported(self) -> list[str]:
        return self.token_list("Supported")

    @property
    def require(self) -> list[str]:
        return self.token_list("Require")

    @property
    def event(self) -> EventHeader | None:
        return self._single("Event", parse_event)

    @property
    def subscription_state(self) -> SubscriptionState | None:
        return self._single("Subscription-State", parse_subscription_state)

    def _single(self, name: str, parse: Callable[[str], _T]) -> _T | None:
        value = self.headers.get(name)
        return None if value is None else parse(value)

    # -- output ---------------------------------------------------------------------------
    @property
    def start_line(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        lines = [self.start_line, "\r\n"]
        length = str(len(self.body))
        wrote_length = False
        for name, value in self.headers:
            if name == "Content-Length":
                if wrote_length:
                    continue
                value, wrote_length = length, True  # where it was, with the right value
            lines += [name, ": ", value, "\r\n"]
        if not wrote_length:
            lines += ["Content-Length: ", length, "\r\n"]
        lines.append("\r\n")
        return "".join(lines).encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()


class Request(Message):
    def __init__(self, method: str, uri: Uri, headers: Headers | None = None,
                 body: bytes = b"", parsed: ParsedHeaders | None = None) -> None:
        self.method = method
        self.uri = uri
        self.headers = headers if headers is not None else Headers()
        self.body = body
        # what reading the message parsed of `headers` (parsed_headers.check_core_headers)
        self._parsed = parsed if parsed is not None else ParsedHeaders()

    @property
    def start_line(self) -> str:
        if not is_token(self.method):
            raise ValueError(f"method {self.method!r} is not a token")
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def copy(self) -> Request:
        copy = Request(self.method, self.uri.copy(), self.headers.copy(), self.body)
        copy._parsed = self._parsed.copy()
        return copy

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    def __init__(self, status: int, reason: str = "", headers: Headers | None = None,
                 body: bytes = b"", parsed: ParsedHeaders | None = None) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self._parsed = parsed if parsed is not None else ParsedHeaders()

    @property
    def start_line(self) -> str:
        if not 100 <= self.status <= 699 or "\r" in self.reason or "\n" in self.reason:
            raise ValueError(f"cannot send status {self.status} with reason {self.reason!r}")
        return f"{SIP_VERSION} {self.status} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def copy(self) -> Response:
        copy = Response(self.status, self.reason, self.headers.copy(), self.body)
        copy._parsed = self._parsed.copy()
        return copy

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


AnyMessage = Request | Response


# --- parsing -------------------------------------------------------------------------------

@dataclass(slots=True)
class Head:
    """A start line and header section as read, with the first error found (if any)."""

    is_request: bool
    method: str | None
    uri: Uri | None
    status: int | None
    reason: str
    headers: Headers
    error: SipParseError | None = None

    def fail(self, error: SipParseError) -> SipParseError:
        return error.attach(is_request=self.is_request, method=self.method, headers=self.headers)


def parse_head(head: bytes) -> Head:
    """Reads the start line and header lines (without the empty line that ends them)."""
    return _read_head(head)[0]


def _read_head(head: bytes) -> tuple[Head, bool]:
    """parse_head, and whether the section had the usual shape (`_plain_fields` read it):
    then every line of it ends in CRLF, so no empty line ended by a bare LF is in it."""
    text = head.decode("utf-8", "surrogateescape")
    # Lines end in CRLF; a bare LF is taken too (RFC 3261 §7: be liberal), at the cost of
    # the slower split.
    lines = text.split("\r\n")
    between = "".join(lines)  # the text without its CRLFs: a CR or LF in it is a lone one
    if "\n" in between:
        lines = _LINE_RE.split(text)
    result = _parse_start_line(lines[0])
    if "\n" not in between and "\r" not in between:
        # The usual section: no lone CR or LF. Each line a known name (one read before, so a
        # token: `checked_name`; a continuation line starts with white space, no token), a
        # colon and a value.
        plain = _plain_fields(lines)
        if plain is not None:
            result.headers = Headers.read(plain)
            return result, True
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if "\r" in line:
            result.error = result.error or SipParseError(
                "CR not followed by LF in the header section", reason="Malformed Header Line")
            continue
        if line[:1] in (" ", "\t"):
            if not fields:
                result.error = result.error or SipParseError(
                    "continuation line before any header", reason="Malformed Header Line")
                continue
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip(WSP)}".strip(WSP))
            continue
        name, colon, value = line.partition(":")
        canonical = checked_name(name.rstrip(WSP)) if colon else None
        if canonical is None:
            shown = line if len(line) <= 60 else line[:57] + "..."
            result.error = result.error or SipParseError(
                f"header line is not 'name: value': {shown!r}", reason="Malformed Header Line")
            continue
        fields.append((canonical, value.strip(WSP)))
    result.headers = Headers.read(fields)
    return result, False


def _plain_fields(lines: list[str]) -> list[tuple[str, str]] | None:
    """The fields of header lines that are each `name: value` with a name spelled as one
    already checked; None at the first other line (the general loop of parse_head reads it)."""
    known = CHECKED_NAMES
    try:  # a line without ": " does not unpack; a name not in the table (one holding ':'
        # is not a token) is no key. Split at ": ", the value seldom needs a new string.
        return [(known[name], value.strip(WSP))
                for name, value in [line.split(": ", 1) for line in lines[1:]]]
    except (KeyError, ValueError):
        pass
    try:
        return [(known[name], value.strip(WSP))
                for name, value in [line.split(":", 1) for line in lines[1:]]]
    except (KeyError, ValueError):
        return None


# What a Head holds until parse_head gives it the fields it read (never changed).
_NO_HEADERS = Headers()


# The usual Request-Line, `METHOD sip:user@host SIP/2.0` with a plain SIP URI (uri.py), read by
# one regex: what the general reader below reads the same way (a token cannot hold the '/'
# of a Status-Line). Groups: the method, then the URI's (uri.PLAIN_SIP_URI).
_PLAIN_REQUEST_LINE = re.compile(f"({char_class(TOKEN_CHARS)}++) {PLAIN_SIP_URI} SIP/2\\.0")


def _parse_start_line(line: str) -> Head:
    plain = _PLAIN_REQUEST_LINE.fullmatch(line)
    if plain is not None:
        uri = plain_sip_uri(plain, 2)  # None: the general reader decides
        if uri is not None:
            return Head(True, plain[1], uri, None, "", _NO_HEADERS)
    if line[:4].upper() == "SIP/":
        return _parse_status_line(line)
    head = Head(True, None, None, None, "", _NO_HEADERS)
    parts = line.split(" ")
    if parts and is_token(parts[0]):
        head.method = parts[0]
    if len(parts) != 3 or not all(parts):
        head.error = SipParseError(
            f"Request-Line must be 'Method SP Request-URI SP SIP-Version' with single spaces: "
            f"{line[:80]!r}", reason="Malformed Request-Line")
        return head
    method, uri_text, version = parts
    if head.method is None:
        head.error = SipParseError(f"method is not a token: {method[:40]!r}",
                                   reason="Malformed Request-Line")
    elif version != SIP_VERSION and not _VERSION_RE.match(version):
        head.error = SipParseError(f"not a SIP-Version: {version[:20]!r}",
                                   reason="Malformed Request-Line")
    elif version != SIP_VERSION and version.upper() != SIP_VERSION:
        head.error = SipParseError(f"unsupported version {version}", status=505)
    else:
        try:
            head.uri = parse_uri(uri_text, "Request-URI")
            if isinstance(head.uri, SipUri) and head.uri.headers:
                raise SipParseError("Request-URI must not contain headers",
                                    reason="Malformed Request-URI")
        except SipParseError as exc:
            head.error = exc
    return head


def _parse_status_line(line: str) -> Head:
    head = Head(False, None, None, None, "", _NO_HEADERS)
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    head.reason = reason
    if version.upper() != SIP_VERSION:
        head.error = SipParseError(f"unsupported version {version[:20]!r}", status=None)
    elif "\r" in reason:
        head.error = SipParseError("CR in the reason phrase", status=None)
    elif len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] not in "123456":
        head.error = SipParseError(f"invalid status code {code[:20]!r}", status=None)
    else:
        head.status = int(code)
    return head


def content_length(headers: Headers, *, fatal: bool) -> int | None:
    """The Content-Length value, None if absent. Several values, a negative or non-numeric
    one is an error (on a stream, a fatal one: the framing is lost, RFC 4475 §3.1.2.3/§3.3.9)."""
    values = [value for name, value in headers.fields() if name == "Content-Length"]
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError("more than one Content-Length header",
                            reason="Multiple Content-Length", fatal=fatal)
    value = values[0]
    if not value.isascii() or not value.isdigit():
        problem = "negative" if value.startswith("-") else "invalid"
        raise SipParseError(f"{problem} Content-Length {value[:20]!r}",
                            reason=f"{problem.capitalize()} Content-Length", fatal=fatal)
    return int(value)


def build_message(head: Head, body: bytes) -> AnyMessage:
    """Turns a framed head and body into a Request or Response, raising the head's error or
    the first malformed core header (with what was read attached, for `error_response`)."""
    if head.error is not None:
        raise head.fail(head.error)
    try:
        parsed = check_core_headers(head.headers)
    except SipParseError as exc:
        raise head.fail(exc) from None
    # What the checks parsed: the accessors need not parse it again.
    if head.is_request:
        assert head.method is not None and head.uri is not None
        return Request(head.method, head.uri, head.headers, body, parsed)
    assert head.status is not None
    return Response(head.status, head.reason, head.headers, body, parsed)


def find_head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """Where the first empty line (HEAD_END_RE) at or after `start` begins and ends, None
    without one. The usual CRLFCRLF is found by `find`; the regex is needed only when a bare
    LF comes before it."""
    at = data.find(b"\r\n\r\n", start)
    if at >= 0 and data.find(b"\n\n", start, at + 2) < 0 \
            and data.find(b"\n\r\n", start, at + 2) < 0:
        return at, at + 4
    end = HEAD_END_RE.search(data, start)
    return None if end is None else end.span()


def parse_datagram(data: bytes) -> AnyMessage:
    """Parses the message in one datagram (UDP).

    A missing Content-Length means the body is the rest of the datagram; octets past the
    Content-Length are ignored (RFC 4475 §3.1.1.8); a Content-Length larger than what is
    there is an error (400). Raises SipParseError; see `builder.error_response(error)`.
    """
    data = data.lstrip(b"\r\n")  # keep-alives before a message are ignored (RFC 3261 §7.5)
    if not data:
        raise SipParseError("empty datagram", status=None)
    at = data.find(b"\r\n\r\n")
    if at >= 0:
        head, plain = _read_head(data[:at])
        if plain:  # no bare LF before `at`: no empty line before it (as find_head_end says)
            rest = data[at + 4:]
        else:
            start, stop = find_head_end(data) or (at, at + 4)
            if start != at:
                head = parse_head(data[:start])
            rest = data[stop:]
    else:
        end = find_head_end(data)
        if end is None:
            head = parse_head(data.rstrip(b"\r\n"))
            raise head.fail(head.error or SipParseError(
                "header section not ended by an empty line", reason="Missing Empty Line"))
        head = parse_head(data[:end[0]])
        rest = data[end[1]:]
    try:
        length = content_length(head.headers, fatal=False)
    except SipParseError as exc:
        raise head.fail(head.error or exc) from None
    if length is None:
        body = rest
    elif length > len(rest):
        raise head.fail(head.error or SipParseError(
            f"Content-Length {length} is larger than the {len(rest)} octets received",
            reason="Content-Length Too Large"))
    else:
        body = rest[:length]
    return build_message(head, body)

