"""How long the presence machines wait: before refreshing, before trying again after a
failure or after the notifier ended a subscription. The knobs, with the defaults sipd uses.

Refreshes follow the registration's rule (sipd.accounts.timing.refresh_delay): at 80 % of the
granted time, or 30 s before it runs out if that comes first, never before half of it. With
the usual hour that is 48 minutes in, 12 minutes to spare, enough for a refresh that times
out (32 s) and a challenge round trip; with a short grant the halfway point keeps half of it
in reserve. The same rule for every refreshed soft state keeps one explanation true, the
spread included: each refresh is brought forward by a random 0..25 % (REFRESH_SPREAD), so that
subscriptions and publications made together (at start, a list of contacts) do not all
refresh in the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sipd.accounts.timing import Backoff, RandomSource, refresh_delay, spread_refresh_delay

__all__ = ["Backoff", "RandomSource", "SubscriptionPolicy", "PublicationPolicy",
           "refresh_delay", "spread_refresh_delay", "retry_after", "SHARED_RNG",
           "REFRESH_SPREAD"]

REFRESH_SPREAD = 0.25

#: The jitter of refreshes and backoffs for machines given no source of their own: one
#: generator for all (each random.Random holds 2.5 KB of state; a daemon holds thousands of
#: subscriptions).
SHARED_RNG: RandomSource = random.Random()


@dataclass(frozen=True)
class SubscriptionPolicy:
    # A SUBSCRIBE that failed for a transient reason (timeout, 408, 480, 5xx, no NOTIFY).
    transient: Backoff = Backoff(5.0, 600.0)
    # The notifier ended the subscription and wants us back (deactivated, timeout, a 481 on
    # refresh): at once the first time, then 2 s doubling, so a notifier that keeps ending
    # subscriptions does not get a SUBSCRIBE loop.
    resubscribe: Backoff = Backoff(2.0, 300.0)
    retry_after_cap: float = 3600.0   # a Retry-After / retry-after longer than this is cut
    max_interval_too_brief: int = 3   # 423 answers in a row before giving up
    max_challenges: int = 3           # 401/407 rounds per request
    max_forks: int = 8                # dialogs one SUBSCRIBE may create (forked NOTIFYs)
    refresh_retry: float = 30.0       # a refresh that failed is tried again this much later


@dataclass(frozen=True)
class PublicationPolicy:
    transient: Backoff = Backoff(5.0, 600.0)
    retry_after_cap: float = 3600.0
    max_interval_too_brief: int = 3
    max_challenges: int = 3
    max_conditional_failures: int = 3  # 412s in a row (republishing each time) before giving up


def retry_after(seconds: int | None, cap: float) -> float | None:
    """A Retry-After (or retry-after parameter) value, cut to `cap`; None when absent."""
    if seconds is None:
        return None
    return min(float(seconds), cap)
