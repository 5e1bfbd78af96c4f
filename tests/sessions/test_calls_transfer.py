"""Call transfer between three real sipd daemons A, B, C on 127.0.0.1, no server at all.

Each daemon has only its built-in `local` account (as in test_calls). A calls B and moves B
over to C: blind (REFER to C's URI) and attended (A also calls C, then REFER with Replaces
naming that call, which B's INVITE to C takes over). B and C prove the new call carries audio
by hearing each other's tone.
"""

from __future__ import annotations

import pytest

from sipctl.client import RpcCallError
from tests.harness.audio import exchange_tones, heard_each_other
from tests.harness.peer import DaemonPeer, call_and_answer
from tests.harness.raw_uac import raw_uac

pytestmark = pytest.mark.interop  # real pjsua2 media workers


DAEMON_NAMES = ("a", "b", "c")


def transfer_states(peer: DaemonPeer, session: str) -> list[str]:
    return [e["state"] for e in peer.events.matching("session.transfer", id=session)]


async def hear_each_other(tmp_path, b: DaemonPeer, b_id: str, c: DaemonPeer, c_id: str) -> None:
    """B and C play tones to each other, record, hang up; each must hear the other."""
    heard = await exchange_tones(b, b_id, c, c_id, tmp_path)
    await b.call("sessions.end", id=b_id)
    await b.state(b_id, "ended")
    await c.state(c_id, "ended")
    await heard_each_other(heard)


async def test_blind_transfer_moves_the_call_to_c(a, b, c, tmp_path):
    ab, ba = await call_and_answer(a, b)
    b_mark, c_mark = b.events.mark(), c.events.mark()

    result = await a.call("sessions.transfer", id=ab, to=c.uri())

    assert result == {"id": ab, "state": "requested"}
    incoming = await c.events.wait("session.new", direction="incoming", since=c_mark)
    cb = incoming["id"]
    assert incoming["remote"] == b.uri()
    await c.state(cb, "ringing")
    await a.events.wait("session.transfer", id=ab, state="ringing")
    await c.call("sessions.answer", id=cb)

    done = await a.events.wait("session.transfer", id=ab, state="completed")
    assert done["direction"] == "outgoing" and done["to"] == c.uri() and done["code"] == 200
    assert (await a.state(ab, "ended"))["reason"] == "transferred"
    states = transfer_states(a, ab)
    assert states[0] == "requested" and states[-1] == "completed", states
    assert "failed" not in states
    # B's side: asked by A, a new call to C, reported on the old session.
    new = await b.events.wait("session.new", direction="outgoing", since=b_mark)
    bc = new["id"]
    assert new["transferred_by"] == ba and new["remote"] == c.uri()
    requested = await b.events.wait("session.transfer", id=ba, state="requested")
    assert requested["direction"] == "incoming" and requested["to"] == c.uri()
    assert requested["by"] == a.uri()
    completed = await b.events.wait("session.transfer", id=ba, state="completed")
    assert completed["session"] == bc
    await b.state(ba, "ended")
    await b.state(bc, "established")
    await c.state(cb, "established")
    assert (await b.call("sessions.get", id=ba))["transfer"]["state"] == "completed"

    await hear_each_other(tmp_path, b, bc, c, cb)


async def test_blind_transfer_to_a_busy_target_keeps_the_call(a, b, c):
    ab, ba = await call_and_answer(a, b)
    c_mark = c.events.mark()

    await a.call("sessions.transfer", id=ab, to=c.uri())
    incoming = await c.events.wait("session.new", direction="incoming", since=c_mark)
    await c.state(incoming["id"], "ringing")
    await c.call("sessions.reject", id=incoming["id"], code=486)

    failed = await a.events.wait("session.transfer", id=ab, state="failed")
    assert failed["code"] == 486
    assert (await b.events.wait("session.transfer", id=ba, state="failed"))["code"] == 486
    # The call A-B goes on as it was; a second transfer may follow.
    assert (await a.call("sessions.get", id=ab))["state"] == "established"
    assert (await b.call("sessions.get", id=ba))["state"] == "established"
    assert (await a.call("sessions.get", id=ab))["transfer"]["state"] == "failed"
    await a.call("sessions.end", id=ab)
    assert (await b.state(ba, "ended"))["reason"] == "remote hangup"


