"""RFC 4028 session timers against real peers: sipp scenarios (a callee demanding a larger
interval with 422, a caller that never refreshes, a caller that refreshes) and two sipd
daemons, one killed -9: the survivor ends the call by its session timer, with RTP inactivity
detection off. Intervals of seconds (sip.min_se allows them for tests), T1 = 50 ms so that a
request to a dead peer times out in 3.2 s.
Scenarios: tests/peers/scenarios/call_uas_timer_422.xml, call_uac_timer_no_refresh.xml,
call_uac_timer_refresh.xml.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import pytest

from tests.harness.fixtures import module_base
from tests.harness.peer import DaemonPeer, call_and_answer, daemon_settings, open_peer
from tests.harness.process import SipdProcess, running
from tests.harness.sipp import finish, header, messages, received_requests, starting
from tests.peers.ports import free_port

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
INTERVAL = 6  # seconds
TIMER_SETTINGS = {**daemon_settings(), "sip.t1": 50, "sip.session_expires": INTERVAL,
                  "sip.min_se": 2, "rtp.inactivity_timeout": 0}
WAIT = 40.0


@pytest.fixture(scope="module")
def daemon(request: Any, tmp_path_factory: Any) -> Iterator[SipdProcess]:
    started = SipdProcess(module_base(request, tmp_path_factory), TIMER_SETTINGS, name="sipd")
    try:
        started.start()
        yield started
    finally:
        started.stop()


async def answer_sipp(peer: DaemonPeer, local_port: int) -> str:
    new = await peer.events.wait("session.new", direction="incoming",
                                 remote=f"sip:sipp@{HOST}:{local_port}")
    await peer.state(new["id"], "ringing")
    await peer.call("sessions.answer", id=new["id"])
    await peer.state(new["id"], "established")
    return str(new["id"])


async def test_a_callee_demanding_a_longer_interval_gets_it_and_is_refreshed(peer, sipp):
    uas = sipp.start("call_uas_timer_422.xml", keys={"rtp": str(free_port()), "min_se": "8"},
                     timeout=40)
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]
    await peer.state(session, "established")
    view = await peer.call("sessions.get", id=session)
    assert view["session_timer"] == {"interval": 8, "refresher": "us"}, view

    # The 422 did not end the call; two refreshes (every 4 s) kept it past its 8 s interval,
    # then the callee hung up.
    over = await peer.wait("session.state", lambda e: e["state"] in ("failed", "ended"),
                           id=session, timeout=WAIT)
    assert over["state"] == "ended" and over["reason"] == "remote hangup", over
    result = await finish(uas)
    first, again, *refreshes = received_requests(result, "INVITE")
    assert header(first, "Session-Expires") == str(INTERVAL), first
    assert re.search(r"^Supported:.*\btimer\b", first, re.M | re.I), first
    assert header(again, "Session-Expires") == "8" and header(again, "Min-SE") == "8", again
    assert len(refreshes) == 2, refreshes
    for refresh in refreshes:
        assert header(refresh, "Session-Expires") == "8;refresher=uac", refresh


async def test_a_caller_that_never_refreshes_is_hung_up_on(peer, sipp):
    uac = sipp.start("call_uac_timer_no_refresh.xml", (HOST, peer.ports["udp"]),
                     rows=[[str(free_port()), str(INTERVAL)]], timeout=30)
    session = await answer_sipp(peer, uac.local_port)

    failed = await peer.wait("session.state", lambda e: e["state"] in ("failed", "ended"),
                             id=session, timeout=WAIT)

    assert failed["state"] == "failed" and failed["reason"] == "session timer expired", failed
    result = await finish(uac)  # its 200 said refresher=uac, and the BYE came
    assert starting(messages(result, "received"), "BYE ")


async def test_a_caller_that_refreshes_keeps_the_call(peer, sipp):
    # It refreshes every 3.6 s, a little after half the interval.
    uac = sipp.start("call_uac_timer_refresh.xml", (HOST, peer.ports["udp"]),
                     rows=[[str(free_port()), str(INTERVAL)]], timeout=30)
    session = await answer_sipp(peer, uac.local_port)
    view = await peer.call("sessions.get", id=session)
    assert view["session_timer"] == {"interval": INTERVAL, "refresher": "them"}, view

    over = await peer.wait("session.state", lambda e: e["state"] in ("failed", "ended"),
                           id=session, timeout=WAIT)

    # Two refreshes took it past its first interval; then the caller hung up.
    assert over["state"] == "ended" and over["reason"] == "remote hangup", over
    result = await finish(uac)  # each 200 to a refresh said Session-Expires refresher=uac
    assert len(starting(messages(result, "received"), "SIP/2.0 200")) >= 3


def worker_pids(state: dict[str, Any]) -> list[int]:
    return [worker["pid"] for worker in state["media"]["workers"]]


@pytest.mark.parametrize("killed", ["refresher", "refreshed"])
async def test_the_survivor_of_a_killed_daemon_ends_the_call_by_its_timer(tmp_path, killed):
    with running(tmp_path, TIMER_SETTINGS) as (caller, callee):
        async with open_peer(caller) as a, open_peer(callee) as b:
            a_id, b_id = await call_and_answer(a, b)
            # The caller said it supports timers: the callee made it the refresher.
            dead, survivor, session = (caller, b, b_id) if killed == "refresher" \
                else (callee, a, a_id)
            dead_peer = a if dead is caller else b
            workers = worker_pids(await dead_peer.call("system.state"))
            try:
                dead.signal(signal.SIGKILL)  # no BYE, ever, and no media either way
                failed = await survivor.wait(
                    "session.state", lambda e: e["state"] in ("failed", "ended"),
                    id=session, timeout=WAIT)
            finally:
                for pid in workers:  # they leave on their own when their daemon is gone
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            assert failed["state"] == "failed", failed
            assert failed["reason"].startswith("session timer expired"), failed
            assert (await survivor.call("system.state"))["sip"]
