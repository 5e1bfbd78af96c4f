"""sipp offers sipd m=message lines it cannot use: each INVITE is refused 488 with a Warning
naming the line and what is wrong with it, and the daemon serves on. And a sipp callee whose
answer names an MSRP listener with another certificate than its a=fingerprint (or one taking
text/plain only, where the test reads what sipd sends), and a sipp caller whose re-INVITE
adds chat to its call."""

from __future__ import annotations

import re

import pytest
import trio

from sipctl.client import RpcCallError
from sipd.msrp.events import MessageReceived
from sipd.msrp.sdp import MsrpMedia
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.uri import parse_path
from tests.harness.sipp import finish, messages
from tests.peers.ports import free_port

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
PATH = "a=path:msrps://127.0.0.1:2855/s1d;tcp"
TYPES = "a=accept-types:message/cpim text/plain"
FILLER = "a=x-nothing"  # an attribute nobody reads, where a case needs fewer lines


@pytest.mark.parametrize("media,attributes,why", [
    ("m=message 2855 TCP/TLS/MSRP *", [TYPES, "a=setup:active"],
     "m=message TCP/TLS/MSRP: the MSRP media line has no a=path"),
    ("m=message 2855 TCP/TLS/MSRP *", [PATH, "a=setup:active"],
     "m=message TCP/TLS/MSRP: the MSRP media line has no a=accept-types"),
    ("m=message 2855 UDP/TLS/MSRP *", [PATH, TYPES],
     "m=message UDP/TLS/MSRP: unknown transport UDP/TLS/MSRP"),
    ("m=message 2855 TCP/TLS/MSRP *", [PATH, "a=accept-types:application/x-private"],
     "takes none of the types we send"),
    ("m=message 2855 TCP/MSRP *", ["a=path:msrp://127.0.0.1:2855/s1d;tcp", TYPES],
     "m=message TCP/MSRP: MSRP here is over TLS (msrp.transport), not plain TCP"),
    ("m=message 2855 TCP/TLS/MSRP *", [PATH, TYPES, "a=setup:holdconn"],
     "holds the connection"),
    ("m=message 2855 TCP/TLS/MSRP *", ["a=path:http://127.0.0.1/x", TYPES],
     "malformed SDP: line 7: a=path URI 'http://127.0.0.1/x' is not an msrp: or msrps: URI"),
])
async def test_an_unusable_chat_offer_gets_488_naming_the_line(peer, sipp, daemon, media,
                                                               attributes, why):
    mark = peer.events.mark()
    lines = [*attributes, FILLER, FILLER, FILLER][:3]
    uac = sipp.start("call_uac_bad_msrp.xml", (HOST, peer.ports["udp"]),
                     keys={"media": media, "attr1": lines[0], "attr2": lines[1],
                           "attr3": lines[2]})
    result = await finish(uac)

    (refusal,) = [m for m in messages(result, "received") if m.startswith("SIP/2.0 488")]
    warning = re.search(r"^Warning:\s*399 \S+ \"(.*)\"\s*$", refusal, re.M | re.I)
    assert warning and why in warning.group(1), refusal
    new = await peer.events.wait("session.new", since=mark,
                                 remote=f"sip:sipp@{HOST}:{uac.local_port}")
    # announced as the chat it offered (nothing, when the SDP itself cannot be read)
    assert new["streams"] == ([] if "malformed SDP" in why else ["chat"])
    over = await peer.state(new["id"], "failed")
    assert over["code"] == 488
    assert (await peer.call("system.version"))["name"] == "sipd"
    assert "Traceback" not in daemon.log()


