"""The next located target of an outgoing INVITE (RFC 3263 §4.3), for the back-to-back call
(sipd.sessions.session).

RFC 3263 locates a list of targets (SRV records, several addresses); a call goes to the
first. When that INVITE fails with a transport error, a timeout of its transaction (no answer
at all: the server is down or unreachable), or a 503 (the server is overloaded or in
maintenance), before anything rang, the same call is placed at the next target instead of
failing, and the failed target is marked with the locator (sipd.accounts.outbound does the
same for REGISTER and MESSAGE, and the locator puts marked targets last for a while).

Only those failures move on: a 408, 500 or 504 that a server sent is the answer of the
callee's side (it rang nowhere, or nobody took the call), which another server of the same
domain would give as well; and once a 180/183 came, or the user hung up, the call is no
longer ours to place again. The user sees one call: "calling" until a target answers, and
the last target's failure when none does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from sipd.sip.trio.locator import Target
from sipd.sip.uri import SipUri

from .invite.events import SessionState, StateChanged

if TYPE_CHECKING:  # pragma: no cover
    from .driver import LegDriver

log = logging.getLogger(__name__)

#: What the failure of an INVITE that got no final response stands for: a timeout (408) or
#: a transport error (503, RFC 3261 §8.1.3.1). Of the responses only 503 moves on.
_UNANSWERED = frozenset({408, 503})
_MOVES_ON = frozenset({503})


@dataclass
class _Attempts:
    to: SipUri
    targets: Sequence[Target]
    index: int = 0
    may_move: bool = True  # nothing rang yet, and the user did not hang up

    @property
    def current(self) -> Target:
        return self.targets[self.index]


class InviteFailover:
    """Where a session's outgoing INVITE goes: the first located target, then the next ones
    while the failures allow it. `send_invite(to, target)` places the INVITE anew (it makes
    the session's new outside leg); the locator learns which targets failed."""

    def __init__(self, session_id: str, locator: Any,
                 send_invite: Callable[[SipUri, Target], None]) -> None:
        self._session_id = session_id
        self._locator = locator
        self._send_invite = send_invite
        self._attempts: _Attempts | None = None

    def first_target(self, to: SipUri, targets: Sequence[Target]) -> Target:
        """The target of the first INVITE; `moves_on` may move on to the others."""
        self._attempts = _Attempts(to, list(targets))
        return targets[0]

    def moves_on(self, leg: LegDriver, current: LegDriver | None,
                 action: StateChanged) -> bool:
        """Whether a state of the outside leg `leg` is not the session's: one of an earlier
        attempt's leg (`current` is the latest), or the failure that sends the INVITE on to
        the next target (the session then has a new outside leg)."""
        attempts = self._attempts
        if attempts is None:
            return False  # an incoming call
        if leg is not current:
            return True  # an earlier attempt (a late 2xx is ACKed and ended on its own)
        state = action.state
        if state is SessionState.CALLING:
            return False
        if state is not SessionState.FAILED:
            if state in (SessionState.RINGING, SessionState.EARLY, SessionState.ESTABLISHED) \
                    and attempts.may_move:
                self._locator.mark_succeeded(attempts.current)
            attempts.may_move = False
            return False
        if not attempts.may_move or attempts.index + 1 >= len(attempts.targets):
            return False
        final = leg.session.invite_final
        if final is None and action.code not in _UNANSWERED:
            return False
        if final is not None and final.status not in _MOVES_ON:
            return False
        failed = attempts.current
        self._locator.mark_failed(failed)
        attempts.index += 1
        detail = " ".join(str(p) for p in (action.code, action.reason) if p is not None)
        log.info("session %s: the INVITE to %s failed (%s); trying %s", self._session_id,
                 failed, detail, attempts.current)
        try:
            self._send_invite(attempts.to, attempts.current)
        except Exception:  # noqa: BLE001 - then the first failure stands
            log.exception("session %s: cannot place the call at %s", self._session_id,
                          attempts.current)
            return False
        return True
