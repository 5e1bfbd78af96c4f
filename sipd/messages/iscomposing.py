"""Is-composing indications (RFC 3994, application/im-iscomposing+xml): the payload, and the
two small state machines around it.

    <?xml version="1.0" encoding="UTF-8"?>
    <isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">
      <state>active</state>
      <contenttype>text/plain</contenttype>
      <refresh>60</refresh>
    </isComposing>

`ComposingIndicator` is the sender side: fed "the user typed" and the clock, it says when to
send `active` (on the first keystroke, and again before the refresh interval runs out while
the user keeps typing) and `idle` (after `idle_timeout` seconds without typing).
`ComposingReceiver` is the receiver side: an `active` indication holds for its refresh
interval (120 s when it names none) and then lapses to idle; an `idle` indication or an actual
message ends it at once. Both are sans-I/O in the h11 manner: every input takes an explicit
`now` (seconds on a monotonic clock), outputs are returned, and `next_deadline()` tells the I/O
layer when to call `tick(now)`.

Parsing goes through `sipd.messages.xml.parse_xml`: documents with a DTD (billion laughs,
external entities) are refused before anything in them is looked at.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from lxml import etree

from ..sip.errors import SipParseError
from ..sip.header_values import parse_media_type
from ..sip.syntax import is_token
from .timestamps import format_timestamp, parse_timestamp
from .xml import XMLPayloadError, parse_xml

ISCOMPOSING_CONTENT_TYPE = "application/im-iscomposing+xml"
ISCOMPOSING_NAMESPACE = "urn:ietf:params:xml:ns:im-iscomposing"
MAX_DOCUMENT_BYTES = 16 * 1024  # a real indication is a few hundred bytes

# Timers of RFC 3994 §3.2 (composer) and §3.3 (receiver).
IDLE_TIMEOUT = 15.0  # seconds without typing before the composer sends idle
SENDER_REFRESH = 60  # refresh interval the composer announces with active
RECEIVER_REFRESH = 120  # how long an active indication without <refresh> holds
REFRESH_MARGIN = 5.0  # resend active this long before the announced interval runs out
MAX_RECEIVER_REFRESH = 600  # cap on a peer's refresh, so "typing..." cannot stick for hours

State = Literal["active", "idle"]


class IsComposingError(ValueError):
    """An is-composing document is malformed, hostile or invalid; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IsComposing:
    """One indication. `refresh` (seconds) only means something with state active."""

    state: State
    last_active: datetime.datetime | None = None
    content_type: str | None = None
    refresh: int | None = None

    def __post_init__(self) -> None:
        if self.state not in ("active", "idle"):
            raise IsComposingError(f"state must be 'active' or 'idle', not {self.state!r}")
        if self.refresh is not None and (
                isinstance(self.refresh, bool) or not isinstance(self.refresh, int)
                or self.refresh <= 0):
            raise IsComposingError(f"refresh must be a positive number of seconds, "
                                   f"not {self.refresh!r}")
        if self.last_active is not None and self.last_active.utcoffset() is None:
            raise IsComposingError("lastactive must be timezone-aware")
        if self.content_type is not None:
            _check_media_type(self.content_type)

    def encode(self) -> bytes:
        def child(name: str, text: str) -> None:
            etree.SubElement(root, f"{{{ISCOMPOSING_NAMESPACE}}}{name}").text = text

        root = etree.Element(f"{{{ISCOMPOSING_NAMESPACE}}}isComposing",
                             nsmap={None: ISCOMPOSING_NAMESPACE})
        child("state", self.state)  # the schema's order: state, lastactive, contenttype, refresh
        if self.last_active is not None:
            child("lastactive", format_timestamp(self.last_active))
        if self.content_type is not None:
            child("contenttype", self.content_type)
        if self.refresh is not None:
            child("refresh", str(self.refresh))
        body = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def parse_iscomposing(data: bytes) -> IsComposing:
    """Reads an application/im-iscomposing+xml body; IsComposingError, and only that, when it
    is not one. A root without namespace is accepted (some clients omit it); elements of other
    namespaces are extensions and are ignored."""
    try:
        root = parse_xml(data, max_bytes=MAX_DOCUMENT_BYTES)
    except XMLPayloadError as exc:
        raise IsComposingError(str(exc)) from None
    qname = etree.QName(root)
    if qname.localname != "isComposing" or qname.namespace not in (ISCOMPOSING_NAMESPACE, None):
        raise IsComposingError(f"root element is {root.tag!r}, not isComposing")
    values: dict[str, str] = {}
    for element in root:
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        name = etree.QName(element)
        if name.namespace != qname.namespace:
            continue  # an extension
        if name.localname in values:
            raise IsComposingError(f"more than one <{name.localname}>")
        if len(element):
            raise IsComposingError(f"<{name.localname}> must hold text, not elements")
        values[name.localname] = (element.text or "").strip()

    state = values.get("state")
    if state is None:
        raise IsComposingError("no <state>")
    if state not in ("active", "idle"):
        raise IsComposingError(f"<state> must be 'active' or 'idle', not {state[:40]!r}")
    refresh = None
    if "refresh" in values:
        text = values["refresh"]
        if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) == 0:
            raise IsComposingError(f"<refresh> is not a positive integer: {text[:40]!r}")
        refresh = int(text)
    last_active = None
    if "lastactive" in values:
        try:
            last_active = parse_timestamp(values["lastactive"])
        except ValueError as exc:
            raise IsComposingError(f"<lastactive>: {exc}") from None
    content_type = values.get("contenttype") or None
    return IsComposing(state, last_active, content_type, refresh)  # type: ignore[arg-type]


