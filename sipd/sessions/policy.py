"""What sessions take from the settings: how long a call may ring, how many incoming calls are
taken at once, the session timer intervals. Read when used, so a change applies to the next
call (and nothing needs a restart)."""

from __future__ import annotations

from typing import Any, Callable

from sipd.settings.schema import lookup

from .invite.timer import SessionTimerConfig

__all__ = ["SessionPolicy"]

Get = Callable[[str], Any]


def _default(key: str) -> Any:
    return lookup(key).default


class SessionPolicy:
    """The sessions.* and sip.* session timer settings; the schema's defaults without a
    settings store (the unit tests' sessions)."""

    def __init__(self, get: Get | None = None) -> None:
        self._get: Get = get if get is not None else _default

    @property
    def no_answer_timeout(self) -> float:
        """Seconds a call may ring unanswered (0: for ever)."""
        return float(self._get("sessions.no_answer_timeout"))

    @property
    def max_incoming(self) -> int:
        return int(self._get("sessions.max_incoming"))

    @property
    def max_incoming_per_account(self) -> int:
        return int(self._get("sessions.max_incoming_per_account"))

    @property
    def session_expires(self) -> int:
        """The session interval we ask for (0: we ask for none)."""
        return int(self._get("sip.session_expires"))

    @property
    def min_se(self) -> int:
        return int(self._get("sip.min_se"))

    def session_timer(self) -> SessionTimerConfig:
        """RFC 4028 session timers of a call's outside leg (sipd.sessions.invite.timer)."""
        return SessionTimerConfig(self.session_expires, self.min_se)
