"""Message summaries (application/simple-message-summary, RFC 3842): whether voicemail is
waiting, and how many messages of each class are new and old.

    Messages-Waiting: yes
    Message-Account: sip:alice@vmail.example.com
    Voice-Message: 2/8 (0/2)

Reading is liberal about case, blanks and lines it does not know (before the optional message
headers that follow an empty line); `Messages-Waiting` must be there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .payload import InvalidInput, PayloadError

__all__ = ["MessageCounts", "MessageSummary", "parse_message_summary",
           "build_message_summary", "MESSAGE_CLASSES"]

# Message context classes (RFC 3458 §4.4, as RFC 3842 §5.2 names them).
MESSAGE_CLASSES = ("voice-message", "fax-message", "pager-message", "multimedia-message",
                   "text-message", "none")
MAX_BYTES = 64 * 1024
MAX_COUNT = 10**9
_COUNTS = re.compile(r"(\d{1,10})\s*/\s*(\d{1,10})(?:\s*\(\s*(\d{1,10})\s*/\s*(\d{1,10})\s*\))?\Z",
                     re.ASCII)


@dataclass(frozen=True)
class MessageCounts:
    new: int
    old: int
    new_urgent: int = 0
    old_urgent: int = 0


@dataclass(frozen=True)
class MessageSummary:
    waiting: bool
    account: str | None = None
    counts: dict[str, MessageCounts] = field(default_factory=dict)

    @property
    def new(self) -> int:
        """New voice messages, or new messages of any class when no voice line is given."""
        voice = self.counts.get("voice-message")
        return voice.new if voice is not None else sum(c.new for c in self.counts.values())

    @property
    def old(self) -> int:
        voice = self.counts.get("voice-message")
        return voice.old if voice is not None else sum(c.old for c in self.counts.values())

    def data(self) -> dict[str, Any]:
        """The `account.message_summary` event's fields (less `account`)."""
        return {"waiting": self.waiting, "new": self.new, "old": self.old,
                "message_account": self.account}


def parse_message_summary(data: bytes) -> MessageSummary:
    if len(data) > MAX_BYTES:
        raise PayloadError(f"message summary is too large ({len(data)} bytes, limit "
                           f"{MAX_BYTES})")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("message summary is not UTF-8 text") from None
    waiting: bool | None = None
    account: str | None = None
    counts: dict[str, MessageCounts] = {}
    for line in re.split(r"\r?\n", text.lstrip("\r\n")):
        if not line.strip():
            break  # the optional message headers follow: not ours to read
        name, colon, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not colon:
            raise PayloadError(f"message summary: the line {line[:60]!r} is not 'name: value'")
        if name == "messages-waiting":
            if value.lower() not in ("yes", "no"):
                raise PayloadError(f"message summary: Messages-Waiting must be yes or no, not "
                                   f"{value[:20]!r}")
            waiting = value.lower() == "yes"
        elif name == "message-account":
            account = value[:1024] or None
        elif name in MESSAGE_CLASSES:
            match = _COUNTS.match(value)
            if match is None:
                raise PayloadError(f"message summary: {name} {value[:40]!r} is not "
                                   f"'new/old (urgent new/urgent old)'")
            numbers = [min(int(g), MAX_COUNT) if g is not None else 0 for g in match.groups()]
            counts[name] = MessageCounts(*numbers)
    if waiting is None:
        raise PayloadError("message summary: the Messages-Waiting line is missing")
    return MessageSummary(waiting, account, counts)


def build_message_summary(summary: MessageSummary) -> bytes:
    account = summary.account
    if account is not None and (any(c in account for c in "\r\n") or not account.strip()):
        raise InvalidInput("account", "must be a URI on one line")
    lines = [f"Messages-Waiting: {'yes' if summary.waiting else 'no'}"]
    if account:
        lines.append(f"Message-Account: {account}")
    for name, counts in summary.counts.items():
        if name not in MESSAGE_CLASSES:
            raise InvalidInput("counts", f"{name!r} is not a message context class")
        line = f"{_class_name(name)}: {counts.new}/{counts.old}"
        if counts.new_urgent or counts.old_urgent:
            line += f" ({counts.new_urgent}/{counts.old_urgent})"
        lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _class_name(name: str) -> str:
    return "-".join(word.capitalize() for word in name.split("-"))
