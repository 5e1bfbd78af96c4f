"""sipp scenarios against one real sipd daemon: the failure paths of a call.

486 Busy and CANCEL before the answer (sipd calls a sipp UAS); a caller that never ACKs, a BYE
for an unknown dialog, a malformed SDP offer and re-INVITE glare (a sipp UAC calls sipd's
`local` account). The daemon runs with sip.t1 = 50 ms, so that a missing ACK ends the call
after 64*T1 = 3.2 s instead of 32 s. Scenarios: tests/peers/scenarios/call_*.xml.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.harness.peer import DaemonPeer
from tests.harness.sipp import finish, messages, starting
from tests.harness.waits import EVENT_TIMEOUT, eventually
from tests.peers.ports import free_port
from tests.peers.sipp import SippRun

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


async def final_state(peer: DaemonPeer, session: str, timeout: float = EVENT_TIMEOUT
                      ) -> dict[str, Any]:
    """The session's first "failed" or "ended" event."""
    return await peer.wait("session.state", lambda e: e["state"] in ("failed", "ended"),
                           id=session, timeout=timeout)


# -- sipd calls sipp -------------------------------------------------------------------------

async def answer_sipp(peer: DaemonPeer, uac: SippRun) -> str:
    """The sipp UAC's call, answered by sipd: its session id, once established."""
    new = await peer.events.wait("session.new", direction="incoming",
                                 remote=f"sip:sipp@{HOST}:{uac.local_port}")
    await peer.state(new["id"], "ringing")
    await peer.call("sessions.answer", id=new["id"])
    await peer.state(new["id"], "established")
    return new["id"]


async def test_a_busy_callee_fails_the_session_486(peer, sipp):
    uas = sipp.start("call_uas_486.xml")
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]

    failed = await peer.state(session, "failed")

    assert failed["code"] == 486, failed
    await finish(uas)


async def test_ending_a_ringing_call_cancels_it_487(peer, sipp):
    uas = sipp.start("call_uas_cancel.xml")
    to = f"sip:service@{HOST}:{uas.local_port}"
    session = (await peer.call("sessions.start", account="local", to=to))["id"]
    await peer.state(session, "ringing")

    await peer.call("sessions.end", id=session)

    failed = await peer.state(session, "failed")
    assert failed["code"] == 487, failed
    result = await finish(uas)  # it got the CANCEL, sent 487 and got its ACK
    assert starting(messages(result, "received"), "CANCEL ")


# -- sipp calls sipd -------------------------------------------------------------------------

async def test_a_caller_that_never_acks_gets_a_bye(peer, sipp):
    port = peer.ports["udp"]
    uac = sipp.start("call_uac_no_ack.xml", (HOST, port), rows=[[str(free_port())]])
    new = await peer.events.wait("session.new", direction="incoming",
                                 remote=f"sip:sipp@{HOST}:{uac.local_port}")
    await peer.state(new["id"], "ringing")

    await peer.call("sessions.answer", id=new["id"])

    over = await final_state(peer, new["id"])
    assert "ack" in over["reason"].lower(), over
    result = await finish(uac)  # the BYE came and was answered
    received = messages(result, "received")
    assert starting(received, "BYE ")
    # sipp logs the retransmissions it absorbs too: the 200 came more than once.
    assert len(starting(received, "SIP/2.0 200")) >= 2, received


async def test_a_bye_for_an_unknown_dialog_gets_481(peer, sipp):
    await finish(sipp.start("call_uac_unknown_bye.xml", (HOST, peer.ports["udp"])))
    assert (await peer.call("system.version"))["name"] == "sipd"


async def test_requests_in_a_dialog_nobody_owns_get_481(peer, sipp):
    # The user agent's dialog table answers, whatever the method: NOTIFY, INFO, REFER.
    await finish(sipp.start("call_uac_unknown_dialog.xml", (HOST, peer.ports["udp"])))
    assert (await peer.call("system.version"))["name"] == "sipd"


async def test_a_malformed_sdp_offer_is_refused_and_the_daemon_serves_on(peer, sipp, daemon):
    mark = peer.events.mark()
    uac = sipp.start("call_uac_bad_sdp.xml", (HOST, peer.ports["udp"]))
    result = await finish(uac)  # 400 or 488, ACKed, then an OPTIONS answered 200

    refusals = [m for m in messages(result, "received")
                if m.startswith(("SIP/2.0 400", "SIP/2.0 488"))]
    assert refusals, result.report()
    warning = re.search(r"^Warning:\s*399 .*$", refusals[0], re.M | re.I)
    assert warning and "notaport" in warning.group(0), refusals[0]
    remote = f"sip:sipp@{HOST}:{uac.local_port}"
    for new in peer.events.matching("session.new", since=mark, remote=remote):
        over = await final_state(peer, new["id"])
        assert over["state"] == "failed" and over["code"] in (400, 488), over
    assert (await peer.call("system.version"))["name"] == "sipd"
    assert "Traceback" not in daemon.log()


async def test_reinvite_glare_gets_491_and_the_hold_is_retried(peer, sipp):
    uac = sipp.start("call_uac_glare.xml", (HOST, peer.ports["udp"]), rows=[[str(free_port())]],
                     timeout=25)
    session = await answer_sipp(peer, uac)

    # sipd's re-INVITE: sipp sends its own while it is pending (491 from sipd), then refuses
    # sipd's with 491; sipd retries and that one is accepted.
    await peer.call("sessions.hold", id=session)
    held = await peer.events.wait("session.hold", id=session, on_hold=True)
    assert held["originator"] == "local"

    await peer.call("sessions.end", id=session)
    await peer.state(session, "ended")
    result = await finish(uac)
    assert starting(messages(result, "received"), "SIP/2.0 491")  # sipd refused sipp's
    # and retried its own: two re-INVITEs (not retransmissions: two CSeq numbers)
    cseqs = {re.search(r"^CSeq:\s*(\d+)", m, re.M | re.I).group(1)  # type: ignore[union-attr]
             for m in starting(messages(result, "received"), "INVITE ")}
    assert len(cseqs) >= 2, cseqs


async def test_an_offerless_reinvite_gets_our_offer_and_its_ack_answer_reaches_the_worker(
        peer, sipp):
    uac = sipp.start("call_uac_offerless_reinvite.xml", (HOST, peer.ports["udp"]),
                     rows=[[str(free_port())]])
    session = await answer_sipp(peer, uac)

    # sipp's re-INVITE without offer got sipd's offer in the 200; its answer in the ACK
    # (a=sendonly) holds the call, and the worker, offered it, only receives now.
    held = await peer.events.wait("session.hold", id=session, originator="remote")
    assert held["on_hold"] is True, held
    async def receiving_only() -> dict[str, Any] | None:
        view = await peer.call("sessions.get", id=session)
        return view if view["media"].get("direction") == "recvonly" else None

    view = await eventually(receiving_only, what="the worker to receive only", interval=0.1)
    assert view["remote_hold"] is True and view["on_hold"] is False, view
    assert view["media"].get("direction") == "recvonly", view

    await peer.call("sessions.end", id=session)
    await peer.state(session, "ended")
    await finish(uac)
