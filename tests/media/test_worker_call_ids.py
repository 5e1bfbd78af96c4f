"""pjsua reuses call ids at once: a new call may take the id of one ending in the same poll.

Regression: the worker destroyed a pjsua2 Call object after the poll that reported it
DISCONNECTED. Its destructor clears pjsua's data for its id and hangs the id up if it is
active; when a new INVITE had arrived in that same poll and taken the freed id (pjsua hands
out ids round-robin over its 4), the new call was orphaned and hung up ("INVITE session
already terminated"), or pjsua aborted on an assertion.
"""

from __future__ import annotations

from functools import partial

import trio
import trio.lowlevel

from tests.media.conftest import connect

ROUNDS = 3  # the BYE and the INVITE meet in one poll most of the time, not always


async def test_a_call_arriving_as_another_ends_takes_its_id_and_stays_up(start_worker) -> None:
    for round_ in range(ROUNDS):
        a = await start_worker(f"a{round_}")
        b = await start_worker(f"b{round_}")
        # b's pjsua ids 0-3 in turn; after the last three end, id 0 is the next one handed out.
        calls = [await connect(a, b, session=f"s{n}") for n in range(4)]
        for call_a, call_b in calls[1:]:
            await a.request("hangup", call=call_a)
            await b.events.wait_for(event="call.state", call=call_b, state="disconnected")
        first_a, first_b = calls[0]
        mark = b.events.mark()
        async with trio.open_nursery() as both:
            # a's BYE for id 0, then a new INVITE: they reach b together, on one connection.
            both.start_soon(partial(a.request, "hangup", call=first_a))
            await trio.lowlevel.checkpoint()
            both.start_soon(partial(a.request, "call", uri=b.uri, session="new"))
        incoming = await b.events.wait_for(event="call.incoming", session="new", since=mark)
        new_b = incoming["call"]
        await b.events.wait_for(event="call.state", call=first_b, state="disconnected")
        await b.events.wait_for(event="call.state", call=new_b, state="confirmed", since=mark)
        await b.events.wait_for(event="call.media", call=new_b, active=True, since=mark)
        await trio.sleep(0.5)  # a wrong hangup would have gone out by now
        status = {c["call"]: c for c in (await b.request("status"))["calls"]}
        assert status[new_b]["state"] == "confirmed", status
        assert not b.events.matching(since=mark, event="error"), b.events.events[mark:]
        await a.request("hangup", call=(await a.request("status"))["calls"][0]["call"])
        await b.events.wait_for(event="call.state", call=new_b, state="disconnected")
