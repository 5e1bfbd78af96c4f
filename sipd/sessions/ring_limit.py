"""How long a call may ring before sipd gives up on it (a caller or callee that never answers
and never hangs up must not hold a session for ever).

An incoming call is refused at the earlier of two deadlines: its INVITE's Expires (RFC 3261
§13.3.1: 487 when the request expires before a final response) and
`sessions.no_answer_timeout` (480 Temporarily Unavailable, "no answer"). An outgoing call is
cancelled after `sessions.no_answer_timeout`, and its INVITE says so in its Expires (§13.2.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from sipd.sip.message import Request

__all__ = ["RingLimit", "incoming_limit", "outgoing_limit", "expires_header", "NO_ANSWER",
           "EXPIRED"]

NO_ANSWER = "no answer"
EXPIRED = "no answer before the caller's INVITE expired"
MAX_EXPIRES = 2**32 - 1  # RFC 3261 §27: delta-seconds fits 32 bits


@dataclass(frozen=True)
class RingLimit:
    after: float  # seconds from when the call started ringing
    code: int     # the final response an incoming call gets (outgoing: CANCEL)
    reason: str   # the session's reason


def invite_expires(invite: Request) -> int | None:
    """The INVITE's Expires in seconds; None without one (or an unreadable one, which a
    liberal reader ignores rather than refusing the call)."""
    value = invite.headers.get("Expires")
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    return min(int(text), MAX_EXPIRES)


def incoming_limit(invite: Request, no_answer_timeout: float) -> RingLimit | None:
    """When and how an incoming call that rings unanswered is refused (None: never)."""
    expires = invite_expires(invite)
    timeout = RingLimit(no_answer_timeout, 480, NO_ANSWER) if no_answer_timeout > 0 else None
    if expires is not None and (timeout is None or expires < timeout.after):
        return RingLimit(float(expires), 487, EXPIRED)
    return timeout


def outgoing_limit(no_answer_timeout: float) -> RingLimit | None:
    """When an outgoing call nobody answers is cancelled (None: never)."""
    if no_answer_timeout <= 0:
        return None
    return RingLimit(no_answer_timeout, 487, NO_ANSWER)


def expires_header(limit: RingLimit | None) -> list[tuple[str, str]]:
    """The Expires of our INVITE: how long we let it ring (§13.2.1)."""
    return [] if limit is None else [("Expires", str(int(limit.after)))]
