"""What travels in a chat stream's MSRP messages, built and read (RFC 4975 §8.6, RFC 3862, RFC
3994, RFC 5438).

Outgoing: a message is wrapped in CPIM (From, To, DateTime, imdn.Message-ID and the dispositions
asked for) when the peer's `accept-types` lists message/cpim and either lists nothing else of
use or lists our type only among its `accept-wrapped-types`; otherwise it goes plain, if the
peer takes its type at all. Dispositions are asked for, and sent, only to a peer that takes
message/imdn+xml in CPIM (in its accept-wrapped-types or accept-types). Incoming: a plain
or CPIM-wrapped body is one of a text (any media type), an is-composing indication, a
disposition notification, or protocol to ignore (msrp-node-lib's heartbeat message, an OTR
query). Nothing here does I/O.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..messages.cpim import (
    CPIM_CONTENT_TYPE,
    IMDN_NAMESPACE,
    CPIMError,
    CPIMIdentity,
    CPIMMessage,
    parse_cpim,
)
from ..messages.iscomposing import IsComposing, IsComposingError, parse_iscomposing
from ..messages.timestamps import format_timestamp
from ..msrp.session import media_type_matches
from .imdn import IMDN_CONTENT_TYPE, REQUESTS, Disposition, ImdnError, parse_disposition, requested

ISCOMPOSING_CONTENT_TYPE = "application/im-iscomposing+xml"
# msrp-node-lib sends `HEARTBEAT` in this type every few seconds to a peer whose accept-types
# take text/* or *, and gives the session up when no 200 comes: answered, never shown.
HEARTBEAT_CONTENT_TYPE = "text/x-msrp-heartbeat"
_OTR_QUERY = re.compile(rb"\?OTR(\?|v[0-9]*\?|\?v[0-9]*\?)")  # ?OTR? ?OTRv3? ?OTR?v2?
_PLAIN_ID = re.compile(r"[!-~]{1,128}")  # an imdn.Message-ID written as it is
# What our m-line says we take: anything in CPIM, and the plain types chat clients send.
LOCAL_ACCEPT_TYPES = (CPIM_CONTENT_TYPE, "text/*", ISCOMPOSING_CONTENT_TYPE, IMDN_CONTENT_TYPE)
LOCAL_ACCEPT_WRAPPED_TYPES = ("*",)
DEFAULT_DISPOSITIONS = ("positive-delivery", "negative-delivery", "display")
# Between the DateTime and the imdn.Message-ID of a wrapped message: the fixed lines.
_IMDN_ID = f"\r\nNS: imdn <{IMDN_NAMESPACE}>\r\nimdn.Message-ID: ".encode()


@functools.lru_cache(maxsize=32)
def _asked(dispositions: tuple[str, ...]) -> str:
    """The imdn.Disposition-Notification value asking for `dispositions`."""
    return ", ".join(d for d in dispositions if d in REQUESTS)


class ChatPayloadError(ValueError):
    """A body we cannot send to this peer, or cannot read: the reason says which and why."""


@dataclass(frozen=True)
class Outgoing:
    body: bytes
    content_type: str


@dataclass(frozen=True)
class ChatText:
    """A message for the user (any media type, text or not)."""

    message_id: str
    sender: str | None  # the CPIM From URI; None: plain, the session's remote party
    content_type: str
    content: bytes
    time: datetime.datetime | None
    dispositions: frozenset[str] = field(default_factory=frozenset)  # what the sender asks for


@dataclass(frozen=True)
class Composing:
    sender: str | None
    indication: IsComposing


@dataclass(frozen=True)
class Notice:
    """A disposition notification about one of our messages."""

    sender: str | None
    disposition: Disposition


@dataclass(frozen=True)
class Ignored:
    """A message that is protocol, not content, answered and never shown: a keep-alive sent
    as a message (`heartbeat`, text/x-msrp-heartbeat), or an OTR query (`otr-query`: Blink
    opens every chat with `?OTRv3?  I would like to start an Off-the-Record private
    conversation...`; we do not do OTR, and a peer that gets no answer goes on in clear)."""

    what: str


Incoming = ChatText | Composing | Notice | Ignored


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class ChatPayloads:
    """Builds and reads the bodies of one chat stream, given both identities and what the peer's
    m-line accepts."""

    def __init__(self, local: CPIMIdentity, remote: CPIMIdentity, *,
                 accept_types: Iterable[str], accept_wrapped_types: Iterable[str] = ()) -> None:
        self.local = local
        self.remote = remote
        self.accept_types = [t.lower() for t in accept_types]
        self.accept_wrapped_types = [t.lower() for t in accept_wrapped_types]
        # (content type, dispositions asked, ASCII content) -> the fixed start and end of a
        # wrapped message
        self._message_envelopes: dict[tuple[str, str, bool], tuple[bytes, bytes]] = {}
        self.notifications = self._takes_notifications()  # see there; read per message

    @property
    def cpim(self) -> bool:
        return CPIM_CONTENT_TYPE in self.accept_types

    def _takes_notifications(self) -> bool:
        """The peer can take disposition notifications: in CPIM (RFC 5438 needs its headers),
        with message/imdn+xml among its accept-wrapped-types or its accept-types (RFC 4975
        §8.6: a wrapped type must be one of those). Only then are they asked for or sent."""
        if not self.cpim:
            return False
        plain = [t for t in self.accept_types if t != CPIM_CONTENT_TYPE]
        return media_type_matches(IMDN_CONTENT_TYPE, self.accept_wrapped_types) or \
            media_type_matches(IMDN_CONTENT_TYPE, plain)

    def _wrap(self, content_type: str) -> bool:
        """True: CPIM; False: plain; ChatPayloadError: the peer takes this type in neither way."""
        media = _media(content_type)
        plain = [t for t in self.accept_types if t != CPIM_CONTENT_TYPE]
        if self.cpim and (media_type_matches(media, self.accept_wrapped_types)
                          or not media_type_matches(media, plain)):
            if self.accept_wrapped_types and not media_type_matches(
                    media, self.accept_wrapped_types):
                raise ChatPayloadError(f"the peer does not accept {media} (wrapped types: "
                                       f"{' '.join(self.accept_wrapped_types)})")
            return True
        if media_type_matches(media, plain):
            return False
        raise ChatPayloadError(f"the peer does not accept {media} (it takes: "
                               f"{' '.join(self.accept_types) or 'nothing'})")

    def message(self, content: bytes, content_type: str, *, message_id: str,
                now: datetime.datetime,
                dispositions: Iterable[str] = DEFAULT_DISPOSITIONS) -> Outgoing:
        asked = (_asked(dispositions) if type(dispositions) is tuple else ", ".join(
            d for d in dispositions if d in REQUESTS)) if self.notifications else ""
        key = (content_type, asked, content.isascii())  # ASCII text goes without a charset
        known = self._message_envelopes.get(key)
        if known is not None and _PLAIN_ID.fullmatch(message_id) and now.tzinfo is not None:
            # A type seen before: its envelope's fixed lines are kept (the same bytes
            # CPIMMessage.compose would give; a wrapped chat message is built for each line
            # a user sends, and composing it field by field cost more than the MSRP frame)
            head, tail = known
            # UTC with microseconds: format_timestamp's text, cut from the faster full form
            full = now.isoformat() if now.tzinfo is datetime.UTC else ""
            stamp = full[:23] + full[26:] if len(full) == 32 else format_timestamp(now)
            return Outgoing(b"".join((
                head, stamp.encode(), _IMDN_ID, message_id.encode(), tail, content)),
                CPIM_CONTENT_TYPE)
        if not self._wrap(content_type):
            return Outgoing(content, content_type)
        headers = {"imdn.Message-ID": message_id}
        if asked:
            headers["imdn.Disposition-Notification"] = asked
        outgoing = self._envelope(content, content_type, now, headers)
        if len(self._message_envelopes) < 16:
            envelope = CPIMMessage.compose(content, content_type, sender=self.local,
                                           recipients=self.remote, timestamp=None)
            start = f"From: {envelope.sender}\r\nTo: {envelope.recipients[0]}\r\nDateTime: "
            end = "\r\n" + (f"imdn.Disposition-Notification: {asked}\r\n" if asked else "") \
                + f"\r\nContent-Type: {envelope.content_type}\r\n\r\n"
            self._message_envelopes[key] = (start.encode(), end.encode())
        return outgoing

    def composing(self, indication: IsComposing, now: datetime.datetime) -> Outgoing:
        body = indication.encode()
        if self._wrap(ISCOMPOSING_CONTENT_TYPE):
            return self._envelope(body, ISCOMPOSING_CONTENT_TYPE, now, {})
        return Outgoing(body, ISCOMPOSING_CONTENT_TYPE)

    def notification(self, disposition: Disposition, *, message_id: str,
                     now: datetime.datetime, to: str | None = None) -> Outgoing:
        """A disposition notification: always in CPIM (RFC 5438 §7.1.1 needs its headers),
        to a peer that takes it (`notifications`); `to`: the URI of the message's sender (its
        CPIM From), which the notification goes to; the session's peer when it named none."""
        if not self.cpim:
            raise ChatPayloadError("the peer takes no message/cpim, so no notifications")
        if not self.notifications:
            raise ChatPayloadError(f"the peer takes no {IMDN_CONTENT_TYPE} in CPIM, so no "
                                   f"notifications")
        return self._envelope(disposition.encode(), IMDN_CONTENT_TYPE, now,
                              {"imdn.Message-ID": message_id},
                              content_headers={"Content-Disposition": "notification"},
                              recipient=CPIMIdentity(to) if to else None)

    def _envelope(self, body: bytes, content_type: str, now: datetime.datetime,
                  headers: dict[str, str], *, content_headers: dict[str, str] | None = None,
                  recipient: CPIMIdentity | None = None) -> Outgoing:
        try:
            envelope = CPIMMessage.compose(
                body, content_type, sender=self.local, recipients=recipient or self.remote,
                timestamp=now,
                namespaces={"imdn": IMDN_NAMESPACE} if headers else None, headers=headers,
                content_headers=content_headers)
            return Outgoing(envelope.encode(), CPIM_CONTENT_TYPE)
        except CPIMError as exc:
            raise ChatPayloadError(str(exc)) from None

    def read(self, body: bytes, content_type: str | None, *, message_id: str) -> Incoming:
        """What an incoming MSRP message carries; `message_id` is its MSRP Message-ID, used
        when no imdn.Message-ID names it."""
        media = _media(content_type or "")
        if not media:
            raise ChatPayloadError("a chat message without a Content-Type")
        sender: str | None = None
        time: datetime.datetime | None = None
        dispositions: frozenset[str] = frozenset()
        if media == CPIM_CONTENT_TYPE:
            try:
                envelope = parse_cpim(body)
            except CPIMError as exc:
                raise ChatPayloadError(f"malformed CPIM: {exc}") from None
            sender = envelope.sender.uri if envelope.sender else None
            time = envelope.timestamp
            message_id = envelope.header("Message-ID", IMDN_NAMESPACE) or message_id
            dispositions = requested(envelope.header("Disposition-Notification",
                                                     IMDN_NAMESPACE))
            content_type, body = envelope.content_type, envelope.content
            media = envelope.media_type
        if media == HEARTBEAT_CONTENT_TYPE:
            return Ignored("heartbeat")
        if media == "text/plain" and _OTR_QUERY.match(body):
            return Ignored("otr-query")
        if media == ISCOMPOSING_CONTENT_TYPE:
            try:
                return Composing(sender, parse_iscomposing(body))
            except IsComposingError as exc:
                raise ChatPayloadError(f"malformed is-composing: {exc}") from None
        if media == IMDN_CONTENT_TYPE:
            try:
                return Notice(sender, parse_disposition(body))
            except ImdnError as exc:
                raise ChatPayloadError(f"malformed disposition notification: {exc}") from None
        return ChatText(message_id, sender, content_type or media, bytes(body), time,
                        dispositions)
