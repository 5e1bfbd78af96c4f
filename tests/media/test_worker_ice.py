"""ICE between two media workers on 127.0.0.1 through coturn (the only candidates are relayed:
pjnath gathers no host candidate on loopback), and a TURN server that refuses us."""

from __future__ import annotations

import pytest

from tests.media.conftest import connect

pytestmark = pytest.mark.interop


def turn_of(coturn, password: str = "turnpass") -> dict[str, str]:
    return {"server": f"127.0.0.1:{coturn.port}", "username": "turnuser",
            "password": password, "transport": "udp"}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_ice_through_turn_sends_media_to_the_other_relay(start_worker, coturn,
                                                              transport: str) -> None:
    turn = {**turn_of(coturn), "transport": transport}
    a = await start_worker("a", ice=True, turn=turn)
    b = await start_worker("b", ice=True, turn=turn)
    call_a, call_b = await connect(a, b, session="ice")
    for worker, call in ((a, call_a), (b, call_b)):
        media = await worker.events.wait_for(event="call.media", call=call, active=True)
        host, port = media["remote_rtp"].rsplit(":", 1)
        # The other worker's relayed address: a port of coturn's relay range.
        assert host == "127.0.0.1", media
        assert coturn.min_relay_port <= int(port) <= coturn.max_relay_port, media
    await a.request("hangup", call=call_a)
    await b.events.wait_for(event="call.state", call=call_b, state="disconnected")


async def test_a_turn_server_refusing_the_credentials_ends_the_call_saying_so(
        start_worker, coturn) -> None:
    a = await start_worker("a", ice=True, turn=turn_of(coturn, password="wrong"))
    call = (await a.request("call", uri="sip:nobody@127.0.0.1:9;transport=tcp",
                            session="ice"))["call"]
    ended = await a.events.wait_for(event="call.state", call=call, state="disconnected")
    assert "TURN server" in ended["reason"] and "Unauthorized" in ended["reason"], ended
    assert "nat.turn.password" in ended["reason"], ended
    assert (await a.request("status"))["free_slots"] == 4
