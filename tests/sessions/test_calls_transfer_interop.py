"""Call transfer through Kamailio between sipd and real peers: baresip 1.0 and linphonec 5.1.

The set-up is the one of test_calls_interop.py: alice and dave are sipd daemons, bob is baresip,
carol is linphonec, all registered at the `kamailio` fixture, every request going through it.
Each test ends with audio proven between the transferee and the transfer target (each end
plays its own tone, the other end's recording must be dominated by it) and checks the
`session.transfer` events and the end of the replaced or transferred calls at the sipd side.

What each peer can do, from its sources and its help (these are the Debian packages):

- baresip 1.0.0 (`baresip -h`, modules/menu/menu.c, src/call.c at tag v1.0.0): the menu
  command `transfer <uri>` ("Transfer call", key 't') sends a REFER on the current call (blind
  transfer) and closes the call on a 2xx sipfrag NOTIFY; an incoming REFER is accepted (202,
  NOTIFY "100 Trying") when the account has call_transfer=yes, and the menu module calls the
  Refer-To target at once, NOTIFYing the new call's result. Tested both ways (tests 1 and 2).
  baresip cannot play the attended roles: the commands `atransferstart`/`atransferexec` came
  with baresip 2.0.0 (commit 037028f5 "menu: new command to execute a attended call
  transfer", January 2022, first tagged in v2.0.0), and neither src/ nor modules/ of 1.0.0
  (nor the strings of the installed binary) know the Replaces header: an INVITE with Replaces
  is just a new incoming call there, and a Refer-To with ?Replaces= is dialled as a plain URI.
- linphonec 5.1.65 (`help transfer`, console/commands.c lpc_cmd_transfer): `transfer <sip-uri>`,
  `transfer <call id> <sip-uri>` (blind) and `transfer <call id1> --to-call <call id2>`
  (attended; the option is `--to-call`, there is no `--to-call-id`), which sends REFER with
  Refer-To = the remote party of call 2 carrying ?Replaces=<its dialog>. linphone follows a
  received REFER by itself (CallSessionPrivate::referred -> Call::startReferredCall): it pauses
  the call, then calls the target, the URI's ?Replaces= becoming a Replaces header of the new
  INVITE. Tested as transferee of an attended transfer (test 3) and as attended transferor
  (test 4; it hangs the transferred call up itself once the NOTIFY says 200). Its blind
  transfer is the same REFER without Replaces, covered by the baresip tests' sipd side.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.harness.audio import sipd_talk
from tests.harness.interop import (
    bob_with_tone,
    call_user,
    carol_with_tone,
    sipd_calls_baresip,
    talk_then_hang_up,
)
from tests.harness.peer import DaemonPeer
from tests.harness.useragent import PEER_TIMEOUT
from tests.harness.waits import off_loop

pytestmark = pytest.mark.interop

TRANSFEREE_TONE, TARGET_TONE = 440, 1000
PROGRESS = {"trying", "ringing"}


@pytest.fixture
async def alice(tmp_path, kamailio):
    async with call_user(tmp_path, kamailio, "alice") as user:
        yield user


@pytest.fixture
async def dave(tmp_path, kamailio):
    async with call_user(tmp_path, kamailio, "dave") as user:
        yield user


# -- helpers ----------------------------------------------------------------------------------

async def answer_incoming(user: DaemonPeer, since: int) -> dict[str, Any]:
    """Answer the next incoming call of `user`; its session.new data once established."""
    new = await user.events.wait("session.new", direction="incoming", since=since)
    await user.state(new["id"], "ringing")
    await user.call("sessions.answer", id=new["id"])
    await user.state(new["id"], "established")
    return new


async def call_and_answer(caller: DaemonPeer, callee: DaemonPeer, to: str) -> tuple[str, str]:
    """sipd calls sipd (`to`, through Kamailio); (caller's session, callee's), established."""
    mark = callee.events.mark()
    c_id = (await caller.call("sessions.start", account=caller.id, to=to,
                              streams=["audio"]))["id"]
    new = await answer_incoming(callee, mark)
    await caller.state(c_id, "established")
    return c_id, new["id"]


def transfer_states(user: DaemonPeer, session: str, direction: str) -> list[str]:
    return [e["state"] for e in user.events.matching("session.transfer", id=session,
                                                      direction=direction)]


async def transfer_result(user: DaemonPeer, session: str, direction: str) -> dict[str, Any]:
    """The session.transfer event that ends the transfer of `session` (completed or failed)."""
    with trio.move_on_after(PEER_TIMEOUT):
        while True:
            for event in user.events.matching("session.transfer", id=session, direction=direction):
                if event["state"] in ("completed", "failed"):
                    return event
            await user.events.wait("session.transfer", since=user.events.mark())
    raise AssertionError(f"transfer of {session} did not end: "
                         f"{user.events.matching('session.transfer', id=session)}")


def assert_outgoing_progress(states: list[str]) -> None:
    """We transferred: requested, accepted (202), sipfrag progress, completed (2xx sipfrag).

    baresip NOTIFYs "100 Trying" right after its 202, and that NOTIFY may overtake the 202 on
    its way through Kamailio: sipd then says "accepted" when that NOTIFY comes.
    """
    assert states[:2] == ["requested", "accepted"] and states[-1] == "completed", states
    assert set(states[2:-1]) <= PROGRESS, states


def assert_incoming_progress(states: list[str]) -> None:
    """We were transferred: requested (REFER), our new call's progress, completed."""
    assert states[0] == "requested" and states[-1] == "completed", states
    assert set(states[1:-1]) <= PROGRESS | {"accepted"}, states


