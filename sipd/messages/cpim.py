"""Message/CPIM (RFC 3862): the envelope IM clients wrap a message in, build and parse.

A CPIM message is a block of message headers, a blank line, a MIME part (its headers, a blank
line, its body):

    From: "Alice" <sip:alice@example.com>
    To: <sip:bob@example.com>
    DateTime: 2024-01-01T10:00:00.000+00:00
    NS: imdn <urn:ietf:params:imdn>
    imdn.Message-ID: 2d0b0b52a1

    Content-Type: text/plain

    Hello

Header names may carry a prefix declared by an `NS:` header (`imdn.Message-ID` above); the
prefix is the sender's choice, the namespace URI is what a header means, so lookups go by URI
(`CPIMMessage.header`). Reading is tolerant of what clients send — any header order, an `NS`
declared after its use, LF line ends, header names in any case, a missing space after the
colon, a bare URI in From/To — and strict about what would make the message mean something
else: two From or DateTime headers, an unreadable address or timestamp, undecodable text. Any
such problem is a `CPIMError` with a reason; no other exception leaves `parse_cpim`.

Header values are taken literally: the `\\`-escapes of RFC 3862 are not interpreted
(no client we interoperate with writes them), and values with line breaks or other control
characters are refused when building.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..sip.errors import SipParseError
from ..sip.header_values import MediaType, parse_media_type
from .charsets import CharsetError, UnknownCharset, decode_text, encode_text
from .timestamps import format_timestamp, parse_timestamp

CPIM_CONTENT_TYPE = "message/cpim"
DEFAULT_NAMESPACE = "urn:ietf:params:cpim-headers:"
IMDN_NAMESPACE = "urn:ietf:params:imdn"

_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-^_`|~]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_PARAM = re.compile(r';\s*([^=;\s]+)(?:=("(?:[^"\\]|\\.)*"|[^;\s]*))?')
_CORE = {"from", "to", "cc", "datetime", "subject", "ns", "require", "required"}


class CPIMError(ValueError):
    """A CPIM message cannot be read (or built); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CPIMCharsetError(CPIMError):
    """The inner text part names a charset we do not know (`charset`)."""

    def __init__(self, charset: str) -> None:
        super().__init__(f"unknown charset {charset!r} in the CPIM content")
        self.charset = charset


# --- identities --------------------------------------------------------------------------

@dataclass(frozen=True)
class CPIMIdentity:
    """A From/To/cc value: a URI and an optional display name."""

    uri: str
    display_name: str | None = None

    @classmethod
    def parse(cls, text: str) -> CPIMIdentity:
        """`"Name" <uri>`, `Name <uri>`, `<uri>` or (tolerated) a bare `uri`; parameters after
        the `>` (`<uri>;tag=x`, as SIP From headers carry and some clients copy) are
        tolerated and dropped."""
        value = text.strip()
        display: str | None = None
        if value.startswith('"'):
            display, value = _take_quoted(value)
            value = value.lstrip()
            if not value.startswith("<"):
                raise CPIMError(f"no <URI> after the display name in {text!r}")
        elif "<" in value:
            display, _, rest = value.partition("<")
            display = display.strip() or None
            value = "<" + rest
        if value.startswith("<"):
            close = value.find(">")
            if close < 0:
                raise CPIMError(f"unterminated <URI> in {text!r}")
            after = value[close + 1:].strip()
            if after and not after.startswith(";"):
                raise CPIMError(f"{after!r} after the <URI> in {text!r}")
            value = value[1:close].strip()  # header parameters after it (;tag=x) are dropped
        if not _URI.fullmatch(value):
            raise CPIMError(f"not a URI: {value!r} in {text!r}")
        return cls(value, display)

    def __str__(self) -> str:
        _check_value(self.uri, "URI")
        if not _URI.fullmatch(self.uri):
            raise CPIMError(f"not a URI: {self.uri!r}")
        if self.display_name:
            _check_value(self.display_name, "display name")
            quoted = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            return f'"{quoted}" <{self.uri}>'
        return f"<{self.uri}>"


def _take_quoted(text: str) -> tuple[str, str]:
    """The content of the quoted string `text` starts with, and what follows it."""
    out = []
    i = 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), text[i + 1:]
        out.append(char)
        i += 1
    raise CPIMError(f"unterminated quoted string in {text!r}")


def _identity(value: CPIMIdentity | str) -> CPIMIdentity:
    return value if isinstance(value, CPIMIdentity) else CPIMIdentity.parse(value)


# --- the message -------------------------------------------------------------------------

