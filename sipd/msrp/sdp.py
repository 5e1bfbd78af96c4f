"""The MSRP attributes of an SDP media line (RFC 4975 §8, RFC 6135, RFC 8122), as plain values:

    ours = MsrpMedia(path=[uri], accept_types=["message/cpim", "text/plain"],
                     accept_wrapped_types=["*"], setup=Setup.ACTPASS,
                     fingerprint=Fingerprint.of_certificate(der), max_size=None)
    for name, value in ours.attributes(): media.add_attribute(name, value)
    theirs = MsrpMedia.from_attributes((a.name, a.value) for a in remote_media.attributes)
    active = connection_role(ours.setup, theirs.setup, we_offered=True)   # we connect?

Nothing here knows the session layer's SDP model: attributes go in and out as (name, value)
pairs, so any m-line representation can use them. `media_protocol(path)` gives the m-line's
protocol (`TCP/MSRP` or `TCP/TLS/MSRP`).
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import MsrpParseError
from .uri import MsrpUri, format_path, parse_path

_HASHES = {"sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256", "sha-384": "sha384",
           "sha-512": "sha512"}
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+")
_MEDIA_TYPE = re.compile(r"\*|[A-Za-z0-9!#$&\-^_.+]+/(\*|[A-Za-z0-9!#$&\-^_.+]+)")


class Setup(enum.StrEnum):
    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"


def parse_setup(value: str) -> Setup:
    try:
        return Setup(value.strip().lower())
    except ValueError:
        raise MsrpParseError(f"bad a=setup {value!r} (active, passive, actpass or holdconn)") \
            from None


def answer_setup(offered: Setup | None) -> Setup:
    """Our a=setup in an answer to `offered` (RFC 6135): an offer without a=setup follows
    RFC 4975, where the offerer connects, so we wait; `actpass` and `passive` make us connect."""
    if offered in (None, Setup.ACTIVE):
        return Setup.PASSIVE
    if offered in (Setup.ACTPASS, Setup.PASSIVE):
        return Setup.ACTIVE
    raise MsrpParseError("the offer holds the connection (a=setup:holdconn)", 488)


def connection_role(local: Setup, remote: Setup | None, *, we_offered: bool) -> bool:
    """True when we open the connection (the active side). A missing a=setup means the
    offerer connects (RFC 4975); both sides ending up active or passive is an error."""
    if remote is None:
        remote = Setup.ACTIVE if not we_offered else Setup.PASSIVE
    if local == Setup.ACTPASS:
        if remote == Setup.ACTPASS:
            raise MsrpParseError("both sides said a=setup:actpass", 488)
        local = Setup.PASSIVE if remote == Setup.ACTIVE else Setup.ACTIVE
    if remote == Setup.ACTPASS:
        remote = Setup.PASSIVE if local == Setup.ACTIVE else Setup.ACTIVE
    if Setup.HOLDCONN in (local, remote):
        raise MsrpParseError("a=setup:holdconn: no connection", 488)
    if local == remote:
        raise MsrpParseError(f"both sides said a=setup:{local}", 488)
    return local == Setup.ACTIVE


@dataclass(frozen=True)
class Fingerprint:
    """`a=fingerprint:sha-256 AB:CD:...` (RFC 8122): the hash of a DER certificate."""

    algorithm: str  # lower case: sha-256...
    value: str  # upper-case hex pairs joined by colons

    @classmethod
    def of_certificate(cls, der: bytes, algorithm: str = "sha-256") -> Fingerprint:
        name = _HASHES.get(algorithm.lower())
        if name is None:
            raise ValueError(f"unsupported fingerprint hash {algorithm}")
        digest = hashlib.new(name, der).hexdigest().upper()
        return cls(algorithm.lower(), ":".join(digest[i:i + 2] for i in range(0, len(digest), 2)))

    def matches(self, der: bytes) -> bool:
        """True when `der` (the peer's certificate) has this fingerprint."""
        return Fingerprint.of_certificate(der, self.algorithm) == self

    def __str__(self) -> str:
        return f"{self.algorithm} {self.value}"


def parse_fingerprint(value: str) -> Fingerprint:
    algorithm, _, digest = value.strip().partition(" ")
    algorithm = algorithm.lower()
    digest = digest.strip()
    if algorithm not in _HASHES:
        raise MsrpParseError(f"a=fingerprint with unsupported hash {algorithm!r}")
    if not _HEX_PAIRS.fullmatch(digest):
        raise MsrpParseError(f"bad a=fingerprint value {digest!r}")
    expected = hashlib.new(_HASHES[algorithm]).digest_size
    if len(digest.split(":")) != expected:
        raise MsrpParseError(f"a=fingerprint {algorithm} needs {expected} bytes")
    return Fingerprint(algorithm, digest.upper())


def media_protocol(path: list[MsrpUri]) -> str:
    """The m-line protocol for our path: TLS when our own URI is msrps."""
    return "TCP/TLS/MSRP" if path[-1].secure else "TCP/MSRP"


def _types(value: str, name: str) -> list[str]:
    types = value.split()
    for item in types:
        if not _MEDIA_TYPE.fullmatch(item):
            raise MsrpParseError(f"bad media type {item!r} in a={name}")
    return types


@dataclass
class MsrpMedia:
    """The MSRP attributes of one m-line."""

    path: list[MsrpUri]
    accept_types: list[str]
    accept_wrapped_types: list[str] = field(default_factory=list)
    setup: Setup | None = None
    fingerprints: list[Fingerprint] = field(default_factory=list)
    max_size: int | None = None

    @property
    def fingerprint(self) -> Fingerprint | None:
        return self.fingerprints[0] if self.fingerprints else None

    def attributes(self) -> list[tuple[str, str | None]]:
        """(name, value) of each a= line, in the usual order."""
        attrs: list[tuple[str, str | None]] = [
            ("accept-types", " ".join(self.accept_types))]
        if self.accept_wrapped_types:
            attrs.append(("accept-wrapped-types", " ".join(self.accept_wrapped_types)))
        if self.max_size is not None:
            attrs.append(("max-size", str(self.max_size)))
        attrs.append(("path", format_path(self.path)))
        if self.setup is not None:
            attrs.append(("setup", str(self.setup)))
        for fingerprint in self.fingerprints:
            attrs.append(("fingerprint", str(fingerprint)))
        return attrs

    @classmethod
    def from_attributes(cls, attributes: Iterable[tuple[str, str | None]]) -> MsrpMedia:
        """Reads a remote m-line's attributes; MsrpParseError says what is missing or wrong
        (a=path and a=accept-types are required)."""
        path: list[MsrpUri] | None = None
        accept_types: list[str] | None = None
        wrapped: list[str] = []
        setup = None
        fingerprints = []
        max_size = None
        for name, value in attributes:
            name = name.lower()
            text = value or ""
            if name == "path":
                path = parse_path(text)
            elif name == "accept-types":
                accept_types = _types(text, name)
            elif name == "accept-wrapped-types":
                wrapped = _types(text, name)
            elif name == "setup":
                setup = parse_setup(text)
            elif name == "fingerprint":
                fingerprints.append(parse_fingerprint(text))
            elif name == "max-size":
                if not text.strip().isdigit():
                    raise MsrpParseError(f"bad a=max-size {text!r}")
                max_size = int(text)
        if not path:
            raise MsrpParseError("the MSRP media line has no a=path")
        if not accept_types:
            raise MsrpParseError("the MSRP media line has no a=accept-types")
        return cls(path, accept_types, wrapped, setup, fingerprints, max_size)
