"""What the body of a SIP MESSAGE (RFC 3428, pager mode) is, and what we put in ours.

Accepted bodies (`ACCEPT`, also the Accept header of a 415):
- text/plain, text/html: a message; text/html is passed on as text, rendering (and
  sanitising) it is the client's business;
- message/cpim (RFC 3862): unwrapped; its MIME part must be one of the other three types;
- application/im-iscomposing+xml (RFC 3994): a composing indication, not a message.

Anything else is refused with 415 Unsupported Media Type and the Accept list.

Text is decoded with the charset of its Content-Type, UTF-8 when there is none. Decided:
- a charset we do not know is a format we do not support: 415 (`UnsupportedContent`);
- bytes that are not valid in the declared charset are a broken request: 400
  (`MalformedContent`). Delivering them with replacement characters would show the user a
  corrupted message as if it were what the peer wrote; refusing it tells the sender's client
  that the message did not arrive.
A malformed CPIM envelope or is-composing document is also a 400; a CPIM message that
`Require`s a header we do not understand is refused with 415: the sender said the message
means nothing without it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from ..sip.errors import SipParseError
from ..sip.header_values import MediaType, parse_media_type
from .charsets import CharsetError, UnknownCharset, decode_text, encode_text
from .cpim import (
    CPIM_CONTENT_TYPE,
    DEFAULT_NAMESPACE,
    CPIMCharsetError,
    CPIMError,
    CPIMIdentity,
    CPIMMessage,
    build_cpim,
    parse_cpim,
)
from .iscomposing import (
    ISCOMPOSING_CONTENT_TYPE,
    IsComposing,
    IsComposingError,
    parse_iscomposing,
)

TEXT_TYPES = ("text/plain", "text/html")
ACCEPT = (*TEXT_TYPES, CPIM_CONTENT_TYPE, ISCOMPOSING_CONTENT_TYPE)
CPIM_INNER_TYPES = (*TEXT_TYPES, ISCOMPOSING_CONTENT_TYPE)
# The CPIM headers sipd understands, for Require (RFC 3862).
_UNDERSTOOD = frozenset({"from", "to", "cc", "datetime", "subject", "ns", "require", "required"})


class ContentRejected(Exception):
    """A received MESSAGE body is refused: answer with `status` `reason`. `detail` says what is
    wrong, for the log and (as a Warning or reason phrase) for the sender."""

    status = 400
    reason = "Bad Request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MalformedContent(ContentRejected):
    """The body does not follow the format its Content-Type names (400)."""


class UnsupportedContent(ContentRejected):
    """A type (or charset, or required CPIM extension) we do not handle (415); the response
    carries `Accept: <accept_header>`."""

    status = 415
    reason = "Unsupported Media Type"

    def __init__(self, detail: str, accept: tuple[str, ...] | list[str] = ACCEPT) -> None:
        super().__init__(detail)
        self.accept = list(accept)

    @property
    def accept_header(self) -> str:
        return ", ".join(self.accept)


class OutgoingContentError(ValueError):
    """What `messages.send` was asked to send cannot be encoded as asked."""


@dataclass(frozen=True)
class Received:
    """A message. `content_type` is `type/subtype` (lower case) of the text itself, the inner
    one when it came wrapped in CPIM; `cpim` is the envelope then."""

    content: str
    content_type: str
    cpim: CPIMMessage | None = None

    def event_data(self, *, account: str, sender: str, recipient: str) -> dict[str, Any]:
        """The data of a `message.received` event. `sender` and `recipient` are the SIP From
        and To of the MESSAGE — what the proxy vouched for; the CPIM From/To (which the sender
        wrote itself, and which may name a different originator behind a gateway or
        conference) are under `cpim`."""
        data: dict[str, Any] = {
            "account": account,
            "from": sender,
            "to": recipient,
            "content": self.content,
            "content_type": self.content_type,
        }
        if self.cpim is not None:
            data["cpim"] = self.cpim.as_dict()
        return data


@dataclass(frozen=True)
class Composing:
    """An is-composing indication (not a message); `cpim` when it came wrapped."""

    indication: IsComposing
    cpim: CPIMMessage | None = None


def interpret_message(content_type_header: str, body: bytes) -> Received | Composing:
    """What a MESSAGE with this Content-Type and body is. Raises UnsupportedContent (415) or
    MalformedContent (400), never anything else."""
    body = bytes(body)
    if not content_type_header.strip():
        if body:  # RFC 3261 §20.15: a body needs a Content-Type
            raise MalformedContent("message body has no Content-Type")
        return Received("", "text/plain")
    media = _received_media_type(content_type_header)
    mime = media.mime
    if mime in TEXT_TYPES:
        return Received(_decode(body, media), mime)
    if mime == ISCOMPOSING_CONTENT_TYPE:
        return Composing(_composing(body))
    if mime == CPIM_CONTENT_TYPE:
        return _unwrap(body)
    raise UnsupportedContent(f"content type {mime} is not supported")


def _received_media_type(value: str) -> MediaType:
    try:
        return parse_media_type(value.strip(), "Content-Type")
    except SipParseError as exc:
        raise MalformedContent(exc.detail) from None


def _decode(body: bytes, media: MediaType) -> str:
    try:
        return decode_text(body, media.params.get_unquoted("charset"))
    except UnknownCharset as exc:
        raise UnsupportedContent(str(exc)) from None
    except CharsetError as exc:
        raise MalformedContent(str(exc)) from None


def _composing(body: bytes) -> IsComposing:
    try:
        return parse_iscomposing(body)
    except IsComposingError as exc:
        raise MalformedContent(f"is-composing document: {exc.reason}") from None


def _unwrap(body: bytes) -> Received | Composing:
    try:
        message = parse_cpim(body)
        inner = message.media_type
        text = message.text if inner in TEXT_TYPES else None
    except CPIMCharsetError as exc:
        raise UnsupportedContent(str(exc)) from None
    except CPIMError as exc:
        raise MalformedContent(f"CPIM: {exc.reason}") from None
    not_understood = [name for name in message.required if not _understood(message, name)]
    if not_understood:
        raise UnsupportedContent(f"CPIM message requires unsupported header(s): "
                                 f"{', '.join(not_understood)}")
    if inner in TEXT_TYPES:
        assert text is not None
        return Received(text, inner, message)
    if inner == ISCOMPOSING_CONTENT_TYPE:
        return Composing(_composing(message.content), message)
    raise UnsupportedContent(f"content type {inner} inside message/cpim is not supported",
                             accept=CPIM_INNER_TYPES)


def _understood(message: CPIMMessage, name: str) -> bool:
    prefix, dot, local = name.partition(".")
    if not dot:
        prefix, local = None, name  # type: ignore[assignment]
    return message.namespace_of(prefix) == DEFAULT_NAMESPACE and local.lower() in _UNDERSTOOD


# --- sending -----------------------------------------------------------------------------

def outgoing_body(
    content: str | bytes,
    content_type: str = "text/plain",
    *,
    cpim: bool = False,
    sender: CPIMIdentity | str | None = None,
    recipient: CPIMIdentity | str | None = None,
    now: datetime.datetime | None = None,
) -> tuple[str, bytes]:
    """The Content-Type and body of a MESSAGE carrying `content`.

    Text content is encoded in the charset of `content_type`; a text/* type without one is
    sent as UTF-8 and says so (`text/plain;charset=utf-8`). With `cpim` the part is wrapped in
    message/cpim from `sender` to `recipient`, dated `now` (aware). Raises
    OutgoingContentError when that cannot be done.
    """
    try:
        media = parse_media_type(content_type.strip(), "content_type")
    except SipParseError as exc:
        raise OutgoingContentError(f"invalid content type: {exc.detail}") from None
    is_text = media.type.lower() == "text"
    if is_text and "charset" not in media.params:
        media.params.set("charset", "utf-8")
    if cpim:
        if sender is None or recipient is None or now is None:
            raise OutgoingContentError("a CPIM message needs a sender, a recipient and a time")
        try:
            body = build_cpim(content, str(media), sender=sender, recipients=[recipient],
                              timestamp=now)
        except CPIMError as exc:
            raise OutgoingContentError(exc.reason) from None
        return CPIM_CONTENT_TYPE, body
    if isinstance(content, str):
        try:
            body = encode_text(content, media.params.get_unquoted("charset"))
        except CharsetError as exc:
            raise OutgoingContentError(str(exc)) from None
    else:
        body = bytes(content)
    return str(media), body