async def test_attended_transfer_replaces_the_call_with_c(a, b, c, tmp_path):
    ab, ba = await call_and_answer(a, b)
    ac, ca = await call_and_answer(a, c)
    b_mark, c_mark = b.events.mark(), c.events.mark()

    await a.call("sessions.transfer", id=ab, replaces=ac)

    # C takes B's INVITE with Replaces at once, and hangs up its call with A.
    new_c = await c.events.wait("session.new", direction="incoming", since=c_mark)
    cb = new_c["id"]
    assert new_c["replaces"] == ca and new_c["remote"] == b.uri()
    await c.state(cb, "established")
    assert (await c.state(ca, "ended"))["reason"] == f"replaced by session {cb}"
    new_b = await b.events.wait("session.new", direction="outgoing", since=b_mark)
    bc = new_b["id"]
    assert new_b["transferred_by"] == ba
    await b.state(bc, "established")
    done = await a.events.wait("session.transfer", id=ab, state="completed")
    assert done["replaces"] == ac
    assert (await a.state(ab, "ended"))["reason"] == "transferred"
    assert (await a.state(ac, "ended"))["reason"] == "remote hangup"
    assert (await b.events.wait("session.transfer", id=ba, state="completed"))["session"] == bc

    await hear_each_other(tmp_path, b, bc, c, cb)


async def test_transfer_errors_are_clear(a, b):
    with pytest.raises(RpcCallError) as unknown:
        await a.call("sessions.transfer", id="nope", to=b.uri())
    assert unknown.value.code == -32002
    # Ringing, not established: a conflict.
    ringing = (await a.call("sessions.start", account="local", to=b.uri()))["id"]
    await a.state(ringing, "ringing")
    with pytest.raises(RpcCallError) as early:
        await a.call("sessions.transfer", id=ringing, to=b.uri())
    assert early.value.code == -32003 and "established" in early.value.data["reason"]
    await a.call("sessions.end", id=ringing)
    await a.state(ringing, "failed")

    ab, ba = await call_and_answer(a, b)
    with pytest.raises(RpcCallError) as itself:
        await a.call("sessions.transfer", id=ab, replaces=ab)
    assert itself.value.code == -32602 and itself.value.data["field"] == "replaces"
    with pytest.raises(RpcCallError) as no_other:
        await a.call("sessions.transfer", id=ab, replaces="nope")
    assert no_other.value.code == -32002
    with pytest.raises(RpcCallError) as neither:
        await a.call("sessions.transfer", id=ab)
    assert neither.value.code == -32602
    with pytest.raises(RpcCallError) as both:
        await a.call("sessions.transfer", id=ab, to=b.uri(), replaces=ab)
    assert both.value.code == -32602
    with pytest.raises(RpcCallError) as bad_to:
        await a.call("sessions.transfer", id=ab, to="tel:+15551234")
    assert bad_to.value.data["field"] == "to"
    with pytest.raises(RpcCallError) as not_up:  # the other call ended
        await a.call("sessions.transfer", id=ab, replaces=ringing)
    assert not_up.value.code == -32003
    assert (await a.call("sessions.get", id=ab))["state"] == "established"
    await a.call("sessions.end", id=ab)
    await b.state(ba, "ended")


async def test_invite_replacing_no_dialog_gets_481(c):
    async with raw_uac(c) as uac:
        uri = f"sip:local@127.0.0.1:{uac.peer_port}"
        await uac.send(uac.request(
            "INVITE", uri, 1, extra="Replaces: nosuchcall@127.0.0.1;to-tag=1;from-tag=2\r\n"))
        await uac.response(481)
        await uac.send(uac.request("INVITE", uri, 2, extra="Replaces: broken\r\n"))
        await uac.response(400)
    assert not c.events.matching("session.new", remote=f"sip:raw@127.0.0.1:{uac.port}")
