"""RFC 4028 session timers of one INVITE session, sans-I/O: what our INVITEs and 2xx say
(Session-Expires, Min-SE, `Supported: timer`), the negotiation of the interval and of who
refreshes, 422 Session Interval Too Small both ways, and the two deadlines that follow: when
we refresh (half the interval, when the refresher is us) and when the session has expired
(the refresher let it lapse: the interval minus min(32 s, a third), §10).

The InviteSession (sipd.sessions.invite.session) holds one when the call uses session timers
and consults it at each INVITE and 2xx; the trio driver only sleeps until `next_deadline()`.
A refresher parameter names the role in the transaction that carries it: `uac` in a
re-INVITE is its sender, whichever side created the dialog.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sipd.sip.message import Request, Response

__all__ = ["SessionTimerConfig", "SessionTimer", "Due", "EXPIRED"]

EXPIRED = "session timer expired"
TIMER = "timer"


@dataclass(frozen=True)
class SessionTimerConfig:
    interval: int  # the Session-Expires we ask for and grant at most; 0: none of ours
    min_se: int = 90  # the shortest interval we accept (RFC 4028 §5: at least 90 s)


class Due(enum.Enum):
    REFRESH = "refresh"  # send a refresh (a re-INVITE with the offer unchanged)
    EXPIRED = "expired"  # the session expired: BYE


@dataclass(frozen=True)
class _SessionExpires:
    interval: int
    refresher: str | None  # "uac", "uas", or None when the sender left it open


def _delta(text: str) -> int | None:
    value = text.split(";", 1)[0].strip()
    return int(value) if value.isdigit() else None


def session_expires(message: Request | Response) -> _SessionExpires | None:
    """Session-Expires of a message (None without one, or an unreadable one)."""
    text = message.headers.get("Session-Expires")
    if text is None:
        return None
    interval = _delta(text)
    if interval is None:
        return None
    refresher = None
    for param in text.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "refresher" and value.strip().lower() in ("uac", "uas"):
            refresher = value.strip().lower()
    return _SessionExpires(interval, refresher)


def min_se(message: Request | Response) -> int | None:
    text = message.headers.get("Min-SE")
    return _delta(text) if text is not None else None


def supports_timer(message: Request | Response) -> bool:
    try:
        return TIMER in (tag.lower() for tag in (*message.supported, *message.require))
    except ValueError:  # an unreadable Supported: as if it said nothing
        return False


class SessionTimer:
    """Negotiation and deadlines; `interval` and `we_refresh` say what was agreed (interval
    None: the session has no timer)."""

    def __init__(self, config: SessionTimerConfig) -> None:
        self.config = config
        self.min_se = config.min_se
        self.asked = max(config.interval, self.min_se) if config.interval else 0
        self.interval: int | None = None
        self.we_refresh = False
        self.refresh_at: float | None = None
        self.expire_at: float | None = None
        self._pending: _SessionExpires | None = None  # what our 2xx will say (UAS)

    def __repr__(self) -> str:
        who = "us" if self.we_refresh else "them"
        return f"<SessionTimer {self.interval}s, refreshed by {who}>"

    # -- requests we send: the initial INVITE and re-INVITEs --------------------------------
    def request_headers(self) -> list[tuple[str, str]]:
        """Supported, Session-Expires (with our refresher role once one is agreed: a
        re-INVITE's sender is its uac) and Min-SE for an INVITE we send."""
        headers = [("Supported", TIMER)]
        interval = self.interval or self.asked
        if interval:
            value = str(interval)
            if self.interval is not None:
                value += ";refresher=" + ("uac" if self.we_refresh else "uas")
            headers.append(("Session-Expires", value))
            headers.append(("Min-SE", str(self.min_se)))
        return headers

    def too_small(self, response: Response) -> bool:
        """A 422 to our INVITE: True when asking again with its larger Min-SE may work
        (`request_headers` then ask for it), False when it would not (no larger Min-SE)."""
        wanted = min_se(response)
        if wanted is None or wanted <= self.min_se and (self.interval or self.asked) >= wanted:
            return False
        self.min_se = max(self.min_se, wanted)
        self.asked = max(self.asked, wanted)
        if self.interval is not None:
            self.interval = max(self.interval, wanted)
        return True

    def answered(self, response: Response, now: float) -> None:
        """The 2xx of an INVITE we sent (we are the uac of its transaction): without
        Session-Expires the session has no timer (§7.2); with one, its refresher refreshes
        (none named: us)."""
        expires = session_expires(response)
        if expires is None or expires.interval <= 0:
            self._stop()
            return
        self._start(expires.interval, expires.refresher != "uas", now)

    # -- requests we receive ------------------------------------------------------------------
    def check(self, request: Request) -> tuple[int, str, list[tuple[str, str]]] | None:
        """A 422 (status, reason, headers) for an INVITE whose interval is below our Min-SE;
        None when it may be taken (then `received` chooses what our 2xx says)."""
        expires = session_expires(request)
        if expires is not None and expires.interval < self.min_se:
            return 422, "Session Interval Too Small", [("Min-SE", str(self.min_se))]
        return None

    def received(self, request: Request) -> None:
        """An INVITE we will answer (we are the uas of its transaction): the interval is the
        request's (lowered to ours, never below its Min-SE or ours), or ours when it named
        none; its refresher stays, else the caller refreshes when it supports timers, else
        we do (§9)."""
        expires = session_expires(request)
        theirs_min = max(min_se(request) or 0, self.min_se)
        if expires is None:
            if not self.asked:
                self._pending = None
                return
            interval, refresher = max(self.asked, theirs_min), None
        else:
            interval, refresher = expires.interval, expires.refresher
            if self.asked and self.asked < interval:
                interval = max(self.asked, theirs_min)
        if refresher is None:
            refresher = "uac" if supports_timer(request) else "uas"
        self._pending = _SessionExpires(interval, refresher)

    def response_headers(self) -> list[tuple[str, str]]:
        """What our 2xx to that INVITE says: Session-Expires with the refresher, and
        `Require: timer` when the caller is to refresh (§9)."""
        pending = self._pending
        if pending is None:
            return [("Supported", TIMER)]
        headers = [("Supported", TIMER),
                   ("Session-Expires", f"{pending.interval};refresher={pending.refresher}")]
        if pending.refresher == "uac":
            headers.append(("Require", TIMER))
        return headers

    def accepted(self, now: float) -> None:
        """Our 2xx with `response_headers` went out: the new interval runs from now."""
        pending, self._pending = self._pending, None
        if pending is None:
            self._stop()
            return
        self._start(pending.interval, pending.refresher == "uas", now)

    # -- time ---------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.refresh_at, self.expire_at) if d is not None]
        return min(deadlines, default=None)

    def due(self, now: float) -> Due | None:
        """What is due at `now`: EXPIRED once the session has lapsed, REFRESH when we must
        refresh it. The refresh deadline moves on to half the time left (at least a second),
        for when the refresh cannot go now or fails without ending the call; the 2xx of a
        refresh starts a new interval."""
        if self.expire_at is not None and now >= self.expire_at:
            self._stop()
            return Due.EXPIRED
        if self.refresh_at is not None and now >= self.refresh_at:
            left = (self.expire_at - now) if self.expire_at is not None else 2.0
            self.refresh_at = now + max(1.0, left / 2)
            return Due.REFRESH
        return None

    def _start(self, interval: int, we_refresh: bool, now: float) -> None:
        self.interval, self.we_refresh = interval, we_refresh
        if we_refresh:
            self.refresh_at = now + interval / 2
            self.expire_at = now + interval  # our refreshes all failed
        else:
            self.refresh_at = None
            self.expire_at = now + interval - min(32.0, interval / 3)

    def stop(self) -> None:
        """The session is over: nothing more is due."""
        self._stop()

    def _stop(self) -> None:
        self.interval = None
        self.refresh_at = self.expire_at = None
