"""SDP attribute values (RFC 8866 §6 and the RFCs that define attributes): direction, rtpmap,
fmtp, crypto (RFC 4568), rtcp (RFC 3605), ptime, setup (RFC 4145), the MSRP attributes
(RFC 4975: path, accept-types, accept-wrapped-types, max-size) and file transfer (RFC 5547:
file-selector, file-transfer-id, file-disposition).

`validate_attribute` checks the value of every attribute named here when a description is
parsed; other attributes are kept as text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from ...files.errors import FileAttributeError
from ...files.selector import parse_file_selector, selector_value
from .fields import (
    Connection,
    SDPError,
    check_token,
    fields_of,
    memoized,
    parse_number,
    split_fields,
)

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")


class Direction(enum.StrEnum):
    """The direction attributes (RFC 8866 §6.7), as seen by the side that wrote them."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        return {(True, True): cls.SENDRECV, (True, False): cls.SENDONLY,
                (False, True): cls.RECVONLY, (False, False): cls.INACTIVE}[(sends, receives)]

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def reversed(self) -> Direction:
        """The same stream seen from the other side (sendonly <-> recvonly)."""
        return Direction.of(self.receives, self.sends)

    def answer(self, wanted: Direction | None = None) -> Direction:
        """The direction to answer this offered direction with (RFC 3264 §6.1), limited to
        what we want: we send only if they receive, we receive only if they send."""
        wanted = wanted or Direction.SENDRECV
        return Direction.of(self.receives and wanted.sends, self.sends and wanted.receives)

    def held(self, inactive: bool = False) -> Direction:
        """The direction to offer when putting this stream on hold (RFC 6337 §5.3): we stop
        receiving; `inactive` stops sending too (no music on hold)."""
        return Direction.INACTIVE if inactive else Direction.of(self.sends, False)

    def resumed(self) -> Direction:
        return Direction.of(True, True)


DIRECTIONS = frozenset(direction.value for direction in Direction)

# Static RTP payload types (RFC 3551) that need no rtpmap: pt -> (encoding, clock, channels).
STATIC_PAYLOAD_TYPES = {
    0: ("PCMU", 8000, None), 3: ("GSM", 8000, None), 4: ("G723", 8000, None),
    5: ("DVI4", 8000, None), 6: ("DVI4", 16000, None), 7: ("LPC", 8000, None),
    8: ("PCMA", 8000, None), 9: ("G722", 8000, None), 10: ("L16", 44100, 2),
    11: ("L16", 44100, None), 12: ("QCELP", 8000, None), 13: ("CN", 8000, None),
    14: ("MPA", 90000, None), 15: ("G728", 8000, None), 16: ("DVI4", 11025, None),
    17: ("DVI4", 22050, None), 18: ("G729", 8000, None), 25: ("CelB", 90000, None),
    26: ("JPEG", 90000, None), 28: ("nv", 90000, None), 31: ("H261", 90000, None),
    32: ("MPV", 90000, None), 33: ("MP2T", 90000, None), 34: ("H263", 90000, None),
}


@dataclass(frozen=True)
class RtpMap:
    """a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]"""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> RtpMap:
        pt, encoding = fields_of(value, "a=rtpmap", line, 2)
        name, *rest = encoding.split("/")
        if len(rest) not in (1, 2):
            raise SDPError(f"a=rtpmap needs <encoding>/<clock rate>[/<channels>]: {value!r}",
                           line)
        channels = parse_number(rest[1], "a=rtpmap channels", line) if len(rest) == 2 else None
        return cls(parse_number(pt, "a=rtpmap payload type", line, maximum=127),
                   check_token(name, "a=rtpmap encoding name", line),
                   parse_number(rest[0], "a=rtpmap clock rate", line), channels)

    @property
    def channel_count(self) -> int:
        """Audio channels: the encoding parameter, 1 when absent (RFC 8866 §6.6)."""
        return self.channels or 1

    @classmethod
    def static(cls, payload_type: int) -> RtpMap | None:
        known = STATIC_PAYLOAD_TYPES.get(payload_type)
        return cls(payload_type, *known) if known else None

    def __str__(self) -> str:
        channels = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{channels}"


