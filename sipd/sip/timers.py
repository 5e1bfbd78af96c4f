"""SIP timer values (RFC 3261 §17 and Table 4, RFC 6026 for L and M).

Only T1, T2 and T4 are settings; every other timer derives from them. Times are seconds as
floats on whatever monotonic clock the caller uses (`trio.current_time()` say): the protocol
core never reads a clock, it is given `now`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimerSettings:
    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # cap on non-INVITE request and INVITE response retransmit intervals
    t4: float = 5.0  # how long a message may stay in the network

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError(f"timers need 0 < T1 <= T2, got T1={self.t1} T2={self.t2}")
        if self.t4 <= 0:
            raise ValueError(f"T4 must be positive, got {self.t4}")

    @property
    def transaction_timeout(self) -> float:
        """64*T1: timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        """How long an INVITE client transaction absorbs retransmitted non-2xx finals over an
        unreliable transport: at least 32 s (RFC 3261 Table 4)."""
        return max(32.0, self.transaction_timeout)


DEFAULT_TIMERS = TimerSettings()
