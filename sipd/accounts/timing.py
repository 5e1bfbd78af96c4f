"""How long a registration waits: before refreshing a binding, and before retrying after a
failure (exponential backoff with jitter). Pure functions of their inputs; the random source is
injectable so tests pin the jitter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Backoff", "RegistrationPolicy", "RandomSource", "refresh_delay",
           "spread_refresh_delay"]


class RandomSource(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True)
class Backoff:
    """delay(n) for the n-th consecutive failure (n >= 1): min(cap, base * 2**(n-1)), plus a
    random 0..jitter of that (so many accounts failing together do not retry together)."""
    base: float
    cap: float
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap or not 0 <= self.jitter <= 1:
            raise ValueError(f"need 0 < base <= cap and 0 <= jitter <= 1: {self}")

    def delay(self, failures: int, rng: RandomSource) -> float:
        step = min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, 32))
        return step * (1.0 + self.jitter * rng.random())

    def bounds(self, failures: int) -> tuple[float, float]:
        step = min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, 32))
        return step, step * (1.0 + self.jitter)


@dataclass(frozen=True)
class RegistrationPolicy:
    """The knobs of a Registration; the defaults are what sipd uses."""
    transient: Backoff = Backoff(30.0, 600.0)
    permanent: Backoff = Backoff(300.0, 3600.0)
    retry_after_cap: float = 3600.0      # a 503 Retry-After longer than this is cut to it
    max_challenges: int = 3              # challenge rounds per REGISTER (stale nonces)
    max_interval_too_brief: int = 3      # 423 answers in a row before giving up
    response_timeout: float = 40.0       # guard, should the transaction layer never report
    unregister_wait: float = 5.0         # default bound of stop()
    # A refresh comes up to this share of refresh_delay() early, at random: accounts
    # registered together (a daemon starting with 10,000) do not all refresh together.
    refresh_spread: float = 0.25


def refresh_delay(granted: int) -> float:
    """Seconds after a 2xx to refresh a binding granted for `granted` seconds: at 80 % of it
    or 30 s before expiry, whichever is earlier, but not before half of it, nor before 5 s
    (or the expiry itself, if the registrar grants less than that)."""
    return max(granted / 2.0, min(granted * 0.8, granted - 30.0), min(5.0, float(granted)))


def spread_refresh_delay(granted: int, rng: RandomSource, spread: float) -> float:
    """refresh_delay(granted), brought forward by a random 0..`spread` of itself: the
    refreshes of accounts registered in one burst spread over a quarter of the refresh
    interval (by default) and drift further apart with every refresh, as each draws anew."""
    latest = refresh_delay(granted)
    return latest * (1.0 - spread * rng.random())
