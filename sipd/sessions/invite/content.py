"""Bodies an INVITE session looks at: SDP (kept as opaque bytes here) and DTMF carried in
INFO requests (application/dtmf-relay, the de facto format; application/dtmf)."""

from __future__ import annotations

from sipd.sip.errors import SipParseError
from sipd.sip.message import Message

SDP_TYPE = "application/sdp"
DTMF_RELAY_TYPE = "application/dtmf-relay"
DTMF_TYPE = "application/dtmf"
DTMF_DIGITS = frozenset("0123456789*#ABCD")
DEFAULT_DTMF_DURATION = 250  # ms, when a dtmf-relay body gives none
# Some gateways send the RFC 4733 event numbers instead of the characters.
_EVENT_DIGITS = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}


class BodyError(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sdp_of(message: Message) -> bytes | None:
    """The SDP body of `message`, None when it has no body. A body of another type (or a
    Content-Type that cannot be read) raises BodyError(415)."""
    if not message.body:
        return None
    try:
        content_type = message.content_type
    except SipParseError:
        raise BodyError(415, "Unreadable Content-Type") from None
    if content_type is None or content_type.mime != SDP_TYPE:
        mime = content_type.mime if content_type is not None else "no Content-Type"
        raise BodyError(415, f"Unsupported Media Type ({mime}; only {SDP_TYPE})")
    return message.body


def body_mime(message: Message) -> str | None:
    try:
        content_type = message.content_type
    except SipParseError:
        return None
    return content_type.mime if content_type is not None else None


def parse_dtmf(body: bytes, mime: str) -> tuple[str, int]:
    """(digit, duration ms) of an INFO body: `Signal=5\\r\\nDuration=160` for
    application/dtmf-relay, the bare digit for application/dtmf. Raises BodyError(400)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise BodyError(400, "DTMF body is not ASCII") from None
    if mime == DTMF_TYPE:
        return _digit(text.strip()), DEFAULT_DTMF_DURATION
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if "signal" not in fields:
        raise BodyError(400, "dtmf-relay body without Signal")
    digit = _digit(fields["signal"])
    duration_text = fields.get("duration")
    if duration_text is None:
        return digit, DEFAULT_DTMF_DURATION
    if not duration_text.isascii() or not duration_text.isdigit() or len(duration_text) > 6:
        raise BodyError(400, f"dtmf-relay Duration is not a number: {duration_text[:20]!r}")
    return digit, int(duration_text)


def _digit(value: str) -> str:
    digit = _EVENT_DIGITS.get(value, value.upper())
    if len(digit) != 1 or digit not in DTMF_DIGITS:
        raise BodyError(400, f"not a DTMF digit: {value[:20]!r}")
    return digit


def dtmf_relay_body(digit: str, duration: int) -> bytes:
    """An application/dtmf-relay body for an INFO we send."""
    digit = _digit(digit)
    return f"Signal={digit}\r\nDuration={int(duration)}\r\n".encode("ascii")
