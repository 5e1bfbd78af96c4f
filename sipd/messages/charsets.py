"""Text bodies and their `charset` parameter (RFC 2046 §4.1.2).

Python's codec registry knows more than character sets: it would "decode" a body labelled
`charset=unicode_escape` or `idna`. Only names that are character sets are accepted here.
"""

from __future__ import annotations

import codecs

DEFAULT_CHARSET = "utf-8"

# Codecs Python resolves by name that are not character sets anyone labels text with.
_NOT_CHARSETS = frozenset({
    "idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined", "charmap",
    "mbcs", "oem",
})


class CharsetError(ValueError):
    """A text body cannot be turned into text (or text into a body)."""


class UnknownCharset(CharsetError):
    """The charset names no character set we know; `charset` is the name as given."""

    def __init__(self, charset: str) -> None:
        super().__init__(f"unknown charset {charset!r}")
        self.charset = charset


class UndecodableText(CharsetError):
    """The bytes are not valid in the charset the body is labelled with."""


def _codec(charset: str) -> codecs.CodecInfo:
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        raise UnknownCharset(charset) from None
    # Transforms (base64, rot13, zlib...) resolve too; they are not text encodings.
    if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        raise UnknownCharset(charset)
    return info


def decode_text(body: bytes, charset: str | None) -> str:
    """`body` as text; `charset` None means UTF-8 (a superset of RFC 2046's US-ASCII
    default, and what every IM client sends). A UTF-8 byte order mark is dropped."""
    name = (charset or DEFAULT_CHARSET).strip()
    info = _codec(name)
    try:
        text, _ = info.decode(bytes(body), "strict")
    except (UnicodeError, ValueError) as exc:
        raise UndecodableText(f"body is not valid {name}: {exc}") from None
    if text.startswith("\ufeff") and info.name == "utf-8":
        text = text[1:]
    return text


def encode_text(text: str, charset: str | None) -> bytes:
    name = (charset or DEFAULT_CHARSET).strip()
    info = _codec(name)
    try:
        data, _ = info.encode(text, "strict")
    except (UnicodeError, ValueError) as exc:
        raise UndecodableText(f"text cannot be encoded in {name}: {exc}") from None
    return data
