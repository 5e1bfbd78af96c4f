"""A small jitter buffer for audio frames that arrive from a browser (no pjsua2, no I/O).

Frames go in from the network thread and out on the conference bridge's clock thread, one per
tick. The buffer holds a few frames at most: past its cap the oldest is dropped, so a burst
after a stall costs a few frames of audio instead of adding lasting delay. Until it has
`prefill` frames it gives nothing (the bridge plays silence), so a steady stream starts with
a little slack against the next late frame.
"""

from __future__ import annotations

import collections
import threading


class FrameBuffer:
    def __init__(self, cap: int = 3, prefill: int = 2) -> None:
        self.cap = cap
        self.prefill = prefill
        self._frames: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()
        self._primed = False
        self.dropped = 0   # frames thrown away because the buffer was full
        self.missing = 0   # ticks with no frame to give (after the start)
        self.received = 0

    def push(self, frame: bytes) -> None:
        with self._lock:
            self.received += 1
            self._frames.append(frame)
            while len(self._frames) > self.cap:
                self._frames.popleft()
                self.dropped += 1
            if len(self._frames) >= self.prefill:
                self._primed = True

    def pop(self) -> bytes | None:
        with self._lock:
            if not self._primed:
                return None
            if not self._frames:
                self.missing += 1
                self._primed = False  # wait for the slack again
                return None
            return self._frames.popleft()
