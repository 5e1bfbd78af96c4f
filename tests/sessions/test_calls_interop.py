"""Audio calls through Kamailio between registered accounts: sipd, baresip and linphonec.

alice and dave are accounts of real sipd daemons (each with its own media workers on loopback)
registered at the `kamailio` fixture over UDP; bob is baresip (aufile source, sndfile recorder,
driven over ctrl_tcp), carol is linphonec (wav files instead of a sound card, driven over
stdin). Every INVITE goes through Kamailio, which challenges the caller and looks the callee up
in its location table. Audio is proven as in test_calls.py: each end plays its own tone and the
other end's recording must be dominated by it.
"""

from __future__ import annotations

import pytest

from tests.harness.audio import CALLEE_TONE, CALLER_TONE, sipd_talk
from tests.harness.interop import bob_with_tone, call_user, carol_with_tone, talk_then_hang_up
from tests.harness.useragent import PEER_TIMEOUT
from tests.harness.waits import off_loop

pytestmark = pytest.mark.interop

@pytest.fixture
async def alice(tmp_path, kamailio):
    async with call_user(tmp_path, kamailio, "alice") as user:
        yield user


@pytest.fixture(params=["udp", "tcp"])
async def dave(request, tmp_path, kamailio):
    """dave registered over UDP, or over TCP with Kamailio as his outbound proxy."""
    async with call_user(tmp_path, kamailio, "dave", request.param) as user:
        yield user


# -- sipd <-> sipd --------------------------------------------------------------------------

async def test_sipd_calls_sipd_through_kamailio(kamailio, alice, dave, tmp_path):
    mark = dave.events.mark()
    a_id = (await alice.call("sessions.start", account=alice.id, to=kamailio.aor("dave"),
                             streams=["audio"]))["id"]
    new = await dave.events.wait("session.new", direction="incoming", since=mark)
    d_id = new["id"]
    assert new["account"] == dave.id and new["streams"] == ["audio"]
    assert new["remote"] == kamailio.aor("alice"), new
    await dave.state(d_id, "ringing")
    await alice.state(a_id, "ringing")
    await dave.call("sessions.answer", id=d_id)
    await alice.state(a_id, "established")
    await dave.state(d_id, "established")
    # Kamailio challenged the INVITE; it went again with the credentials.
    log = alice.daemon.log()
    assert "received 407 Proxy Authentication Required" in log
    assert log.count(f"sending INVITE {kamailio.aor('dave')} ") >= 2

    await sipd_talk(alice, a_id, dave, d_id, tmp_path)


# -- sipd <-> baresip -----------------------------------------------------------------------

async def test_sipd_calls_baresip(kamailio, alice, baresip_factory, tmp_path):
    bob = bob_with_tone(baresip_factory, tmp_path, CALLEE_TONE)
    await off_loop(bob.wait_event, "REGISTER_OK")

    a_id = (await alice.call("sessions.start", account=alice.id, to=kamailio.aor("bob"),
                             streams=["audio"]))["id"]
    incoming = await off_loop(bob.wait_event, "CALL_INCOMING", timeout=PEER_TIMEOUT)
    assert incoming["peeruri"] == kamailio.aor("alice"), incoming
    await alice.state(a_id, "ringing")
    await off_loop(bob.answer)
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)
    await alice.state(a_id, "established")

    await talk_then_hang_up(alice, a_id, tmp_path, CALLER_TONE, CALLEE_TONE, bob.ended_waiter(),
                            lambda: bob.recordings()["received"], "baresip's recording of the call")


async def test_baresip_calls_sipd(kamailio, alice, baresip_factory, tmp_path):
    bob = bob_with_tone(baresip_factory, tmp_path, CALLER_TONE)
    await off_loop(bob.wait_event, "REGISTER_OK")

    mark = alice.events.mark()
    await off_loop(bob.dial, kamailio.aor("alice"))
    new = await alice.events.wait("session.new", direction="incoming", since=mark)
    a_id = new["id"]
    assert new["account"] == alice.id and new["remote"] == kamailio.aor("bob"), new
    await alice.state(a_id, "ringing")
    await alice.call("sessions.answer", id=a_id)
    await alice.state(a_id, "established")
    await off_loop(bob.wait_event, "CALL_ESTABLISHED", timeout=PEER_TIMEOUT)

    await talk_then_hang_up(alice, a_id, tmp_path, CALLEE_TONE, CALLER_TONE, bob.ended_waiter(),
                            lambda: bob.recordings()["received"], "baresip's recording of the call")


# -- sipd <-> linphonec ---------------------------------------------------------------------

async def test_sipd_calls_linphonec(kamailio, alice, linphonec_factory, tmp_path):
    carol = carol_with_tone(linphonec_factory, tmp_path, CALLEE_TONE)
    await off_loop(carol.wait_registered)

    offset = carol.process.log_size()
    a_id = (await alice.call("sessions.start", account=alice.id, to=kamailio.aor("carol"),
                             streams=["audio"]))["id"]
    await off_loop(carol.wait_call, "incoming", since=offset, timeout=PEER_TIMEOUT)
    await alice.state(a_id, "ringing")
    await off_loop(carol.answer)
    await alice.state(a_id, "established")
    await off_loop(carol.wait_call, "streams", since=offset, timeout=PEER_TIMEOUT)

    await talk_then_hang_up(alice, a_id, tmp_path, CALLER_TONE, CALLEE_TONE, carol.ended_waiter(),
                            lambda: [carol.record_path], "linphonec's recording of the call")


async def test_linphonec_calls_sipd(kamailio, alice, linphonec_factory, tmp_path):
    carol = carol_with_tone(linphonec_factory, tmp_path, CALLER_TONE)
    await off_loop(carol.wait_registered)

    mark = alice.events.mark()
    offset = carol.call(kamailio.aor("alice"))
    new = await alice.events.wait("session.new", direction="incoming", since=mark)
    a_id = new["id"]
    assert new["account"] == alice.id and new["remote"] == kamailio.aor("carol"), new
    await alice.state(a_id, "ringing")
    await alice.call("sessions.answer", id=a_id)
    await alice.state(a_id, "established")
    await off_loop(carol.wait_call, "streams", since=offset, timeout=PEER_TIMEOUT)

    await talk_then_hang_up(alice, a_id, tmp_path, CALLEE_TONE, CALLER_TONE, carol.ended_waiter(),
                            lambda: [carol.record_path], "linphonec's recording of the call")
