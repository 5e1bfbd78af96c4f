"""File descriptors: the process limit, and one budget every part that accepts connections asks.

Every TCP connection costs the daemon a descriptor, and a flood of idle connections to one port
would otherwise leave none for anything else: not for an RPC client (the only way to see and
fix what is going on), not for saving settings, not for starting a media worker. So the daemon
raises its soft RLIMIT_NOFILE to the hard limit at start, and parts ask the budget before they
take a connection:

- `PEER` connections (SIP now, MSRP and XCAP later: whatever the network can open at will) may
  use the descriptors up to `limit - margin - reserved_for_rpc`;
- `RPC` connections may use the RPC reserve as well, up to `limit - margin`;
- the last `margin` descriptors are left for files, pipes and worker processes.

The budget counts what is really open (/proc/self/fd), so descriptors it never handed out (log
files, media worker channels, sockets of any part) are counted too.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any, Literal

Purpose = Literal["rpc", "peer"]
RPC: Purpose = "rpc"
PEER: Purpose = "peer"

MARGIN = 32           # descriptors no accepted connection may take
MIN_RPC_RESERVE = 32  # descriptors only RPC connections may take, at least
RECOUNT_AFTER = 0.2   # seconds a count is trusted while far from the thresholds


def raise_descriptor_limit() -> tuple[int, int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (the kernel's nr_open when the hard limit
    is unlimited). Returns (soft before, soft now, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else _nr_open()
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft, hard
        return soft, target, hard
    return soft, soft, hard


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as source:
            return int(source.read())
    except (OSError, ValueError):
        return 1024 * 1024


def count_open_descriptors() -> int:
    """How many descriptors this process has open (not counting the one used to look)."""
    return len(os.listdir("/proc/self/fd")) - 1


class DescriptorBudget:
    """The daemon's one budget of file descriptors. `may_accept(purpose)` answers "may I take
    another connection?"; a part that gets no should close the connection at once."""

    def __init__(self, limit: int, *, margin: int = MARGIN, rpc_reserve: int | None = None,
                 count: Callable[[], int] = count_open_descriptors,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.margin = min(margin, limit // 4)
        reserve = rpc_reserve if rpc_reserve is not None else max(MIN_RPC_RESERVE, limit // 16)
        self.reserved_for_rpc = min(reserve, limit // 4)
        self._count = count
        self._clock = clock
        self._counted = 0
        self._counted_at = -float("inf")
        self._asked_since = 0
        self.refused = 0  # connections refused so far, for system.state

    @classmethod
    def for_this_process(cls, **kwargs: Any) -> DescriptorBudget:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = soft if soft != resource.RLIM_INFINITY else _nr_open()
        return cls(limit, **kwargs)

    def threshold(self, purpose: Purpose) -> int:
        """How many descriptors may be open for a connection of this purpose to be taken."""
        ceiling = self.limit - self.margin
        return ceiling if purpose == RPC else ceiling - self.reserved_for_rpc

    def open_now(self) -> int:
        """The count of open descriptors. A count is reused only while it was far below every
        threshold, is recent, and fewer connections were asked about since than would close
        the distance (each may have opened one descriptor)."""
        now = self._clock()
        distance = self.threshold(PEER) - self._counted
        if (distance < max(64, self.limit // 8) or self._asked_since * 2 >= distance
                or now - self._counted_at > RECOUNT_AFTER):
            self._counted = self._count()
            self._counted_at = now
            self._asked_since = 0
        return self._counted

    def may_accept(self, purpose: Purpose) -> bool:
        """Whether a connection just accepted (already counted as open) may stay."""
        allowed = self.open_now() <= self.threshold(purpose)
        self._asked_since += 1
        if not allowed:
            self.refused += 1
        return allowed

    def state(self) -> dict[str, int]:
        return {"limit": self.limit, "open": self.open_now(),
                "reserved_for_rpc": self.reserved_for_rpc, "margin": self.margin,
                "refused": self.refused}
