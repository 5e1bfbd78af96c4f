"""MSRP frames: requests (SEND, REPORT, AUTH, any other method) and responses, with typed
access to their headers and their serialisation (RFC 4975 §7.1, §9).

A typed accessor parses its header each time it is read and raises MsrpParseError when the
value is malformed; a missing optional header is None.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from ..sip.auth import Challenge
from . import headers as h
from .errors import MsrpParseError
from .headers import ByteRange, Headers, Status
from .uri import MsrpUri, format_path, parse_path

CONTINUATIONS = ("$", "+", "#")  # complete, more chunks follow, aborted
END_LINE_DASHES = b"-------"

REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    408: "Request Timeout", 413: "Message Too Large", 415: "Unsupported Media Type",
    423: "Interval Out-of-Bounds", 481: "Session Does Not Exist", 501: "Not Implemented",
    506: "Session Already Bound",
}


class _RandomHex:
    """Random hex digits from the system's CSPRNG, drawn 4 KB at a time: an id per chunk
    would otherwise cost a getrandom call each."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._pool = ""
        self._at = 0

    def take(self, octets: int) -> str:
        digits = 2 * octets
        if self._at + digits > len(self._pool):
            self._pool, self._at = secrets.token_hex(4096), 0
        at = self._at
        self._at = at + digits
        return self._pool[at:at + digits]


_random_hex = _RandomHex()
if hasattr(os, "register_at_fork"):  # a forked child draws its own digits
    os.register_at_fork(after_in_child=_random_hex.reset)


def new_transaction_id() -> str:
    """64 random bits (RFC 4975 §7.1: enough that the end-line is unlikely in a body)."""
    return _random_hex.take(8)


def new_message_id() -> str:
    return _random_hex.take(10)


class _Frame:
    headers: Headers

    def _path(self, name: str) -> list[MsrpUri] | None:
        value = self.headers.get(name)
        return None if value is None else parse_path(value)

    @property
    def to_path(self) -> list[MsrpUri] | None:
        return self._path(h.TO_PATH)

    @property
    def from_path(self) -> list[MsrpUri] | None:
        return self._path(h.FROM_PATH)

    @property
    def use_path(self) -> list[MsrpUri] | None:
        return self._path(h.USE_PATH)

    @property
    def message_id(self) -> str | None:
        value = self.headers.get(h.MESSAGE_ID)
        if value is None:
            return None
        value = value.strip()
        if not h.is_ident(value):
            raise MsrpParseError(f"bad Message-ID {value!r}")
        return value

    @property
    def byte_range(self) -> ByteRange | None:
        value = self.headers.get(h.BYTE_RANGE)
        return None if value is None else h.parse_byte_range(value)

    @property
    def success_report(self) -> bool:
        value = self.headers.get(h.SUCCESS_REPORT)
        return False if value is None else h.parse_success_report(value)

    @property
    def failure_report(self) -> str:
        value = self.headers.get(h.FAILURE_REPORT)
        return "yes" if value is None else h.parse_failure_report(value)

    @property
    def status(self) -> Status | None:
        value = self.headers.get(h.STATUS)
        return None if value is None else h.parse_status(value)

    @property
    def content_type(self) -> str | None:
        value = self.headers.get(h.CONTENT_TYPE)
        return None if value is None else h.parse_content_type(value)

    def _seconds(self, name: str) -> int | None:
        value = self.headers.get(name)
        return None if value is None else h.parse_seconds(value, name)

    @property
    def expires(self) -> int | None:
        return self._seconds(h.EXPIRES)

    @property
    def min_expires(self) -> int | None:
        return self._seconds(h.MIN_EXPIRES)

    @property
    def max_expires(self) -> int | None:
        return self._seconds(h.MAX_EXPIRES)

    @property
    def www_authenticate(self) -> list[Challenge]:
        return [h.parse_digest(v, h.WWW_AUTHENTICATE)
                for v in self.headers.get_all(h.WWW_AUTHENTICATE)]

    @property
    def authorization(self) -> Challenge | None:
        value = self.headers.get(h.AUTHORIZATION)
        return None if value is None else h.parse_digest(value, h.AUTHORIZATION)

    @property
    def authentication_info(self) -> dict[str, str] | None:
        value = self.headers.get(h.AUTHENTICATION_INFO)
        return None if value is None else h.parse_auth_info(value)


