"""MIME multipart bodies (RFC 2046 §5.1) as SIP carries them: multipart/related (RFC 2387)
with Content-ID (RFC 2392) and `start`, which is how a resource list server sends its
notifications (RFC 4662 §5).

    multipart = parse_multipart(body, "multipart/related;type=...;boundary=...;start=<x>")
    multipart.root                      # the part `start` names, else the first
    multipart.part_by_cid("x@host")     # a part by its Content-ID (brackets optional)

Strict limits, because the body came from a peer: at most `MAX_BODY_BYTES`, `MAX_PARTS`
parts, `MAX_PART_HEADERS` header lines per part and nesting `MAX_DEPTH` deep (a part that is
itself multipart is parsed by the caller with `depth + 1`). Anything malformed raises
PayloadError with the reason. Parts may use CRLF or bare LF line ends (RFC 2046 says CRLF;
some implementations write LF), and Content-Transfer-Encoding base64 or quoted-printable
is decoded.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass

from sipd.sip.errors import SipParseError
from sipd.sip.header_values import MediaType, parse_media_type

from .payload import PayloadError

__all__ = ["BodyPart", "Multipart", "parse_multipart", "build_multipart", "MAX_BODY_BYTES",
           "MAX_PARTS", "MAX_DEPTH", "content_id"]

MAX_BODY_BYTES = 4 * 1024 * 1024  # a list of a few thousand contacts' PIDF documents
MAX_PARTS = 2000
MAX_PART_HEADERS = 32
MAX_HEADER_BYTES = 8 * 1024
MAX_DEPTH = 4  # a list of lists of lists...
_BCHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]\Z")
_TOKEN_NAME = re.compile(rb"[!-9;-~]+\Z")  # a header name: printable, no colon


@dataclass(frozen=True)
class BodyPart:
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    @property
    def content_type(self) -> MediaType | None:
        """The part's Content-Type (None when absent); PayloadError when malformed."""
        value = self.header("Content-Type")
        if value is None:
            return None
        try:
            return parse_media_type(value, "Content-Type")
        except SipParseError as exc:
            raise PayloadError(f"multipart body: a part's {exc}") from None

    @property
    def mime(self) -> str:
        """`type/subtype` in lower case; text/plain when absent (RFC 2046 §5.1)."""
        content_type = self.content_type
        return content_type.mime if content_type is not None else "text/plain"

    @property
    def content_id(self) -> str | None:
        value = self.header("Content-ID")
        return content_id(value) if value is not None else None


@dataclass(frozen=True)
class Multipart:
    content_type: MediaType
    parts: tuple[BodyPart, ...]
    depth: int = 0

    @property
    def root(self) -> BodyPart:
        """The root part of multipart/related: the one `start` names, else the first."""
        start = self.content_type.params.get_unquoted("start")
        if start:
            part = self.part_by_cid(start)
            if part is None:
                raise PayloadError(f"multipart body: no part has the start Content-ID "
                                   f"{start[:80]!r}")
            return part
        return self.parts[0]

    def part_by_cid(self, cid: str) -> BodyPart | None:
        wanted = content_id(cid)
        for part in self.parts:
            if part.content_id == wanted:
                return part
        folded = wanted.lower()  # liberal: some servers change the case of the domain
        for part in self.parts:
            if part.content_id is not None and part.content_id.lower() == folded:
                return part
        return None


def content_id(value: str) -> str:
    """A Content-ID or `cid` reference without its brackets and blanks."""
    value = value.strip()
    if value.lower().startswith("cid:"):
        value = value[4:]
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip()


def parse_multipart(body: bytes, content_type: MediaType | str, *, depth: int = 0
                    ) -> Multipart:
    """The parts of a multipart body; PayloadError says what is wrong."""
    if isinstance(content_type, str):
        try:
            content_type = parse_media_type(content_type)
        except SipParseError as exc:
            raise PayloadError(f"multipart body: {exc}") from None
    if content_type.type.lower() != "multipart":
        raise PayloadError(f"not a multipart body: {content_type.mime}")
    if depth > MAX_DEPTH:
        raise PayloadError(f"multipart body: nested more than {MAX_DEPTH} deep")
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(f"multipart body is too large ({len(body)} bytes, limit "
                           f"{MAX_BODY_BYTES})")
    boundary = content_type.params.get_unquoted("boundary")
    if not boundary or not _BCHARS.match(boundary):
        raise PayloadError("multipart body: the Content-Type has no valid boundary parameter")
    parts = tuple(_part(raw) for raw in _split(bytes(body), boundary.encode("ascii")))
    if not parts:
        raise PayloadError("multipart body has no parts")
    return Multipart(content_type, parts, depth)


