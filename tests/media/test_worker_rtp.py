"""Every established call sends RTP both ways, silence included, call after call.

Regression: pjsua closes its (null) sound device after one idle second once a call ends. The
device is the conference bridge's clock: without it no stream gets a frame to send. An
outgoing call reopens it, an incoming one does not, so from its third or fourth sequential
call on a callee with nothing playing sent only RTCP, and remote parties with an RTP timeout
hang up. A recording cannot tell silence from nothing: this test counts packets (pjsua's
RTCP statistics in the `status` reply).
"""

from __future__ import annotations

from typing import Any

import trio

from tests.media.conftest import EVENT_TIMEOUT, Worker, connect

SEQUENTIAL_CALLS = 5
# Half a second of 20 ms packets: a stream that runs, not a stray first packet. It also makes
# the calls outlast pjsua's idle second, so the bug shows within five calls even on a fast
# machine.
ENOUGH_PACKETS = 25


async def rtp_of(worker: Worker, call: int) -> dict[str, int] | None:
    calls = {c["call"]: c for c in (await worker.request("status"))["calls"]}
    return calls[call]["rtp"]


async def wait_for_packets(worker: Worker, call: int, key: str) -> dict[str, Any]:
    """The call's RTP statistics once `key` has reached ENOUGH_PACKETS, or the last seen."""
    stats: dict[str, Any] | None = None
    with trio.move_on_after(EVENT_TIMEOUT):
        while True:
            stats = await rtp_of(worker, call)
            if stats is not None and stats[key] >= ENOUGH_PACKETS:
                break
            await trio.sleep(0.1)
    return stats or {}


async def hang_up(caller: Worker, callee: Worker, call_a: int, call_b: int) -> None:
    await caller.request("hangup", call=call_a)
    await caller.events.wait_for(event="call.state", call=call_a, state="disconnected")
    await callee.events.wait_for(event="call.state", call=call_b, state="disconnected")


async def test_silent_callee_sends_rtp_on_every_sequential_call(start_worker) -> None:
    a = await start_worker("a")
    b = await start_worker("b")
    for n in range(1, SEQUENTIAL_CALLS + 1):
        call_a, call_b = await connect(a, b, session=f"s{n}")
        # Nothing plays on either end: what arrives is the silence each end must send.
        heard_by_caller = await wait_for_packets(a, call_a, "rx_packets")
        assert heard_by_caller.get("rx_packets", 0) >= ENOUGH_PACKETS, \
            f"call {n}: too little of the callee's RTP reached the caller ({heard_by_caller})"
        sent_by_callee = await rtp_of(b, call_b)
        assert sent_by_callee is not None and sent_by_callee["tx_packets"] > 0, (n, sent_by_callee)
        heard_by_callee = await wait_for_packets(b, call_b, "rx_packets")
        assert heard_by_callee.get("rx_packets", 0) >= ENOUGH_PACKETS, \
            f"call {n}: too little of the caller's RTP reached the callee ({heard_by_callee})"
        await hang_up(a, b, call_a, call_b)

