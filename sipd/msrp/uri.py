"""MSRP URIs (RFC 4975 §9) and their comparison (§6.1).

    msrp://alice.example.com:7394/2s93i9ek2a;tcp
    msrps://bob@relay.example.net:2855/jsd9e;tcp;x=y

    uri = parse_uri("msrp://127.0.0.1:2855/abc;tcp")
    uri.same_as(parse_uri("MSRP://127.0.0.1/abc;TCP"))      # True: §6.1, default port 2855
    path = parse_path("msrps://relay/x;tcp msrps://me/y;tcp")

Comparison (§6.1): the scheme and the transport case-insensitively, the host case-insensitively
(an IP address by its value), the port with 2855 for a missing one, the session-id exactly; the
userinfo and other parameters are not compared. A URI without a session-id never equals one
with.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .errors import MsrpParseError

DEFAULT_PORT = 2855
SCHEMES = ("msrp", "msrps")

# session-id = 1*( unreserved / "+" / "=" / "/" ); unreserved = ALPHA DIGIT - . _ ~ (RFC 3986)
_SESSION_ID = re.compile(r"[A-Za-z0-9\-._~+=/%]+")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# userinfo per RFC 3986: unreserved / pct-encoded / sub-delims / ":"
_USERINFO = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:]*")
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,=]+")


@dataclass(frozen=True)
class MsrpUri:
    host: str  # an IPv6 address without brackets
    port: int | None = None
    session_id: str | None = None
    transport: str = "tcp"
    secure: bool = False  # msrps
    user: str | None = None
    params: tuple[tuple[str, str | None], ...] = field(default=())

    @property
    def scheme(self) -> str:
        return "msrps" if self.secure else "msrp"

    @property
    def effective_port(self) -> int:
        return DEFAULT_PORT if self.port is None else self.port

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.user}@{host}" if self.user is not None else host
        return text if self.port is None else f"{text}:{self.port}"

    def __str__(self) -> str:
        text = f"{self.scheme}://{self.authority}"
        if self.session_id is not None:
            text += f"/{self.session_id}"
        text += f";{self.transport}"
        for name, value in self.params:
            text += f";{name}" if value is None else f";{name}={value}"
        return text

    def _host_key(self) -> str:
        try:
            return ipaddress.ip_address(self.host).compressed
        except ValueError:
            return self.host.lower()

    def same_as(self, other: MsrpUri) -> bool:
        """RFC 4975 §6.1 equality."""
        return (self.secure == other.secure
                and self.transport.lower() == other.transport.lower()
                and self._host_key() == other._host_key()
                and self.effective_port == other.effective_port
                and self.session_id == other.session_id)


def parse_uri(text: str) -> MsrpUri:
    """Parses one MSRP URI; raises MsrpParseError saying what is wrong."""
    raw = text
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise MsrpParseError(f"not an MSRP URI (msrp:// or msrps://): {raw!r}")
    head, _, param_text = rest.partition(";")
    if not param_text:
        raise MsrpParseError(f"MSRP URI without a transport parameter: {raw!r}")
    authority, slash, session_id = head.partition("/")
    if slash:
        if not _SESSION_ID.fullmatch(session_id):
            raise MsrpParseError(f"bad session-id in MSRP URI {raw!r}")
    user = None
    if "@" in authority:
        user, _, authority = authority.rpartition("@")
        if not _USERINFO.fullmatch(user):
            raise MsrpParseError(f"bad userinfo in MSRP URI {raw!r}")
    host, port = _split_host_port(authority, raw)
    params = param_text.split(";")
    transport = params[0]
    if not _TOKEN.fullmatch(transport) or "=" in transport:
        raise MsrpParseError(f"bad transport in MSRP URI {raw!r}")
    others: list[tuple[str, str | None]] = []
    for param in params[1:]:
        name, eq, value = param.partition("=")
        if not _TOKEN.fullmatch(name) or (eq and not _TOKEN.fullmatch(value)):
            raise MsrpParseError(f"bad parameter {param!r} in MSRP URI {raw!r}")
        others.append((name, value if eq else None))
    return MsrpUri(host=host, port=port, session_id=session_id if slash else None,
                   transport=transport, secure=scheme.lower() == "msrps", user=user,
                   params=tuple(others))


def _split_host_port(authority: str, raw: str) -> tuple[str, int | None]:
    port_text = None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise MsrpParseError(f"unclosed IPv6 address in MSRP URI {raw!r}")
        host = authority[1:end]
        tail = authority[end + 1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise MsrpParseError(f"bad IPv6 address in MSRP URI {raw!r}") from None
        if tail:
            if not tail.startswith(":"):
                raise MsrpParseError(f"junk after the host in MSRP URI {raw!r}")
            port_text = tail[1:]
    else:
        host, colon, port_text_ = authority.partition(":")
        port_text = port_text_ if colon else None
        if not host or not _REG_NAME.fullmatch(host):
            raise MsrpParseError(f"bad host in MSRP URI {raw!r}")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise MsrpParseError(f"bad port in MSRP URI {raw!r}")
        port = int(port_text)
    return host, port


def parse_path(text: str) -> list[MsrpUri]:
    """A To-Path, From-Path, Use-Path or a=path value: URIs separated by whitespace."""
    parts = text.split()
    if not parts:
        raise MsrpParseError("empty path")
    return [parse_uri(part) for part in parts]


def format_path(path: list[MsrpUri] | tuple[MsrpUri, ...]) -> str:
    return " ".join(str(uri) for uri in path)