def _split(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = b"--" + boundary
    # The first delimiter starts the body or a line; later ones come after a line end, which
    # belongs to the delimiter (RFC 2046 §5.1.1).
    if body.startswith(delimiter):
        position = 0
    else:
        found = re.search(rb"\r?\n" + re.escape(delimiter), body)
        if found is None:
            raise PayloadError("multipart body: the boundary does not occur in it")
        position = found.end() - len(delimiter)
    pattern = re.compile(rb"\r?\n" + re.escape(delimiter))
    raws: list[bytes] = []
    while True:
        after = position + len(delimiter)
        if body.startswith(b"--", after):
            return raws  # the close delimiter; the epilogue is ignored
        line_end = body.find(b"\n", after)
        if line_end < 0 or body[after:line_end].strip(b" \t\r"):
            raise PayloadError("multipart body: a boundary line has trailing text or no "
                               "line end (or the close delimiter is missing)")
        start = line_end + 1
        found = pattern.search(body, start)
        if found is None:
            raise PayloadError("multipart body: the close delimiter is missing")
        raws.append(body[start:found.start()])
        if len(raws) > MAX_PARTS:
            raise PayloadError(f"multipart body has more than {MAX_PARTS} parts")
        position = found.end() - len(delimiter)


def _part(raw: bytes) -> BodyPart:
    if raw.startswith(b"\r\n") or raw.startswith(b"\n"):
        head, body = b"", raw[2 if raw.startswith(b"\r\n") else 1:]
    else:
        found = re.search(rb"\r?\n\r?\n", raw[:MAX_HEADER_BYTES + 4])
        if found is None:
            if len(raw) > MAX_HEADER_BYTES:
                raise PayloadError("multipart body: a part's headers are too long")
            raise PayloadError("multipart body: a part's headers are not ended by an "
                               "empty line")
        head, body = raw[:found.start()], raw[found.end():]
    headers = _headers(head)
    part = BodyPart(headers, body)
    encoding = (part.header("Content-Transfer-Encoding") or "binary").strip().lower()
    if encoding in ("7bit", "8bit", "binary"):
        return part
    try:
        if encoding == "base64":
            decoded = binascii.a2b_base64(re.sub(rb"[ \t\r\n]+", b"", body), strict_mode=True)
        elif encoding == "quoted-printable":
            decoded = binascii.a2b_qp(body)
        else:
            raise PayloadError(f"multipart body: unknown Content-Transfer-Encoding "
                               f"{encoding[:40]!r}")
    except binascii.Error as exc:
        raise PayloadError(f"multipart body: a part's {encoding} is broken ({exc})") from None
    return BodyPart(headers, decoded)


def _headers(head: bytes) -> tuple[tuple[str, str], ...]:
    if not head:
        return ()
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise PayloadError("multipart body: a part's headers are not ASCII") from None
    fields: list[tuple[str, str]] = []
    for line in re.split(r"\r?\n", text):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or not _TOKEN_NAME.match(name.encode()):
            raise PayloadError(f"multipart body: a part's header line is not 'name: value': "
                               f"{line[:60]!r}")
        fields.append((name, value.strip()))
        if len(fields) > MAX_PART_HEADERS:
            raise PayloadError(f"multipart body: a part has more than {MAX_PART_HEADERS} "
                               f"headers")
    return tuple(fields)


def build_multipart(parts: list[BodyPart], *, subtype: str = "related",
                    params: tuple[tuple[str, str], ...] = ()) -> tuple[str, bytes]:
    """(Content-Type value, body) of a multipart body holding `parts` (binary, CRLF line
    ends). `params` are added to the Content-Type (type, start...), then the boundary, which
    is chosen so that it occurs in no part."""
    while True:
        boundary = "sipd-" + secrets.token_hex(12)
        if not any(boundary.encode() in part.body for part in parts):
            break
    chunks: list[bytes] = []
    for part in parts:
        chunks.append(b"--" + boundary.encode() + b"\r\n")
        for name, value in part.headers:
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} contains a line break")
            chunks.append(f"{name}: {value}\r\n".encode("ascii"))
        chunks.append(b"\r\n" + part.body + b"\r\n")
    chunks.append(b"--" + boundary.encode() + b"--\r\n")
    value = f"multipart/{subtype}" + "".join(f";{k}={_quoted(v)}" for k, v in params)
    return f"{value};boundary={boundary}", b"".join(chunks)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