@dataclass(frozen=True)
class Fmtp:
    """a=fmtp:<format> <format specific parameters>"""

    format: str
    parameters: str = ""

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> Fmtp:
        fmt, *parameters = split_fields(value, 1) or [""]
        return cls(check_token(fmt, "a=fmtp format", line), "".join(parameters))

    def params(self) -> dict[str, str]:
        """`key=value;key2=value2` parameters as a dict (a bare item maps to "")."""
        result: dict[str, str] = {}
        for item in self.parameters.split(";"):
            key, _, value = item.strip().partition("=")
            if key:
                result[key.strip()] = value.strip()
        return result

    def __str__(self) -> str:
        return f"{self.format} {self.parameters}" if self.parameters else self.format


_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True)
class CryptoKey:
    """One SDES key parameter (RFC 4568 §6.1): `inline:<key||salt>[|<lifetime>][|<MKI>:<len>]`
    (other key methods keep their text in `info`)."""

    method: str
    info: str

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> CryptoKey:
        method, colon, info = value.partition(":")
        if not colon or not info:
            raise SDPError(f"a=crypto key parameter needs <method>:<info>: {value!r}", line)
        key = cls(check_token(method, "a=crypto key method", line), info)
        if key.method.lower() == "inline":
            parts = info.split("|")
            if len(parts) > 3 or not _BASE64.fullmatch(parts[0]):
                raise SDPError(f"a=crypto inline key is not <base64>[|lifetime][|mki:len]: "
                               f"{value!r}", line)
            key._inline_parts(line)
        return key

    def _inline_parts(self, line: int | None) -> tuple[str, str | None, str | None]:
        key_salt, *rest = self.info.split("|")
        lifetime = mki = None
        for part in rest:
            if ":" in part:
                number, _, length = part.partition(":")
                parse_number(number, "a=crypto MKI", line)
                parse_number(length, "a=crypto MKI length", line, maximum=128)
                mki = part
            elif re.fullmatch(r"(2\^)?[0-9]+", part):
                lifetime = part
            else:
                raise SDPError(f"a=crypto inline part {part!r} is no lifetime or MKI", line)
        return key_salt, lifetime, mki

    @property
    def key_salt(self) -> str | None:
        """The base64 master key and salt of an inline key."""
        return self._inline_parts(None)[0] if self.method.lower() == "inline" else None

    @property
    def lifetime(self) -> str | None:
        return self._inline_parts(None)[1] if self.method.lower() == "inline" else None

    @property
    def mki(self) -> str | None:
        return self._inline_parts(None)[2] if self.method.lower() == "inline" else None

    def __str__(self) -> str:
        return f"{self.method}:{self.info}"


@dataclass(frozen=True)
class Crypto:
    """a=crypto:<tag> <crypto-suite> <key-params> [<session-params>] (RFC 4568)."""

    tag: int
    suite: str
    keys: tuple[CryptoKey, ...]
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> Crypto:
        tag, suite, keys, *session_params = fields_of(value, "a=crypto", line, minimum=3)
        if len(tag) > 9:
            raise SDPError(f"a=crypto tag {tag!r} has more than 9 digits", line)
        return cls(parse_number(tag, "a=crypto tag", line),
                   check_token(suite, "a=crypto suite", line),
                   tuple(CryptoKey.parse(key, line) for key in keys.split(";")),
                   tuple(session_params))

    def __str__(self) -> str:
        keys = ";".join(str(key) for key in self.keys)
        return " ".join([str(self.tag), self.suite, keys, *self.session_params])


@dataclass(frozen=True)
class Rtcp:
    """a=rtcp:<port> [<nettype> <addrtype> <connection-address>] (RFC 3605)."""

    port: int
    connection: Connection | None = None

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> Rtcp:
        port, *rest = fields_of(value, "a=rtcp", line)
        if rest and len(rest) != 3:
            raise SDPError(f"a=rtcp needs <port> [<nettype> <addrtype> <address>]: {value!r}",
                           line)
        return cls(parse_number(port, "a=rtcp port", line, maximum=65535),
                   Connection.parse(" ".join(rest), line) if rest else None)

    def __str__(self) -> str:
        return f"{self.port} {self.connection}" if self.connection else str(self.port)


def parse_ptime(value: str, line: int | None = None) -> float:
    """a=ptime / a=maxptime: milliseconds, integer or decimal (RFC 8866 §6.4)."""
    text = value.strip(" \t")
    if not _DECIMAL.fullmatch(text):
        raise SDPError(f"packet time {value!r} is not a number", line)
    return float(text)


SETUP_ROLES = frozenset({"active", "passive", "actpass", "holdconn"})  # RFC 4145 §4


def parse_word_list(value: str, what: str, line: int | None = None) -> list[str]:
    """A non-empty space-separated list (MSRP path and accept-types, RFC 4975 §8.1)."""
    items = split_fields(value)
    if not items:
        raise SDPError(f"{what} is empty", line)
    return items


