"""Parsers for the address-like strings settings hold: host[:port], ports, port ranges, origins.

They raise ValueError with a short problem description ("needs a port", ...); the setting types
turn that into a SettingError naming the key. The daemon uses the same parsers to read the values.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


class HostPort(NamedTuple):
    host: str          # a hostname, an IPv4 address or an IPv6 address (without brackets)
    port: int | None   # None when the text gave no port


class PortRange(NamedTuple):
    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_hostname(host: str) -> None:
    """A DNS name or an IPv4 literal; IPv6 literals are handled by the bracket syntax."""
    if not host:
        raise ValueError("the host is empty")
    labels = host.split(".")
    if all(label.isdigit() for label in labels):
        # Looks like IPv4: it has to be a valid one, not a "hostname" of digits.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not a valid IPv4 address") from None
        return
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name or IP address")


def parse_port(text: str, *, minimum: int = 0) -> int:
    if not text.isdigit():
        raise ValueError(f"the port {text!r} is not a number")
    port = int(text)
    if not minimum <= port <= 65535:
        raise ValueError(f"the port {port} is outside {minimum}..65535")
    return port


def parse_host_port(text: str, *, port_required: bool = False, min_port: int = 1) -> HostPort:
    """'example.com', 'example.com:3478', '192.0.2.1:5060', '[2001:db8::1]:5061', '[::1]'."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{text!r} opens '[' for an IPv6 address but never closes it")
        host = text[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
        rest = text[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected {rest!r} after the IPv6 address; write [address]:port")
        port_text = rest[1:] if rest else None
    else:
        if text.count(":") > 1:
            raise ValueError(f"{text!r} looks like an IPv6 address: put it in brackets, "
                             "e.g. [::1]:5060")
        host, colon, port_text = text.partition(":")
        if not colon:
            port_text = None
        check_hostname(host)
    if port_text is None:
        if port_required:
            raise ValueError(f"{text!r} needs a port, e.g. {text}:5060")
        return HostPort(host, None)
    return HostPort(host, parse_port(port_text, minimum=min_port))


def parse_listen_address(text: str) -> HostPort:
    """'127.0.0.1:7575', '[::1]:0', 'localhost:7575': the port is required, 0 = any free port."""
    return parse_host_port(text, port_required=True, min_port=0)


def parse_port_range(text: str, *, minimum: int = 1024) -> PortRange:
    """'50000-50500' (spaces around the dash are tolerated)."""
    low_text, dash, high_text = text.partition("-")
    if not dash:
        raise ValueError(f"{text!r} is not a range: write LOW-HIGH, e.g. 50000-50500")
    low = parse_port(low_text.strip(), minimum=minimum)
    high = parse_port(high_text.strip(), minimum=minimum)
    if low > high:
        raise ValueError(f"the range starts at {low}, above its end {high}")
    return PortRange(low, high)


def parse_origin(text: str) -> tuple[str, HostPort]:
    """A browser Origin: 'https://example.com', 'http://localhost:8080' (no path, no slash)."""
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.match(scheme):
        raise ValueError(f"{text!r} is not an origin: write scheme://host[:port], "
                         "e.g. https://example.com")
    if rest.endswith("/"):
        raise ValueError(f"{text!r} ends with '/': an origin has no path, drop the slash")
    if "/" in rest or "?" in rest or "#" in rest:
        raise ValueError(f"{text!r} has a path: an origin is only scheme://host[:port]")
    return scheme, parse_host_port(rest)


def check_msrp_relay_uri(text: str) -> None:
    """'msrps://relay.example.com:2855;tcp' — the relay of RFC 4976 is reached over TLS; several
    (space or comma separated) are tried in order; 'auto' finds them by SRV."""
    items = [item for item in re.split(r"[\s,]+", text.strip()) if item]
    if items == ["auto"]:
        return
    for item in items:
        if not item.startswith("msrps://"):
            raise ValueError(f"{item!r} is not an msrps: URI, e.g. "
                             "msrps://relay.example.com:2855;tcp (or use auto)")
        authority = re.split(r"[/;]", item[len("msrps://"):], maxsplit=1)[0]
        if "@" in authority:
            authority = authority.rsplit("@", 1)[1]
        parse_host_port(authority)


def check_http_url(text: str) -> None:
    """An http(s) URL with a host, e.g. the XCAP root 'https://xcap.example.com/xcap-root'."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{text!r} is not an http:// or https:// URL, "
                         "e.g. https://xcap.example.com/xcap-root")
    authority = parts.netloc.rsplit("@", 1)[-1]
    parse_host_port(authority)