def _check_media_type(value: str) -> None:
    """A media type, or just its top-level type (`audio`), which RFC 3994 §3.4 allows."""
    if is_token(value):
        return
    try:
        parse_media_type(value, "contenttype")
    except SipParseError as exc:
        raise IsComposingError(f"<contenttype> is not a media type: {exc.detail}") from None


# --- sender side -------------------------------------------------------------------------

class ComposingIndicator:
    """When to tell the peer that our user is composing (RFC 3994 §3.2).

    Call `typed(now)` on every keystroke, `message_sent(now)` when the message goes out (its
    arrival tells the peer composition is over, so no idle is sent), `cleared(now)` when the
    user abandons the draft, and `tick(now)` at `next_deadline()`. Each returns the
    indication to send now, or None.
    """

    def __init__(self, *, content_type: str | None = "text/plain",
                 idle_timeout: float = IDLE_TIMEOUT, refresh: int = SENDER_REFRESH,
                 refresh_margin: float = REFRESH_MARGIN) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh <= 0:
            raise ValueError("refresh must be a positive whole number of seconds")
        if not 0 <= refresh_margin < refresh:
            raise ValueError("refresh_margin must be at least 0 and less than refresh")
        self.content_type = content_type
        self.idle_timeout = idle_timeout
        self.refresh = refresh
        self.refresh_margin = refresh_margin
        self.state: State = "idle"
        self.last_typed: float | None = None  # monotonic time of the last keystroke
        self._refresh_due: float | None = None

    def typed(self, now: float) -> IsComposing | None:
        self.last_typed = now
        if self.state == "idle" or (self._refresh_due is not None and now >= self._refresh_due):
            return self._active(now)
        return None

    def message_sent(self, now: float) -> None:
        self._idle()

    def cleared(self, now: float) -> IsComposing | None:
        if self.state == "idle":
            return None
        self._idle()
        return IsComposing("idle", content_type=self.content_type)

    def tick(self, now: float) -> IsComposing | None:
        if self.state != "active":
            return None
        assert self.last_typed is not None and self._refresh_due is not None
        if now >= self.last_typed + self.idle_timeout:
            return self.cleared(now)
        if now >= self._refresh_due:
            return self._active(now)
        return None

    def next_deadline(self) -> float | None:
        if self.state != "active":
            return None
        assert self.last_typed is not None and self._refresh_due is not None
        return min(self.last_typed + self.idle_timeout, self._refresh_due)

    def _active(self, now: float) -> IsComposing:
        self.state = "active"
        self._refresh_due = now + self.refresh - self.refresh_margin
        return IsComposing("active", content_type=self.content_type, refresh=self.refresh)

    def _idle(self) -> None:
        self.state = "idle"
        self._refresh_due = None


# --- receiver side -----------------------------------------------------------------------

@dataclass(frozen=True)
class ComposingChange:
    """The peer's composing state changed. `reason`: "indication" (it said so), "message"
    (its message arrived), "timeout" (an active indication was not refreshed in time)."""

    state: State
    content_type: str | None
    last_active: datetime.datetime | None
    reason: Literal["indication", "message", "timeout"]


class ComposingReceiver:
    """What the peer is doing (RFC 3994 §3.3). Feed it `indication(ind, now)` for every
    is-composing received, `message_received(now)` for every real message, and `tick(now)` at
    `next_deadline()`; each returns a ComposingChange when the state changed, else None."""

    def __init__(self, *, default_refresh: int = RECEIVER_REFRESH,
                 max_refresh: int = MAX_RECEIVER_REFRESH) -> None:
        if default_refresh <= 0 or max_refresh <= 0:
            raise ValueError("refresh intervals must be positive")
        self.default_refresh = default_refresh
        self.max_refresh = max_refresh
        self.state: State = "idle"
        self.content_type: str | None = None
        self.last_active: datetime.datetime | None = None
        self._expires: float | None = None

    def indication(self, indication: IsComposing, now: float) -> ComposingChange | None:
        before = (self.state, self.content_type)
        self.state = indication.state
        if indication.content_type is not None or indication.state == "active":
            self.content_type = indication.content_type
        if indication.last_active is not None:
            self.last_active = indication.last_active
        if indication.state == "active":
            refresh = min(indication.refresh or self.default_refresh, self.max_refresh)
            self._expires = now + refresh
        else:
            self._expires = None
        if (self.state, self.content_type) == before:
            return None  # a refresh, or a repeated idle
        return self._change("indication")

    def message_received(self, now: float) -> ComposingChange | None:
        return self._to_idle("message")

    def tick(self, now: float) -> ComposingChange | None:
        if self._expires is not None and now >= self._expires:
            return self._to_idle("timeout")
        return None

    def next_deadline(self) -> float | None:
        return self._expires

    def _to_idle(self, reason: Literal["message", "timeout"]) -> ComposingChange | None:
        self._expires = None
        if self.state == "idle":
            return None
        self.state = "idle"
        return self._change(reason)

    def _change(self, reason: Literal["indication", "message", "timeout"]) -> ComposingChange:
        return ComposingChange(self.state, self.content_type, self.last_active, reason)