@dataclass
class CPIMMessage:
    """A parsed (or to-be-built) CPIM message.

    `headers` holds every message header that is not one of CPIM's own (From, To, cc,
    DateTime, Subject, NS, Require), keyed by its name as sent (`imdn.Message-ID`); a header
    sent more than once has its values joined with ", ". `namespaces` maps the declared
    prefixes to their URIs. `content_type` is the full Content-Type of the MIME part and
    `content_headers` its other MIME headers (Content-Length excluded). `subject` is the
    Subject without a language tag (or the first one); tagged ones are in
    `subject_translations` by language.
    """

    sender: CPIMIdentity | None = None
    recipients: list[CPIMIdentity] = field(default_factory=list)
    cc: list[CPIMIdentity] = field(default_factory=list)
    timestamp: datetime.datetime | None = None
    subject: str | None = None
    subject_translations: dict[str, str] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain;charset=utf-8"
    content_headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @classmethod
    def compose(
        cls,
        content: str | bytes,
        content_type: str = "text/plain",
        *,
        sender: CPIMIdentity | str,
        recipients: CPIMIdentity | str | Sequence[CPIMIdentity | str],
        timestamp: datetime.datetime | None,
        subject: str | None = None,
        cc: Sequence[CPIMIdentity | str] = (),
        namespaces: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        required: Iterable[str] = (),
        content_headers: Mapping[str, str] | None = None,
    ) -> CPIMMessage:
        """A message for sending. Text (`str`) content is encoded in the charset of
        `content_type`; a text/* type without one gets `charset=utf-8`, unless its content is
        pure US-ASCII: that is text/*'s default charset (RFC 2046 §4.1.2, RFC 3862 §3.2), and
        some peers (SipLib) compare the wrapped type with the bare `text/plain`."""
        media = _media_type(content_type)
        if media.type.lower() == "text" and "charset" not in media.params and not (
                content.isascii()):
            media.params.set("charset", "utf-8")
        if isinstance(content, str):
            try:
                body = encode_text(content, media.params.get_unquoted("charset"))
            except UnknownCharset as exc:
                raise CPIMCharsetError(exc.charset) from None
            except CharsetError as exc:
                raise CPIMError(str(exc)) from None
        else:
            body = bytes(content)
        if isinstance(recipients, (CPIMIdentity, str)):
            recipients = [recipients]
        return cls(
            sender=_identity(sender),
            recipients=[_identity(r) for r in recipients],
            cc=[_identity(r) for r in cc],
            timestamp=timestamp,
            subject=None if subject is None else subject.strip(),
            namespaces=dict(namespaces or {}),
            required=list(required),
            headers=dict(headers or {}),
            content_type=str(media),
            content_headers=dict(content_headers or {}),
            content=body,
        )

    # -- reading --

    @property
    def media_type(self) -> str:
        """`type/subtype` of the content, lower case (`text/plain`)."""
        return _media_type(self.content_type).mime

    @property
    def charset(self) -> str | None:
        return _media_type(self.content_type).params.get_unquoted("charset")

    @property
    def text(self) -> str | None:
        """The content decoded (UTF-8 unless its charset says otherwise) when it is text/*,
        else None. `parse_cpim` has already checked that this works."""
        media = _media_type(self.content_type)
        if media.type.lower() != "text":
            return None
        try:
            return decode_text(self.content, media.params.get_unquoted("charset"))
        except UnknownCharset as exc:
            raise CPIMCharsetError(exc.charset) from None
        except CharsetError as exc:
            raise CPIMError(str(exc)) from None

    def namespace_of(self, prefix: str | None) -> str | None:
        """The namespace URI a header prefix stands for (None prefix: the default one);
        None when the prefix was never declared."""
        if prefix is None:
            return self.namespaces.get("", DEFAULT_NAMESPACE)
        if prefix in self.namespaces:
            return self.namespaces[prefix]
        lower = prefix.lower()
        for declared, uri in self.namespaces.items():
            if declared.lower() == lower:
                return uri
        return None

    def header(self, name: str, namespace: str = DEFAULT_NAMESPACE) -> str | None:
        """The value of extension header `name` in `namespace`, whatever prefix the sender
        gave it: `msg.header("Message-ID", IMDN_NAMESPACE)`."""
        lower = name.lower()
        for key, value in self.headers.items():
            prefix, local = _split_name(key)
            if local.lower() == lower and self.namespace_of(prefix) == namespace:
                return value
        return None

    def as_dict(self) -> dict:
        """JSON-ready summary for events (the `cpim` member of `message.received`)."""
        return {
            "from": None if self.sender is None else str(self.sender),
            "to": [str(r) for r in self.recipients],
            "cc": [str(r) for r in self.cc],
            "datetime": None if self.timestamp is None else format_timestamp(self.timestamp),
            "subject": self.subject,
            "namespaces": dict(self.namespaces),
            "headers": dict(self.headers),
        }

    # -- writing --

    def encode(self) -> bytes:
        """The wire form (CRLF line ends); CPIMError when a field cannot be written."""
        lines: list[str] = []
        if self.sender is not None:
            lines.append(f"From: {self.sender}")
        lines += [f"To: {recipient}" for recipient in self.recipients]
        lines += [f"cc: {recipient}" for recipient in self.cc]
        if self.timestamp is not None:
            try:
                lines.append(f"DateTime: {format_timestamp(self.timestamp)}")
            except ValueError as exc:
                raise CPIMError(f"DateTime: {exc}") from None
        if self.subject is not None:
            lines.append(f"Subject: {_checked(self.subject, 'Subject')}")
        for lang, text in self.subject_translations.items():
            if not _NAME.fullmatch(lang):
                raise CPIMError(f"invalid Subject language tag {lang!r}")
            lines.append(f"Subject:;lang={lang} {_checked(text, 'Subject')}")
        for ns_prefix, uri in self.namespaces.items():
            if ns_prefix and not _NAME.fullmatch(ns_prefix):
                raise CPIMError(f"invalid namespace prefix {ns_prefix!r}")
            if not _URI.fullmatch(uri):
                raise CPIMError(f"invalid namespace URI {uri!r}")
            lines.append(f"NS: {ns_prefix} <{uri}>" if ns_prefix else f"NS: <{uri}>")
        if self.required:
            for name in self.required:
                _check_name(name)
            lines.append("Require: " + ",".join(self.required))
        for name, value in self.headers.items():
            prefix, local = _check_name(name)
            if prefix is None and local.lower() in _CORE:
                raise CPIMError(f"{name!r} is a CPIM header: use its own field")
            if prefix is not None and self.namespace_of(prefix) is None:
                raise CPIMError(f"header {name!r} uses undeclared namespace prefix {prefix!r}")
            lines.append(f"{name}: {_checked(value, name)}")

        part = [f"Content-Type: {_checked(self.content_type, 'Content-Type')}"]
        for name, value in self.content_headers.items():
            _check_name(name)
            if name.lower() in ("content-type", "content-length"):
                raise CPIMError(f"{name} of the MIME part is derived, not given")
            part.append(f"{name}: {_checked(value, name)}")
        head = "".join(line + "\r\n" for line in lines) + "\r\n"
        head += "".join(line + "\r\n" for line in part) + "\r\n"
        return head.encode("utf-8") + self.content


