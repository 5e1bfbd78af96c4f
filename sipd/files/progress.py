"""How often a transfer says how far it got: at most `per_second` reports (4 by default) and
always one at the end, each with the current rate. Time is an input (h11 style).

    meter = ProgressMeter(size=52114, now=trio.current_time())
    report = meter.update(transferred, now)        # None while too soon since the last one
    final = meter.finish(transferred, now)         # always a report
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

RATE_WINDOW = 2.0  # seconds of samples the rate is measured over


@dataclass(frozen=True)
class Progress:
    transferred: int
    size: int | None
    rate: float  # bytes per second, over the last RATE_WINDOW seconds (the whole run at the end)
    final: bool = False


class ProgressMeter:
    def __init__(self, size: int | None, now: float, *, per_second: float = 4.0,
                 start: int = 0) -> None:
        """`start`: bytes already there when the transfer began (a resumed part): they count
        in `transferred` but not in the rate."""
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.size = size
        self.interval = 1.0 / per_second
        self.started = now
        self.start = start
        self._last_report = now
        self._samples: deque[tuple[float, int]] = deque([(now, start)])
        self.finished = False

    def update(self, transferred: int, now: float) -> Progress | None:
        """A report when at least 1/per_second has passed since the last one, else None."""
        if self.finished:
            return None
        self._samples.append((now, transferred))
        while len(self._samples) > 2 and self._samples[1][0] <= now - RATE_WINDOW:
            self._samples.popleft()
        if now - self._last_report < self.interval:
            return None
        self._last_report = now
        first_time, first_bytes = self._samples[0]
        elapsed = now - first_time
        rate = (transferred - first_bytes) / elapsed if elapsed > 0 else 0.0
        return Progress(transferred, self.size, rate)

    def finish(self, transferred: int, now: float) -> Progress:
        """The last report (once; later calls give the same numbers again)."""
        self.finished = True
        elapsed = now - self.started
        rate = (transferred - self.start) / elapsed if elapsed > 0 else 0.0
        return Progress(transferred, self.size, max(rate, 0.0), final=True)