async def test_a_certificate_that_does_not_match_the_fingerprint_ends_the_chat(peer, sipp,
                                                                               tmp_path):
    """The answer's a=fingerprint is another certificate's than the one its MSRP listener
    shows: sipd (the active side) refuses the connection, and the session ends failed with
    that reason (BYE)."""
    listener = MsrpEndpoint(EndpointSettings(transport="tls", state_dir=tmp_path / "listener"))
    other = MsrpEndpoint(EndpointSettings(transport="tls", state_dir=tmp_path / "other"))
    assert other.fingerprint is not None and other.fingerprint != listener.fingerprint
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.serve)
        reservation = await listener.reserve()
        uas = sipp.start("call_uas_msrp.xml", keys={
            "msrp_port": str(listener.port), "msrp_path": str(reservation.local_uri),
            "fingerprint": str(other.fingerprint), "accept_types": "message/cpim text/plain"})
        to = f"sip:service@{HOST}:{uas.local_port}"
        session = (await peer.call("sessions.start", account="local", to=to,
                                   streams=["chat"]))["id"]
        await peer.state(session, "established")
        failed = await peer.state(session, "failed")
        assert "fingerprint" in failed["reason"], failed
        await finish(uas)  # it got our BYE
        nursery.cancel_scope.cancel()


async def test_a_reinvite_adding_chat_to_a_call_is_a_proposal(peer, sipp):
    """sipp calls, sipd answers; sipp's re-INVITE adds chat: a session.proposal, accepted
    here, and sipd's 200 answers the m=message line with its own."""
    uac = sipp.start("call_uac_add_chat.xml", (HOST, peer.ports["udp"]),
                     rows=[[str(free_port())]])
    new = await peer.events.wait("session.new", direction="incoming",
                                 remote=f"sip:sipp@{HOST}:{uac.local_port}")
    assert new["streams"] == ["audio"]
    await peer.state(new["id"], "ringing")
    await peer.call("sessions.answer", id=new["id"])
    await peer.state(new["id"], "established")

    proposal = await peer.events.wait("session.proposal", id=new["id"], state="pending")
    assert proposal["streams"] == ["chat"]
    accepted = await peer.call("sessions.accept_proposal", id=new["id"])
    assert accepted["streams"] == ["audio", "chat"]
    await peer.events.wait("session.streams", id=new["id"], change="added", by="remote")
    (line,) = (await peer.call("sessions.get", id=new["id"]))["lines"]
    assert line["kind"] == "chat" and line["remote_path"] == ["msrps://127.0.0.1:2855/sippchat;tcp"]

    await peer.call("sessions.end", id=new["id"])
    await peer.state(new["id"], "ended")
    await finish(uac)  # its re-INVITE got the 200 with our m=message line


async def test_a_peer_without_cpim_gets_plain_messages_of_the_types_it_takes(peer, sipp,
                                                                            tmp_path):
    """The answer takes text/plain only: sipd sends it plain (no CPIM envelope), and refuses
    a type the peer does not take with what it does take."""
    listener = MsrpEndpoint(EndpointSettings(transport="tls", state_dir=tmp_path / "peer"))
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.serve)
        reservation = await listener.reserve()
        uas = sipp.start("call_uas_msrp.xml", keys={
            "msrp_port": str(listener.port), "msrp_path": str(reservation.local_uri),
            "fingerprint": str(listener.fingerprint), "accept_types": "text/plain"})
        to = f"sip:service@{HOST}:{uas.local_port}"
        session = (await peer.call("sessions.start", account="local", to=to,
                                   streams=["chat"]))["id"]
        await peer.state(session, "established")
        ours = (await peer.call("sessions.get", id=session))["lines"][0]["local_path"]
        theirs = await reservation.connect(MsrpMedia(parse_path(" ".join(ours)), ["*"]),
                                           active=False)
        await nursery.start(theirs.run)

        sent = await peer.call("chat.send", session=session, content="plain and simple")
        with trio.fail_after(10):
            async for event in theirs.events:
                if isinstance(event, MessageReceived):
                    break
        assert event.content_type == "text/plain" and event.body == b"plain and simple"
        assert event.message_id == sent["message_id"]
        with pytest.raises(RpcCallError) as refused:
            await peer.call("chat.send", session=session, content="<b>x</b>",
                            content_type="text/html")
        assert refused.value.code == -32602 and "text/plain" in str(refused.value.data)

        await peer.call("sessions.end", id=session)
        await peer.state(session, "ended")
        await finish(uas)
        nursery.cancel_scope.cancel()
