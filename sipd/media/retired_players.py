"""Stopped file players, kept a while before they are destroyed.

Worker-only module (it handles pjsua2 objects; it never imports the main process's modules).

pjsua2 2.15.1 does not cancel a player's end-of-file callback when it destroys the player
(fixed upstream after 2.15.1, pjproject #5045). A looping file posts that event to pjmedia's
event thread each time it wraps, and the player's port itself goes later, on the bridge's clock
thread: an event delivered after the destructor ran called into freed memory (SIGSEGV). So a
stopped player is first disconnected from its call (CallLeg.stop_play), which stops the bridge
reading it, so no more events come; it is destroyed here once any event already posted has long
been delivered, to a live object.
"""

from __future__ import annotations

import time
from typing import Any

# How long a stopped player is kept before it is destroyed.
RETIRE_SECONDS = 1.0
# pjsua has room for 32 players: when it is full, retired players this old go at once (the
# bridge applied their disconnection a few 20 ms frames ago).
RETIRE_MIN_SECONDS = 0.1


class RetiredPlayers:
    def __init__(self) -> None:
        self._players: list[tuple[Any, float]] = []  # (pjsua2 AudioMediaPlayer, since)

    def __bool__(self) -> bool:
        return bool(self._players)

    def add(self, player: Any) -> None:
        """Keep a stopped, disconnected player alive until it is safe to destroy."""
        self._players.append((player, time.monotonic()))

    def destroy(self, min_age: float = RETIRE_SECONDS) -> int:
        """Destroy the players retired at least `min_age` seconds ago; returns how many.
        Dropping the last reference destroys a player (pjsua_player_destroy): call this on
        the pjsua thread."""
        cutoff = time.monotonic() - min_age
        kept = [(player, since) for player, since in self._players if since > cutoff]
        destroyed = len(self._players) - len(kept)
        self._players = kept
        return destroyed

    def make_room(self) -> bool:
        """pjsua's players are all taken: destroy the ones safe to destroy early. False if
        there were none."""
        return self.destroy(RETIRE_MIN_SECONDS) > 0

    def wait_out(self, endpoint: Any) -> None:
        """At shutdown, before libDestroy (a player destroyed after it touches a freed
        bridge): the calls are gone, so only events in flight remain; give them a short while
        to arrive, then destroy every player."""
        if self._players:
            safe = max(since for _, since in self._players) + RETIRE_MIN_SECONDS
            while time.monotonic() < safe:
                endpoint.libHandleEvents(10)
        self._players.clear()
