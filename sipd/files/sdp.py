"""The RFC 5547 attributes of a file transfer m-line, as plain (name, value) pairs like
sipd/msrp/sdp.py's MSRP attributes (and beside them on the same `m=message` line):

    ours = FileTransferMedia(FileSelector(...), transfer_id=new_transfer_id(),
                             disposition="attachment", range=FileRange(1001, None))
    for name, value in ours.attributes(): media.add_attribute(name, value)
    theirs = FileTransferMedia.from_attributes((a.name, a.value) for a in remote.attributes)

`a=file-selector` (selector.py), `a=file-transfer-id` (a token; a new one means a new
transfer, the same one a repeated description of the running transfer), `a=file-disposition`
(a token: `render`, the default, or `attachment`), `a=file-date` (creation, modification and
read times, RFC 5322 dates in quotes), `a=file-icon` (a `cid:` URL naming a body part of the
SIP message) and `a=file-range` (`start-stop`, octets counted from 1, stop `*` for "to the
end"). The direction (`a=sendonly`: the offerer pushes; `a=recvonly`: it pulls) is the SDP
model's, not ours.

What decides the transfer (selector, range, transfer id) is read strictly: FileAttributeError
names the attribute. What only decorates it (a date that is not RFC 5322, an icon that is not a
cid: URL) is dropped and noted in `ignored`, so an otherwise good offer is not refused for it.
"""

from __future__ import annotations

import datetime
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from .dates import format_date, parse_date
from .errors import FileAttributeError
from .selector import FileSelector, parse_file_selector

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # RFC 4566 token
_DATE_KINDS = ("creation", "modification", "read")
_DATE_PARAM = re.compile(r'\s*([A-Za-z]+):"([^"]*)"\s*')


@dataclass(frozen=True)
class FileRange:
    """`a=file-range`: octets `start` to `stop` of the file, both counted from 1 and
    included; `stop` None is `*` (to the end)."""

    start: int = 1
    stop: int | None = None

    def __post_init__(self) -> None:
        if self.start < 1:
            raise ValueError("a file range starts at octet 1 or later")
        if self.stop is not None and self.stop < self.start - 1:
            raise ValueError("a file range cannot stop before it starts")

    def resolve(self, size: int) -> FileRange:
        """This range within a file of `size` octets: `*` becomes the last octet.
        FileAttributeError when the range passes the end of the file."""
        stop = size if self.stop is None else self.stop
        if stop > size or self.start > size + 1:
            raise FileAttributeError(f"a=file-range {self} passes the end of the file "
                                     f"({size} bytes)")
        return FileRange(self.start, stop)

    def length(self, size: int) -> int:
        """How many octets of a `size`-octet file the range covers."""
        resolved = self.resolve(size)
        assert resolved.stop is not None
        return resolved.stop - resolved.start + 1

    @property
    def whole(self) -> bool:
        """True for `1-*`, the same as no a=file-range."""
        return self.start == 1 and self.stop is None

    def __str__(self) -> str:
        return f"{self.start}-{'*' if self.stop is None else self.stop}"


def parse_file_range(value: str | None) -> FileRange:
    text = (value or "").strip()
    start, dash, stop = text.partition("-")
    if not dash or not start.isascii() or not start.isdigit() or not (
            stop == "*" or (stop.isascii() and stop.isdigit())):
        raise FileAttributeError(f"bad a=file-range {text!r} (start-stop, stop a number or *)")
    try:
        return FileRange(int(start), None if stop == "*" else int(stop))
    except ValueError as exc:
        raise FileAttributeError(f"bad a=file-range {text!r}: {exc}") from None


@dataclass(frozen=True)
class FileDate:
    """`a=file-date`: any of the three times the sender knows."""

    creation: datetime.datetime | None = None
    modification: datetime.datetime | None = None
    read: datetime.datetime | None = None

    def value(self) -> str:
        items = []
        for kind in _DATE_KINDS:
            when = getattr(self, kind)
            if when is not None:
                items.append(f'{kind}:"{format_date(when)}"')
        return " ".join(items)

    @property
    def empty(self) -> bool:
        return self.creation is None and self.modification is None and self.read is None


