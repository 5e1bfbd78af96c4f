"""Calls nobody answers, and floods of them, against one real sipd daemon (issue 10).

A caller that never cancels is refused after sessions.no_answer_timeout (480) or when its
INVITE's Expires runs out (487); a callee that never answers is cancelled; and 2,000 INVITEs
that ring and are forgotten (a sipp flood) are refused past the caps on incoming calls (486 per
account, 503 with Retry-After in all) while the daemon keeps serving RPC and other calls.
Scenarios: tests/peers/scenarios/call_uac_unanswered.xml, call_uac_flood.xml,
call_uas_cancel.xml.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import trio

from tests.harness.fixtures import module_base
from tests.harness.peer import DaemonPeer, daemon_settings
from tests.harness.process import SipdProcess
from tests.harness.sipp import finish, header, messages, received_requests, starting
from tests.harness.waits import off_loop

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
NO_ANSWER = 3  # seconds
PER_ACCOUNT = 25
TOTAL = 40


@pytest.fixture(scope="module")
def daemon(request: Any, tmp_path_factory: Any) -> Iterator[SipdProcess]:
    started = SipdProcess(module_base(request, tmp_path_factory),
                          {**daemon_settings(), "sip.t1": 50,
                           "sessions.no_answer_timeout": NO_ANSWER,
                           "sessions.max_incoming_per_account": PER_ACCOUNT,
                           "sessions.max_incoming": TOTAL}, name="sipd")
    try:
        started.start()
        yield started
    finally:
        started.stop()


async def over(peer: DaemonPeer, session: str) -> dict[str, Any]:
    return await peer.wait("session.state", lambda e: e["state"] in ("failed", "ended"),
                           id=session)


async def test_an_incoming_call_nobody_answers_is_refused_480(peer, sipp):
    uac = sipp.start("call_uac_unanswered.xml", (HOST, peer.ports["udp"]),
                     rows=[["local", "Subject: nobody answers"]])
    new = await peer.events.wait("session.new", direction="incoming",
                                 remote=f"sip:sipp@{HOST}:{uac.local_port}")
    await peer.state(new["id"], "ringing")

    failed = await over(peer, new["id"])

    assert failed["state"] == "failed" and failed["code"] == 480, failed
    assert failed["reason"] == "no answer", failed
    result = await finish(uac)
    assert starting(messages(result, "received"), "SIP/2.0 480"), result.report()


async def test_an_incoming_invite_that_expires_gets_487(peer, sipp):
    uac = sipp.start("call_uac_unanswered.xml", (HOST, peer.ports["udp"]),
                     rows=[["local", "Expires: 1"]])
    new = await peer.events.wait("session.new", direction="incoming",
                                 remote=f"sip:sipp@{HOST}:{uac.local_port}")

    failed = await over(peer, new["id"])

    assert failed["state"] == "failed" and failed["code"] == 487, failed
    assert "expired" in failed["reason"], failed
    result = await finish(uac)
    assert starting(messages(result, "received"), "SIP/2.0 487"), result.report()


async def test_an_outgoing_call_nobody_answers_is_cancelled(peer, sipp):
    uas = sipp.start("call_uas_cancel.xml")
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]
    await peer.state(session, "ringing")

    failed = await over(peer, session)

    assert failed["state"] == "failed" and failed["reason"] == "no answer", failed
    result = await finish(uas)  # it got the CANCEL, sent 487 and got its ACK
    invite = received_requests(result, "INVITE")[0]
    assert header(invite, "Expires") == str(NO_ANSWER), invite


def live_incoming(sessions: list[dict[str, Any]]) -> dict[str, int]:
    """Incoming sessions not over yet, per account."""
    counts: dict[str, int] = {}
    for session in sessions:
        if session["direction"] == "incoming" and session["state"] not in ("ended", "failed"):
            counts[session["account"]] = counts.get(session["account"], 0) + 1
    return counts


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_a_flood_of_unanswered_invites_is_refused_past_the_caps(peer, sipp, daemon):
    bob = await peer.call("accounts.add", aor="sip:bob@127.0.0.1", register=False)
    assert daemon.proc is not None
    rss_before = rss_kib(daemon.proc.pid)
    target = (HOST, peer.ports["udp"])
    # 2,000 INVITEs for `local` at 200 a second, and 200 for bob alongside.
    flood = sipp.start("call_uac_flood.xml", target, calls=2000, keys={"user": "local"},
                       timeout=60, extra_args=["-r", "200"])
    others = sipp.start("call_uac_flood.xml", target, calls=200, keys={"user": bob["id"]},
                        timeout=60, extra_args=["-r", "40"])
    most: dict[str, int] = {}
    most_in_all = answered = 0
    with trio.fail_after(60):
        while flood.process.alive() or others.process.alive():
            counts = live_incoming((await peer.call("sessions.list"))["sessions"])
            for account, count in counts.items():
                most[account] = max(most.get(account, 0), count)
            most_in_all = max(most_in_all, sum(counts.values()))
            # The daemon serves RPC throughout: every call here is answered.
            await peer.call("system.state")
            answered += 1
            await trio.sleep(0.2)
    # A loaded machine may answer some INVITEs after sipp gave up on them (a failed call for
    # sipp, exit status 1): a flood need not be answered in full, only bounded.
    flood_result, others_result = await off_loop(flood.wait), await off_loop(others.wait)
    assert flood_result.returncode in (0, 1), flood_result.report()
    assert others_result.returncode in (0, 1), others_result.report()

    assert answered > 0
    assert 0 < most.get("local", 0) <= PER_ACCOUNT, most
    assert most_in_all <= TOTAL, most_in_all
    received = messages(flood_result, "received")
    busy = starting(received, "SIP/2.0 486")
    refused = len(busy) + len(starting(received, "SIP/2.0 503"))
    assert busy and refused > 1000, f"{len(busy)} refused with 486, {refused} in all"
    # bob's calls rang while local was flooded, until the total was reached: 503 then.
    others_received = messages(others_result, "received")
    assert starting(others_received, "SIP/2.0 180"), others_result.report()
    unavailable = starting(others_received, "SIP/2.0 503")
    assert unavailable, others_result.report()
    assert all(header(m, "Retry-After") for m in unavailable), unavailable[0]
    # Every session that rang ends (no answer) and none is left behind.
    with trio.fail_after(NO_ANSWER + 20):
        while live_incoming((await peer.call("sessions.list"))["sessions"]):
            await trio.sleep(0.5)
    # A generous bound: 2,200 ringing sessions would cost far more than this.
    assert rss_kib(daemon.proc.pid) - rss_before < 64 * 1024