# -- 1. baresip transfers sipd (blind) ----------------------------------------------------------

async def test_baresip_blind_transfers_sipd_to_sipd(kamailio, alice, dave, baresip_factory,
                                                    tmp_path):
    bob = bob_with_tone(baresip_factory, tmp_path, 700)
    await off_loop(bob.wait_event, "REGISTER_OK")
    mark = alice.events.mark()
    await off_loop(bob.dial, kamailio.aor("alice"))
    old = await answer_incoming(alice, mark)
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)

    a_mark, d_mark = alice.events.mark(), dave.events.mark()
    await off_loop(bob.transfer, kamailio.aor("dave"))
    # alice accepts the REFER and calls dave; dave answers
    incoming = await answer_incoming(dave, d_mark)
    assert incoming["remote"] == kamailio.aor("alice"), incoming
    new = await alice.events.wait("session.new", direction="outgoing", since=a_mark)
    assert new["transferred_by"] == old["id"], new
    await alice.state(new["id"], "established")

    result = await transfer_result(alice, old["id"], "incoming")
    assert result["state"] == "completed" and result["session"] == new["id"], result
    requested = alice.events.matching("session.transfer", id=old["id"], state="requested")[0]
    assert requested["to"] == kamailio.aor("dave"), requested
    assert_incoming_progress(transfer_states(alice, old["id"], "incoming"))
    # baresip closes its call on the 2xx NOTIFY and sends BYE
    closed = await off_loop(bob.wait_event, "CALL_CLOSED", timeout=PEER_TIMEOUT)
    assert "transfer" in closed.get("param", "").lower(), closed
    await alice.state(old["id"], "ended")

    await sipd_talk(alice, new["id"], dave, incoming["id"], tmp_path)


# -- 2. sipd transfers baresip (blind) ----------------------------------------------------------

async def test_sipd_blind_transfers_baresip_to_sipd(kamailio, alice, dave, baresip_factory,
                                                    tmp_path):
    bob = bob_with_tone(baresip_factory, tmp_path, TRANSFEREE_TONE)
    await off_loop(bob.wait_event, "REGISTER_OK")
    a_id = await sipd_calls_baresip(alice, bob, kamailio.aor("bob"))
    before = set(bob.recordings()["received"])
    # baresip names its recordings by the second a call's audio starts: the transferred call
    # must start in a later second than this one, or it would write over this call's files
    await trio.sleep(1.1)

    d_mark = dave.events.mark()
    started = await alice.call("sessions.transfer", id=a_id, to=kamailio.aor("dave"))
    assert started["state"] == "requested", started
    transferring = await off_loop(bob.wait_event, "TRANSFER", timeout=PEER_TIMEOUT)
    assert kamailio.aor("dave") in transferring["param"], transferring
    incoming = await answer_incoming(dave, d_mark)
    assert incoming["remote"] == kamailio.aor("bob"), incoming
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)

    result = await transfer_result(alice, a_id, "outgoing")
    assert result["state"] == "completed", result
    assert_outgoing_progress(transfer_states(alice, a_id, "outgoing"))
    assert (await alice.state(a_id, "ended"))["reason"] == "transferred"
    await off_loop(bob.wait_event, "CALL_CLOSED", timeout=PEER_TIMEOUT)  # the old call

    await talk_then_hang_up(
        dave, incoming["id"], tmp_path, TARGET_TONE, TRANSFEREE_TONE, bob.ended_waiter(),
        lambda: [p for p in bob.recordings()["received"] if p not in before],
        "baresip's recording of the transferred call")


# -- 3. sipd transfers linphonec to sipd (attended) ---------------------------------------------

