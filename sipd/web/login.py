"""One-time codes: what `sipctl web` puts in a link instead of the daemon's token, and what a
received file's download link carries (bound to that one file's session, its `subject`).

A code is good once and for a short time, so the link can sit in a terminal's scrollback or a
browser's history without opening the daemon to whoever finds it later. Time is an input.
"""

from __future__ import annotations

import hmac
import secrets

CODE_LIFETIME = 120.0  # seconds: enough to click a link just printed
MAX_PENDING = 16  # codes waiting at once; the oldest goes first


class LoginCodes:
    def __init__(self, lifetime: float = CODE_LIFETIME, max_pending: int = MAX_PENDING) -> None:
        self.lifetime = lifetime
        self.max_pending = max_pending
        # code -> when it stops working, and what it is for (insertion order)
        self._expiry: dict[str, tuple[float, str]] = {}

    def issue(self, now: float, subject: str = "") -> str:
        self._forget_expired(now)
        while len(self._expiry) >= self.max_pending:
            del self._expiry[next(iter(self._expiry))]
        code = secrets.token_urlsafe(24)
        self._expiry[code] = (now + self.lifetime, subject)
        return code

    def redeem(self, offered: str, now: float, subject: str = "") -> bool:
        """True once for a code issued for `subject` and not expired; it is spent whenever it
        matched, also when it was for another subject."""
        self._forget_expired(now)
        for code, (_expiry, issued_for) in list(self._expiry.items()):
            if hmac.compare_digest(code.encode(), offered.encode()):
                del self._expiry[code]
                return hmac.compare_digest(issued_for.encode(), subject.encode())
        return False

    def _forget_expired(self, now: float) -> None:
        for code, (expiry, _subject) in list(self._expiry.items()):
            if expiry <= now:
                del self._expiry[code]