def parse_file_date(value: str | None) -> FileDate:
    """`creation:"Mon, 10 Nov 2008 10:00:00 +0000" modification:"..."`; unknown kinds are
    ignored, a date that is not RFC 5322 is an error."""
    text = (value or "").strip()
    dates: dict[str, datetime.datetime] = {}
    position = 0
    while position < len(text):
        match = _DATE_PARAM.match(text, position)
        if match is None:
            raise FileAttributeError(f"bad a=file-date {text!r} (kind:\"RFC 5322 date\")")
        position = match.end()
        kind, raw = match.group(1).lower(), match.group(2)
        if kind not in _DATE_KINDS:
            continue
        try:
            dates[kind] = parse_date(raw)
        except ValueError:
            raise FileAttributeError(f"a=file-date {kind} {raw!r} is not an RFC 5322 date") \
                from None
    return FileDate(**dates)


def new_transfer_id() -> str:
    """A fresh a=file-transfer-id: random, so no two transfers share one."""
    return secrets.token_hex(16)


@dataclass
class FileTransferMedia:
    """The RFC 5547 attributes of one m-line."""

    selector: FileSelector
    transfer_id: str | None = None
    disposition: str | None = None
    date: FileDate | None = None
    icon: str | None = None  # cid: URL
    range: FileRange | None = None
    ignored: list[str] = field(default_factory=list)  # decorations dropped on input, why

    def attributes(self) -> list[tuple[str, str | None]]:
        """(name, value) of each a= line, in the RFC's order."""
        attrs: list[tuple[str, str | None]] = [("file-selector", self.selector.value() or None)]
        if self.transfer_id is not None:
            attrs.append(("file-transfer-id", self.transfer_id))
        if self.disposition is not None:
            attrs.append(("file-disposition", self.disposition))
        if self.date is not None and not self.date.empty:
            attrs.append(("file-date", self.date.value()))
        if self.icon is not None:
            attrs.append(("file-icon", self.icon))
        if self.range is not None and not self.range.whole:
            attrs.append(("file-range", str(self.range)))
        return attrs

    @classmethod
    def from_attributes(cls, attributes: Iterable[tuple[str, str | None]]) -> FileTransferMedia:
        """Reads an m-line's attributes; FileAttributeError when a=file-selector is missing or
        one of selector, range, transfer id is wrong (see the module's documentation)."""
        selector: FileSelector | None = None
        media = cls(FileSelector())
        for name, value in attributes:
            name = name.lower()
            text = (value or "").strip()
            if name == "file-selector":
                if selector is not None:
                    raise FileAttributeError("two a=file-selector on one media line")
                selector = parse_file_selector(text)
            elif name == "file-transfer-id":
                if not _TOKEN.fullmatch(text):
                    raise FileAttributeError(f"bad a=file-transfer-id {text!r} (a token)")
                media.transfer_id = text
            elif name == "file-disposition":
                if _TOKEN.fullmatch(text):
                    media.disposition = text.lower()
                else:
                    media.ignored.append(f"a=file-disposition {text!r} is not a token")
            elif name == "file-date":
                try:
                    media.date = parse_file_date(text)
                except FileAttributeError as exc:
                    media.ignored.append(str(exc))
            elif name == "file-icon":
                if text.lower().startswith("cid:") and len(text) > 4:
                    media.icon = text
                else:
                    media.ignored.append(f"a=file-icon {text!r} is not a cid: URL")
            elif name == "file-range":
                media.range = parse_file_range(text)
        if selector is None:
            raise FileAttributeError("the media line has no a=file-selector")
        media.selector = selector
        if media.range is not None and selector.size is not None:
            media.range.resolve(selector.size)  # a range past the end is an error
        return media