async def test_sipd_attended_transfer_of_linphonec(kamailio, alice, dave, linphonec_factory,
                                                   tmp_path):
    carol = carol_with_tone(linphonec_factory, tmp_path, TRANSFEREE_TONE)
    await off_loop(carol.wait_registered)
    offset = carol.process.log_size()
    a_carol = (await alice.call("sessions.start", account=alice.id, to=kamailio.aor("carol"),
                                streams=["audio"]))["id"]
    await off_loop(carol.wait_call, "incoming", since=offset, timeout=PEER_TIMEOUT)
    await off_loop(carol.answer)
    await alice.state(a_carol, "established")
    await off_loop(carol.wait_call, "streams", since=offset, timeout=PEER_TIMEOUT)
    a_dave, d_old = await call_and_answer(alice, dave, kamailio.aor("dave"))

    d_mark = dave.events.mark()
    offset = carol.process.log_size()
    started = await alice.call("sessions.transfer", id=a_carol, replaces=a_dave)
    assert started["state"] == "requested", started
    # linphonec pauses alice's call and INVITEs dave with Replaces: dave takes it at once
    outgoing = await off_loop(carol.wait_call, "outgoing", since=offset, timeout=PEER_TIMEOUT)
    assert "Replaces=" in outgoing["uri"], outgoing["uri"]
    new = await dave.events.wait("session.new", direction="incoming", since=d_mark)
    assert new["replaces"] == d_old and new["remote"] == kamailio.aor("carol"), new
    await dave.state(new["id"], "established")
    await off_loop(carol.wait_call, "streams", since=offset, call_id=int(outgoing["id"]),
                   timeout=PEER_TIMEOUT)
    # the replaced call ends at both of its ends
    await dave.state(d_old, "ended")
    await alice.state(a_dave, "ended")

    offset = carol.process.log_size()
    await talk_then_hang_up(
        dave, new["id"], tmp_path, TARGET_TONE, TRANSFEREE_TONE,
        lambda: off_loop(carol.wait_call, "ended", since=offset, call_id=int(outgoing["id"]),
                         timeout=PEER_TIMEOUT),
        lambda: [carol.record_path], "linphonec's recording of the transferred call")
    # linphonec NOTIFYed "200 Ok" when its new call connected (with "Subscription-State:
    # terminated;reason=reason=noresource", which sipd must read leniently): alice hangs up
    result = await transfer_result(alice, a_carol, "outgoing")
    assert result["state"] == "completed" and result.get("replaces") == a_dave, result
    assert_outgoing_progress(transfer_states(alice, a_carol, "outgoing"))
    assert (await alice.state(a_carol, "ended"))["reason"] == "transferred"


# -- 4. linphonec transfers sipd to sipd (attended) ---------------------------------------------

async def test_linphonec_attended_transfer_of_sipd(kamailio, alice, dave, linphonec_factory,
                                                   tmp_path):
    carol = carol_with_tone(linphonec_factory, tmp_path, 700)
    await off_loop(carol.wait_registered)
    # carol calls alice, puts her on hold, calls dave
    a_mark = alice.events.mark()
    offset = carol.call(kamailio.aor("alice"))
    to_alice = await off_loop(carol.wait_call, "outgoing", since=offset)
    a_old = (await answer_incoming(alice, a_mark))["id"]
    await off_loop(carol.wait_call, "streams", since=offset, timeout=PEER_TIMEOUT)
    offset = carol.pause(int(to_alice["id"]))
    await off_loop(carol.wait_call, "paused", since=offset, timeout=PEER_TIMEOUT)
    d_mark = dave.events.mark()
    offset = carol.call(kamailio.aor("dave"))
    to_dave = await off_loop(carol.wait_call, "outgoing", since=offset)
    d_old = (await answer_incoming(dave, d_mark))["id"]
    await off_loop(carol.wait_call, "streams", since=offset, timeout=PEER_TIMEOUT)

    a_mark, d_mark = alice.events.mark(), dave.events.mark()
    await off_loop(carol.transfer_to_call, int(to_alice["id"]), int(to_dave["id"]))
    # alice gets REFER with Replaces and INVITEs dave with it: dave takes the call at once
    new_a = await alice.events.wait("session.new", direction="outgoing", since=a_mark)
    assert new_a["transferred_by"] == a_old, new_a
    new_d = await dave.events.wait("session.new", direction="incoming", since=d_mark)
    assert new_d["replaces"] == d_old and new_d["remote"] == kamailio.aor("alice"), new_d
    await alice.state(new_a["id"], "established")
    await dave.state(new_d["id"], "established")
    assert (await dave.state(d_old, "ended"))["reason"].startswith("replaced"), d_old
    result = await transfer_result(alice, a_old, "incoming")
    assert result["state"] == "completed" and result["session"] == new_a["id"], result
    requested = alice.events.matching("session.transfer", id=a_old, state="requested")[0]
    assert requested["to"].startswith(kamailio.aor("dave")), requested
    assert_incoming_progress(transfer_states(alice, a_old, "incoming"))
    await alice.state(a_old, "ended")  # linphonec hangs up once the NOTIFY said 200
    await off_loop(carol.wait_call, "ended", call_id=int(to_alice["id"]), timeout=PEER_TIMEOUT)
    await off_loop(carol.wait_call, "ended", call_id=int(to_dave["id"]), timeout=PEER_TIMEOUT)

    await sipd_talk(alice, new_a["id"], dave, new_d["id"], tmp_path)
