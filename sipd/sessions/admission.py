"""Whether a new incoming call is taken: at most `sessions.max_incoming_per_account` incoming
calls per account (486 Busy Here past it: that account is busy) and `sessions.max_incoming` in
all (503 with Retry-After: the daemon is, whoever is called). A flood of INVITEs then costs a
response each, not a session each. Calls being set up, ringing or established count; ended
ones do not (they linger a while for retransmissions only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from .policy import SessionPolicy

log = logging.getLogger(__name__)

__all__ = ["Refusal", "IncomingAdmission", "RETRY_AFTER"]

RETRY_AFTER = 30  # seconds a caller refused for the total cap is asked to wait
LOG_EVERY = 10.0  # seconds between log lines about refused calls (a flood is one line)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


class IncomingAdmission:
    def __init__(self, policy: SessionPolicy) -> None:
        self.policy = policy
        self.refused = 0  # since the last log line
        self._logged_at: float | None = None

    def refusal(self, incoming: Iterable[str], account_id: str, now: float
                ) -> Refusal | None:
        """None when a new incoming call for `account_id` may be taken, else how to refuse
        it. `incoming`: the account ids of the incoming calls not yet over; `now` (any
        monotonic clock) paces the log lines."""
        total = mine = 0
        for account in incoming:
            total += 1
            if account == account_id:
                mine += 1
        refusal, why = None, ""
        if total >= self.policy.max_incoming:
            refusal = Refusal(503, "Service Unavailable", (("Retry-After", str(RETRY_AFTER)),))
            why = f"{total} incoming calls (sessions.max_incoming)"
        elif mine >= self.policy.max_incoming_per_account:
            refusal = Refusal(486, "Busy Here")
            why = f"{mine} incoming calls for account {account_id} " \
                  f"(sessions.max_incoming_per_account)"
        if refusal is None:
            return None
        self.refused += 1
        if self._logged_at is None or now - self._logged_at >= LOG_EVERY:
            log.warning("refusing incoming calls (%d since the last report): %s", self.refused,
                        why)
            self._logged_at, self.refused = now, 0
        return refusal
