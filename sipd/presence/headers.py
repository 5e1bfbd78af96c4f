"""Reading the headers of event notification leniently (RFC 6665, RFC 3903): a malformed
parameter costs the parameter, not the request. Each function returns None for what is
absent or unreadable."""

from __future__ import annotations

import re

from sipd.sip.errors import SipParseError
from sipd.sip.header_values import (
    EventHeader,
    SubscriptionState,
    parse_event,
    parse_subscription_state,
)
from sipd.sip.message import Message
from sipd.sip.syntax import Params, is_token

__all__ = ["event_of", "subscription_state_of", "retry_after_of", "expires_of",
           "min_expires_of", "state_expires", "state_retry_after"]

_RETRY_AFTER = re.compile(r"\s*(\d{1,10})")


def event_of(message: Message) -> EventHeader | None:
    try:
        return parse_event(message.headers.get("Event") or "")
    except SipParseError:
        return None


def subscription_state_of(message: Message) -> SubscriptionState | None:
    """The Subscription-State; a good substate with malformed parameters (linphone 5 sends
    `terminated;reason=reason=noresource`) keeps the substate and loses the parameters."""
    text = message.headers.get("Subscription-State")
    if text is None:
        return None
    try:
        return parse_subscription_state(text)
    except SipParseError:
        state = text.split(";", 1)[0].strip()
        return SubscriptionState(state.lower(), Params()) if is_token(state) else None


def state_expires(state: SubscriptionState) -> int | None:
    try:
        return state.expires
    except SipParseError:
        return None


def state_retry_after(state: SubscriptionState) -> int | None:
    try:
        return state.retry_after
    except SipParseError:
        return None


def retry_after_of(message: Message) -> int | None:
    value = message.headers.get("Retry-After")
    match = _RETRY_AFTER.match(value) if value else None
    return int(match.group(1)) if match else None


def expires_of(message: Message) -> int | None:
    try:
        return message.expires
    except SipParseError:
        return None


def min_expires_of(message: Message) -> int | None:
    try:
        return message.min_expires
    except SipParseError:
        return None