@dataclass
class MsrpRequest(_Frame):
    transaction_id: str
    method: str
    headers: Headers = field(default_factory=Headers)
    body: bytes | None = None  # None: no body at all (not even an empty one)
    continuation: str = "$"

    def serialize(self) -> bytes:
        return b"".join(self.serialize_parts())

    def serialize_parts(self) -> list[bytes]:
        """The frame in pieces (head, body, end-line): a writer joins many frames at once
        instead of copying each big body twice."""
        return _serialize_parts(f"MSRP {self.transaction_id} {self.method}", self.headers,
                                self.body, self.transaction_id, self.continuation)

    def __repr__(self) -> str:
        size = "no body" if self.body is None else f"{len(self.body)} bytes"
        return f"<MsrpRequest {self.method} {self.transaction_id} {size}{self.continuation}>"


@dataclass
class MsrpResponse(_Frame):
    transaction_id: str
    code: int
    comment: str = ""
    headers: Headers = field(default_factory=Headers)

    def serialize(self) -> bytes:
        line = f"MSRP {self.transaction_id} {self.code:03d}"
        if self.comment:
            line += f" {self.comment}"
        return _serialize(line, self.headers, None, self.transaction_id, "$")

    def __repr__(self) -> str:
        return f"<MsrpResponse {self.code} {self.transaction_id}>"


Frame = MsrpRequest | MsrpResponse


def _serialize(first_line: str, headers: Headers, body: bytes | None, transaction_id: str,
               continuation: str) -> bytes:
    parts = _serialize_parts(first_line, headers, body, transaction_id, continuation)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _serialize_parts(first_line: str, headers: Headers, body: bytes | None,
                     transaction_id: str, continuation: str) -> list[bytes]:
    if continuation not in CONTINUATIONS:
        raise ValueError(f"continuation flag must be one of {CONTINUATIONS}")
    lines = [first_line]
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append("")
    head = "\r\n".join(lines)
    end = f"-------{transaction_id}{continuation}\r\n"
    if body is None:
        return [(head + end).encode("utf-8")]
    return [(head + "\r\n").encode("utf-8"), body, ("\r\n" + end).encode("ascii")]


def make_request(method: str, to_path: list[MsrpUri], from_path: list[MsrpUri],
                 transaction_id: str | None = None) -> MsrpRequest:
    """A request with its To-Path and From-Path; other headers are added by the caller."""
    request = MsrpRequest(transaction_id or new_transaction_id(), method)
    request.headers.add(h.TO_PATH, format_path(to_path))
    request.headers.add(h.FROM_PATH, format_path(from_path))
    return request


def make_response(request: MsrpRequest, code: int, comment: str | None = None, *,
                  to_path: list[MsrpUri] | None = None,
                  from_path: list[MsrpUri] | None = None) -> MsrpResponse:
    """The response to `request` (RFC 4975 §7.2): To-Path the previous hop (the first URI of
    the request's From-Path; all of it for requests other than SEND), From-Path the URI the
    request was for. Paths the request does not give correctly can be passed in."""
    if to_path is None or from_path is None:
        request_from = request.from_path
        request_to = request.to_path
        if request_from is None or request_to is None:
            raise MsrpParseError("cannot answer a request without To-Path and From-Path")
        if to_path is None:
            to_path = request_from[:1] if request.method == "SEND" else request_from
        if from_path is None:
            from_path = request_to[:1]
    response = MsrpResponse(request.transaction_id, code,
                            REASONS.get(code, "") if comment is None else comment)
    response.headers.add(h.TO_PATH, format_path(to_path))
    response.headers.add(h.FROM_PATH, format_path(from_path))
    return response