def build_cpim(content: str | bytes, content_type: str = "text/plain", **fields) -> bytes:
    """`CPIMMessage.compose(...)` on the wire, in one call."""
    return CPIMMessage.compose(content, content_type, **fields).encode()


# --- parsing -----------------------------------------------------------------------------

def parse_cpim(data: bytes) -> CPIMMessage:
    """Reads a message/cpim body. Raises CPIMError, and only CPIMError, when it is malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CPIMError("CPIM body must be bytes")
    data = bytes(data)
    message_lines, pos = _header_block(data, 0, "message headers")
    if pos is None:
        raise CPIMError("no blank line after the CPIM message headers")
    part_lines, body_pos = _header_block(data, pos, "MIME headers")
    if part_lines and not _looks_like_header(part_lines[0]):
        raise CPIMError("the MIME part has no headers (its Content-Type is missing)")
    body = b"" if body_pos is None else data[body_pos:]

    message = CPIMMessage(content_type="text/plain")  # RFC 2045 §5.2 default
    _read_message_headers(message, [_header(line) for line in message_lines])

    content_headers: dict[str, str] = {}
    length: str | None = None
    for name, _params, value in (_header(line) for line in part_lines):
        lower = name.lower()
        if lower == "content-type":
            _media_type(value)  # validates
            message.content_type = value
        elif lower == "content-length":
            length = value
        else:
            _merge(content_headers, name, value)
    message.content_headers = content_headers

    if length is not None:
        if not (length.isascii() and length.isdigit()) or len(length) > 15:
            raise CPIMError(f"invalid Content-Length {length!r} in the MIME part")
        # Larger: senders count what the MSRP or SIP framing took (a final CRLF) or
        # characters for bytes; the body there is taken, and nothing past it is ever read.
        # Smaller: what follows is not the content, unless the sender counted characters.
        body = _declared_content(body, int(length))
    message.content = body
    message.text  # noqa: B018 -- decode once so that bad text is reported now
    return message


def _declared_content(body: bytes, length: int) -> bytes:
    """The content of a MIME part whose Content-Length is `length`: its first `length` bytes,
    or, when those end inside a text whose first `length` characters are all there is to it
    (a sender that counted characters, not bytes), those characters."""
    content = body[:length]
    rest = body[length:]
    if not rest.strip() or content.isascii():
        return content
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return content
    if text[length:].strip():
        return content  # something else follows even the characters: not the content
    return text[:length].encode("utf-8")


def _header_block(data: bytes, pos: int, what: str) -> tuple[list[str], int | None]:
    """Lines from `pos` up to a blank line (unfolded, decoded) and the offset after that blank
    line; the offset is None when the data ended first."""
    lines: list[str] = []
    while pos < len(data):
        end = data.find(b"\n", pos)
        raw, pos = (data[pos:], len(data)) if end < 0 else (data[pos:end], end + 1)
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw:
            return lines, pos
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CPIMError(f"{what} are not valid UTF-8") from None
        if line[0] in " \t":
            if not lines:
                raise CPIMError(f"{what} begin with a continuation line")
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines, None


def _looks_like_header(line: str) -> bool:
    name, colon, _ = line.partition(":")
    return bool(colon) and _NAME.fullmatch(name.replace(".", "")) is not None


def _header(line: str) -> tuple[str, dict[str, str], str]:
    """`Name:;param=x value` -> (name, params, value)."""
    name, colon, rest = line.partition(":")
    name = name.strip()
    if not colon or not name:
        raise CPIMError(f"not a header line: {line[:80]!r}")
    _check_name(name)
    params: dict[str, str] = {}
    if rest.startswith(";"):  # Header-parameters follow the colon directly
        pos = 0
        while match := _HEADER_PARAM.match(rest, pos):
            value = match.group(2) or ""
            if value.startswith('"'):
                value, _ = _take_quoted(value)
            params[match.group(1).lower()] = value
            pos = match.end()
        rest = rest[pos:]
    value = rest.strip(" \t")
    if _CONTROL.search(value):
        raise CPIMError(f"control character in header {name!r}")
    return name, params, value


def _read_message_headers(message: CPIMMessage,
                          headers: list[tuple[str, dict[str, str], str]]) -> None:
    # Namespaces first: a sender may declare a prefix after using it.
    for name, _params, value in headers:
        if "." not in name and name.lower() == "ns":
            ns_prefix, uri = _parse_ns(value)
            message.namespaces[ns_prefix] = uri
    for name, params, value in headers:
        prefix, local = _split_name(name)
        lower = local.lower()
        if message.namespace_of(prefix) != DEFAULT_NAMESPACE or lower not in _CORE:
            _merge(message.headers, name, value)
        elif lower == "from":
            if message.sender is not None:
                raise CPIMError("more than one From header")
            message.sender = CPIMIdentity.parse(value)
        elif lower == "to":
            message.recipients.append(CPIMIdentity.parse(value))
        elif lower == "cc":
            message.cc.append(CPIMIdentity.parse(value))
        elif lower == "datetime":
            if message.timestamp is not None:
                raise CPIMError("more than one DateTime header")
            try:
                message.timestamp = parse_timestamp(value)
            except ValueError as exc:
                raise CPIMError(f"DateTime: {exc}") from None
        elif lower == "subject":
            lang = params.get("lang")
            if lang is None and message.subject is None:
                message.subject = value
            elif lang is not None:
                message.subject_translations[lang] = value
        elif lower in ("require", "required"):
            message.required += [n.strip() for n in value.split(",") if n.strip()]
    if message.subject is None and message.subject_translations:
        message.subject = next(iter(message.subject_translations.values()))


def _parse_ns(value: str) -> tuple[str, str]:
    prefix, lt, rest = value.partition("<")
    prefix = prefix.strip()
    if not lt or not rest.rstrip().endswith(">"):
        raise CPIMError(f"NS header is not 'prefix <URI>': {value!r}")
    uri = rest.rstrip()[:-1].strip()
    if prefix and not _NAME.fullmatch(prefix):
        raise CPIMError(f"invalid namespace prefix {prefix!r}")
    if not _URI.fullmatch(uri):
        raise CPIMError(f"invalid namespace URI {uri!r}")
    return prefix, uri


# --- helpers -----------------------------------------------------------------------------

def _split_name(name: str) -> tuple[str | None, str]:
    prefix, dot, local = name.partition(".")
    return (prefix, local) if dot else (None, name)


def _check_name(name: str) -> tuple[str | None, str]:
    prefix, local = _split_name(name)
    if not _NAME.fullmatch(local) or (prefix is not None and not _NAME.fullmatch(prefix)):
        raise CPIMError(f"invalid header name {name!r}")
    return prefix, local


def _check_value(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise CPIMError(f"{what} contains a line break or control character")
    return value


def _checked(value: str, what: str) -> str:
    value = _check_value(value, what)
    if value != value.strip(" \t"):
        raise CPIMError(f"{what} has leading or trailing white space")
    return value


def _merge(headers: dict[str, str], name: str, value: str) -> None:
    for key in headers:
        if key.lower() == name.lower():
            headers[key] += ", " + value
            return
    headers[name] = value


def _media_type(value: str) -> MediaType:
    try:
        return parse_media_type(value.strip(), "Content-Type")
    except SipParseError as exc:
        raise CPIMError(f"invalid Content-Type of the MIME part: {exc.detail}") from None
