"""One-time login codes: what `sipctl web` puts in a link instead of the daemon's token.

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
        self._expiry: dict[str, float] = {}  # code -> when it stops working (insertion order)

    def issue(self, now: float) -> str:
        self._forget_expired(now)
        while len(self._expiry) >= self.max_pending:
            del self._expiry[next(iter(self._expiry))]
        code = secrets.token_urlsafe(24)
        self._expiry[code] = now + self.lifetime
        return code

    def redeem(self, offered: str, now: float) -> bool:
        """True once for a code issued and not expired; it is spent either way it matched."""
        self._forget_expired(now)
        for code in list(self._expiry):
            if hmac.compare_digest(code.encode(), offered.encode()):
                del self._expiry[code]
                return True
        return False

    def _forget_expired(self, now: float) -> None:
        for code, expiry in list(self._expiry.items()):
            if expiry <= now:
                del self._expiry[code]
