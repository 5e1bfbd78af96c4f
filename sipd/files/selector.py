"""`a=file-selector` (RFC 5547 §5): which file a transfer is about, and how a pull picks one.

    selector = FileSelector(name="report.pdf", type="application/pdf", size=52114,
                            hash=FileHash.sha1(digest))
    ("file-selector", selector.value())
        -> 'name:"report.pdf" type:application/pdf size:52114 hash:sha-1:72:24:...'
    parse_file_selector('name:"My %22notes%22.txt" size:12')   # name 'My "notes".txt'
    wanted.matches(offered)          # a pull: every field `wanted` gives equals `offered`'s

The name travels quoted, with control characters and `"` percent-encoded (the RFC's
filename-string). A `%` is sent as %25 only where two hex digits follow it: python-sipsimple
(Blink) neither encodes nor decodes names, so `100% done.txt` sent as it is reads right there
and in an RFC reader (which leaves a `%` without hex digits alone), while `%41.txt` needs
%2541 to survive an RFC reader. On input a `%` not followed by two hex digits is taken as it
is, and a `"` inside the name is part of it unless blanks and another selector, or the end,
follow it (python-sipsimple sends `name:"say "hi".txt"` as it is). Every kind is optional
(doubango offers `name:"x" type:application/octet-stream`, no size). Unknown selector kinds
are ignored (later extensions); a kind given twice, an empty name, a size that is not a
number, a hash whose length does not fit its algorithm are errors (FileAttributeError). A
name is only what the peer said: making it safe for a folder is naming.py's business.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from .errors import FileAttributeError

# IANA "Hash Function Textual Names"; RFC 5547 uses sha-1. `sha1` is a spelling some send.
_ALGORITHMS = {"sha-1": "sha1", "sha-224": "sha224", "sha-256": "sha256", "sha-384": "sha384",
               "sha-512": "sha512", "md5": "md5"}
_ALIASES = {"sha1": "sha-1", "sha224": "sha-224", "sha256": "sha-256", "sha384": "sha-384",
            "sha512": "sha-512"}
_HEX = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*")
_TOKEN = re.compile(r"[A-Za-z0-9!#$&\-^_.+]+")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")
_NAME_END = re.compile(r'"(?=[ \t]*$|[ \t]+(?:name|type|size|hash):)', re.IGNORECASE)
MAX_SIZE = 2**63 - 1


@dataclass(frozen=True)
class FileHash:
    """`sha-1:72:24:5F:...`: an algorithm (IANA textual name, lower case) and the digest."""

    algorithm: str
    digest: bytes

    @classmethod
    def sha1(cls, digest: bytes) -> FileHash:
        if len(digest) != 20:
            raise ValueError("a sha-1 digest has 20 bytes")
        return cls("sha-1", digest)

    @property
    def known(self) -> bool:
        """True when we can compute this algorithm (and so check a file against it)."""
        return self.algorithm in _ALGORITHMS

    def new(self) -> hashlib._Hash:
        """A fresh hashlib object of this algorithm (ValueError when unknown)."""
        name = _ALGORITHMS.get(self.algorithm)
        if name is None:
            raise ValueError(f"unsupported hash algorithm {self.algorithm}")
        return hashlib.new(name)

    def __str__(self) -> str:
        return f"{self.algorithm}:" + ":".join(f"{b:02X}" for b in self.digest)


def parse_hash(value: str) -> FileHash:
    """`sha-1:AB:CD:...` (hex digits in either case)."""
    algorithm, sep, digest = value.partition(":")
    algorithm = _ALIASES.get(algorithm.lower(), algorithm.lower())
    if not sep or not _TOKEN.fullmatch(algorithm):
        raise FileAttributeError(f"bad hash {value!r} in a=file-selector (algorithm:hex pairs)")
    if not _HEX.fullmatch(digest):
        raise FileAttributeError(f"bad {algorithm} hash value {digest!r} in a=file-selector "
                                 f"(hex pairs joined by colons)")
    data = bytes.fromhex(digest.replace(":", ""))
    name = _ALGORITHMS.get(algorithm)
    if name is not None and len(data) != hashlib.new(name).digest_size:
        raise FileAttributeError(f"a {algorithm} hash has {hashlib.new(name).digest_size} "
                                 f"bytes, not {len(data)}, in a=file-selector")
    return FileHash(algorithm, data)


def quote_name(name: str) -> str:
    """The filename-string of `name`, quotes included: control characters and `"` as %XX, a
    `%` as %25 only where two hex digits follow it (see the module's documentation)."""
    data = unicodedata.normalize("NFC", name).encode("utf-8")
    out = bytearray()
    for index, byte in enumerate(data):
        if byte < 0x20 or byte in (0x22, 0x7F) or (
                byte == 0x25 and _PERCENT.match(data, index) is not None):
            out += b"%%%02X" % byte
        else:
            out.append(byte)
    return '"' + out.decode("utf-8") + '"'


def selector_value(name: str | None, file_type: str | None, size: int | None,
                   file_hash: object | None) -> str:
    """An a=file-selector value from its parts, those present (`file_hash` as its text
    gives it: `sha-1:AB:...`)."""
    items = []
    if name is not None:
        items.append(f"name:{quote_name(name)}")
    if file_type is not None:
        items.append(f"type:{file_type}")
    if size is not None:
        items.append(f"size:{size}")
    if file_hash is not None:
        items.append(f"hash:{file_hash}")
    return " ".join(items)


def name_end(text: str, start: int) -> int | None:
    """The index of the `"` closing a name that starts at `start` (just past its opening
    quote), or None. The closing quote is the first one followed by the end of the value or
    by blanks and another selector (`type:`, `size:`, `hash:`, `name:`): a `"` inside a name
    that was not percent-encoded (python-sipsimple sends names as they are) is part of it."""
    match = _NAME_END.search(text, start)
    return match.start() if match is not None else None


def unquote_name(text: str) -> str:
    """The name inside a filename-string (without its quotes): %XX decoded, UTF-8 read (bytes
    that are not UTF-8 become U+FFFD), NFC."""
    raw = _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    return unicodedata.normalize("NFC", raw.decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class FileSelector:
    """What `a=file-selector` says; any field may be missing (a pull may give only a name)."""

    name: str | None = None
    type: str | None = None  # "type/subtype" in lower case, then its parameters as given
    size: int | None = None
    hash: FileHash | None = None

    @property
    def media_type(self) -> str | None:
        """The type without its parameters, in lower case."""
        return self.type.split(";", 1)[0].strip().lower() if self.type is not None else None

    @property
    def empty(self) -> bool:
        return self.name is None and self.type is None and self.size is None and self.hash is None

    def value(self) -> str:
        """The attribute's value: name, type, size, hash, those present."""
        return selector_value(self.name, self.type, self.size, self.hash)

    def matches(self, candidate: FileSelector) -> bool:
        """True when `candidate` (a file we have, fully described) is what this selector asks
        for: every field given here is equal in the candidate (names after NFC, media types
        without case, `type/*` any subtype). A selector with no field matches anything."""
        if self.name is not None and (candidate.name is None or unicodedata.normalize(
                "NFC", self.name) != unicodedata.normalize("NFC", candidate.name)):
            return False
        if self.size is not None and self.size != candidate.size:
            return False
        if self.hash is not None and self.hash != candidate.hash:
            return False
        if self.type is not None:
            wanted, have = self.media_type, candidate.media_type
            if have is None or wanted is None:
                return False
            if wanted.endswith("/*"):
                return have.split("/", 1)[0] == wanted[:-2]
            return wanted == have
        return True

    def same_file(self, other: FileSelector) -> bool:
        """True when both describe the same content for resuming: a hash, a size and a name,
        all equal. Without a hash nothing can prove a kept part belongs to the file."""
        return (self.hash is not None and self.hash.known and self.hash == other.hash
                and self.size is not None and self.size == other.size
                and self.name is not None and other.name is not None
                and unicodedata.normalize("NFC", self.name)
                == unicodedata.normalize("NFC", other.name))


def parse_file_selector(value: str | None) -> FileSelector:
    """The value of `a=file-selector` (None or empty: a selector with no field)."""
    text = (value or "").strip()
    fields: dict[str, object] = {}
    position = 0
    while position < len(text):
        if text[position] in " \t":
            position += 1
            continue
        colon = text.find(":", position)
        if colon < 0:
            raise FileAttributeError(f"a=file-selector item {text[position:]!r} has no ':'")
        kind = text[position:colon].lower()
        if kind == "name":
            if not text.startswith('"', colon + 1):
                raise FileAttributeError("a=file-selector name must be quoted (name:\"...\")")
            end = name_end(text, colon + 2)
            if end is None:
                raise FileAttributeError("a=file-selector name has no closing quote")
            raw = text[colon + 2:end]
            position = end + 1
            if not raw:
                raise FileAttributeError("a=file-selector has an empty name")
            item: object = unquote_name(raw)
        elif kind == "type":
            item, position = _read_type(text, colon + 1)
        else:
            end = colon + 1
            while end < len(text) and text[end] not in " \t":
                end += 1
            raw = text[colon + 1:end]
            position = end
            if kind == "size":
                if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_SIZE:
                    raise FileAttributeError(f"bad size {raw!r} in a=file-selector")
                item = int(raw)
            elif kind == "hash":
                item = parse_hash(raw)
            else:
                continue  # a selector kind from a later extension
        if kind in fields:
            raise FileAttributeError(f"a=file-selector gives the {kind} twice")
        fields[kind] = item
    return FileSelector(name=fields.get("name"), type=fields.get("type"),  # type: ignore[arg-type]
                        size=fields.get("size"), hash=fields.get("hash"))  # type: ignore[arg-type]


def _read_type(text: str, start: int) -> tuple[str, int]:
    """`type/subtype` and its `;attr="value"` parameters (quoted values may hold spaces)."""
    position = start
    in_quotes = False
    while position < len(text) and (in_quotes or text[position] not in " \t"):
        if text[position] == '"':
            in_quotes = not in_quotes
        position += 1
    if in_quotes:
        raise FileAttributeError("a=file-selector type has a parameter with no closing quote")
    raw = text[start:position]
    media, sep, params = raw.partition(";")
    major, slash, minor = media.partition("/")
    if not slash or not _TOKEN.fullmatch(major) or not (minor == "*" or _TOKEN.fullmatch(minor)):
        raise FileAttributeError(f"bad type {raw!r} in a=file-selector (type/subtype)")
    return media.lower() + (sep + params if sep else ""), position