def parse_path(value: str, line: int | None = None) -> list[str]:
    """a=path: MSRP URIs, the first is the nearest hop (RFC 4975 §8.2)."""
    uris = parse_word_list(value, "a=path", line)
    for uri in uris:
        if not uri.lower().startswith(("msrp://", "msrps://")):
            raise SDPError(f"a=path URI {uri!r} is not an msrp: or msrps: URI", line)
    return uris


def parse_accept_types(value: str, line: int | None = None) -> list[str]:
    """a=accept-types / a=accept-wrapped-types: MIME types, `type/*` or `*`."""
    types = parse_word_list(value, "a=accept-types", line)
    for item in types:
        if item != "*" and not re.fullmatch(r"[^/\s]+/[^/\s]+", item):
            raise SDPError(f"accept type {item!r} is not <type>/<subtype> or *", line)
    return types


# --- file transfer (RFC 5547) ---------------------------------------------------------------

@dataclass(frozen=True)
class FileSelector:
    """a=file-selector: [name:"..."] [type:<mime>] [size:<bytes>] [hash:<alg>:<hex pairs>]"""

    name: str | None = None
    type: str | None = None
    size: int | None = None
    hash: str | None = None  # e.g. "sha-1:72:24:5F:..."

    @classmethod
    def parse(cls, value: str, line: int | None = None) -> FileSelector:
        """Read as sipd/files/selector.py reads it (the transfer itself is decided there):
        any kind optional, a raw `"` inside a name kept, later kinds ignored."""
        try:
            selector = parse_file_selector(value)
        except FileAttributeError as exc:
            raise SDPError(str(exc), line) from None
        return cls(selector.name, selector.type, selector.size,
                   str(selector.hash) if selector.hash is not None else None)

    def __str__(self) -> str:
        return selector_value(self.name, self.type, self.size, self.hash)


# --- validation of known attributes at parse time --------------------------------------------

def _flag(value: str | None, line: int | None, name: str) -> None:
    if value is not None:
        raise SDPError(f"a={name} takes no value", line)


def _needs_value(check: Callable[[str, int | None], object]) -> Callable[..., None]:
    def validate(value: str | None, line: int | None, name: str) -> None:
        if value is None:
            raise SDPError(f"a={name} needs a value", line)
        check(value, line)
    return validate


def _check_setup(value: str, line: int | None) -> None:
    if value.strip(" \t").lower() not in SETUP_ROLES:
        raise SDPError(f"a=setup role {value!r} is not one of {sorted(SETUP_ROLES)}", line)


def _check_size(value: str, line: int | None) -> None:
    parse_number(value.strip(" \t"), "a=max-size", line)


def _check_nonempty(value: str, line: int | None) -> None:
    if not value.strip(" \t"):
        raise SDPError("attribute value is empty", line)


# Lower-case attribute name -> validator(value or None for a flag, line, name).
ATTRIBUTE_VALIDATORS: dict[str, Callable[[str | None, int | None, str], None]] = {
    **{name: _flag for name in DIRECTIONS},
    "rtpmap": _needs_value(RtpMap.parse),
    "fmtp": _needs_value(Fmtp.parse),
    "crypto": _needs_value(Crypto.parse),
    "rtcp": _needs_value(Rtcp.parse),
    "ptime": _needs_value(parse_ptime),
    "maxptime": _needs_value(parse_ptime),
    "path": _needs_value(parse_path),
    "accept-types": _needs_value(parse_accept_types),
    "accept-wrapped-types": _needs_value(parse_accept_types),
    "max-size": _needs_value(_check_size),
    "setup": _needs_value(_check_setup),
    "file-selector": _needs_value(FileSelector.parse),
    "file-transfer-id": _needs_value(_check_nonempty),
    "file-disposition": _needs_value(_check_nonempty),
    "candidate": _needs_value(_check_nonempty),
}


def validate_attribute(value: str, line: int | None) -> None:
    """Check the text after `a=`: a token name, and a well-formed value for the attributes
    known here (names compare case-insensitively)."""
    name, colon, rest = value.partition(":")
    check_token(name, "attribute name", line)
    validator = ATTRIBUTE_VALIDATORS.get(name.lower())
    if validator is not None:
        validator(rest if colon else None, line, name)


for _kind in (RtpMap, Fmtp, Rtcp):  # frozen, read again and again (see sdp_fields.memoized)
    _kind.parse = staticmethod(memoized(_kind.parse))  # type: ignore[assignment]
