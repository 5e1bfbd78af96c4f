"""RTP inactivity: which calls have heard nothing from their remote party for too long.

No I/O and no pjsua2 (the worker feeds it, the tests can too). A far end that died (its
daemon killed, its network gone) sends no BYE: its calls would stay up forever. The worker
reads each call's received-packet counter about once a second and hands it here with the
time; a call whose counter has not moved for `timeout` seconds while it should be receiving
is reported once, and again only after packets came and stopped anew.

Should be receiving: an answered call (the worker does not watch early media) with an
active stream whose direction includes receiving (sendrecv, recvonly). A call on hold either
way (local_hold, remote_hold: sendonly, inactive) may legitimately hear nothing, and its
clock starts again when the hold ends: every change of the call's media (a re-INVITE, a new
stream whose counter starts at 0) counts as activity.
"""

from __future__ import annotations

from dataclasses import dataclass

RECEIVING_DIRECTIONS = frozenset({"sendrecv", "recvonly"})


def expects_media(status: str, direction: str) -> bool:
    """Whether a call with this media status and direction should be receiving RTP."""
    return status == "active" and direction in RECEIVING_DIRECTIONS


@dataclass
class _Watch:
    packets: int | None  # the last counter seen; None: no stream to count on
    since: float  # when it last moved (or the call's media last changed)
    receiving: bool = False  # whether it should have been receiving at the last look
    reported: bool = False


class RtpInactivity:
    """Silence clocks for a worker's calls, keyed by the worker's call handle."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout  # seconds; 0 turns the watch off
        self._calls: dict[int, _Watch] = {}

    @property
    def enabled(self) -> bool:
        return self.timeout > 0

    def media_changed(self, call: int, now: float) -> None:
        """The call's media was (re)negotiated: its silence counts from now."""
        watch = self._calls.get(call)
        if watch is not None:
            watch.since, watch.packets, watch.reported = now, None, False

    def forget(self, call: int) -> None:
        self._calls.pop(call, None)

    def observe(self, call: int, packets: int | None, receiving: bool, now: float) -> bool:
        """Record the call's received-packet counter (None: no live stream); True exactly
        when the call has just gone `timeout` seconds without a packet it should have had."""
        watch = self._calls.get(call)
        if watch is None:
            self._calls[call] = _Watch(packets, now, receiving)
            return False
        was_receiving, watch.receiving = watch.receiving, receiving
        if not (receiving and was_receiving) or packets is None or packets != watch.packets:
            # Hold (or its end), no stream yet, or packets came: any silence starts over.
            watch.packets, watch.since, watch.reported = packets, now, False
            return False
        if watch.reported or not self.enabled or now - watch.since < self.timeout:
            return False
        watch.reported = True
        return True

    def silent_for(self, call: int, now: float) -> float:
        watch = self._calls.get(call)
        return 0.0 if watch is None else now - watch.since
