"""Waiting for a call's offer exchanges to finish before we start one of our own.

A hold asked for just after the remote's re-INVITE (its session.hold event comes with our
200, before the remote's ACK) would make the worker re-INVITE us while the outside leg cannot
take one yet (RFC 3261 §14.1): we would refuse it 491, and pjsua does not try again, so the
hold would be lost while sessions.hold said yes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:  # pragma: no cover
    from .b2bua import Call

SETTLE_WAIT = 5.0  # seconds a hold waits for an offer exchange in progress


async def settled(call: Call, limit: float = SETTLE_WAIT) -> None:
    """Returns once neither leg has an offer exchange under way (or after `limit`)."""
    def busy() -> bool:
        legs = [leg for leg in (call.outside, call.media) if leg is not None]
        return call._forwarding is not None or any(
            not leg.closed and not leg.session.terminated and not leg.session.can_reinvite
            for leg in legs)

    with trio.move_on_after(limit):
        while busy():
            await trio.sleep(0.02)
