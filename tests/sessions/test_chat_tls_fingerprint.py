"""A peer that connects to sipd over TLS (its offer says a=setup:active) is held to the
a=fingerprint of its SDP (RFC 8122): with the certificate it named, it chats; with another
one, or none, sipd refuses the connection and the session ends failed with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from sipd.msrp.trio.tls import TlsIdentity, ensure_identity
from sipd.msrp.uri import parse_path
from tests.harness.peer import open_peer
from tests.sessions.blink_peer import (
    BlinkUac,
    MsrpWire,
    answered_call,
    chat_offer,
    hex_id,
    sdp_attribute,
    send_frame,
)

PEER_PATH = "msrps://127.0.0.1:40125/5e1d3c2b1a0f9e8d7c6b;tcp"
TOPICS = ("sessions", "chat")


def offer_naming(identity: TlsIdentity) -> str:
    fingerprint = f"a=fingerprint:{identity.fingerprint}\r\n"
    return chat_offer(PEER_PATH, 40125, setup="active") + fingerprint


async def connect_and_send(peer, blink: BlinkUac, nursery: trio.Nursery, offer: str,
                           cert: tuple[Path, Path] | None) -> tuple[str, str | None]:
    """Calls sipd with `offer`, connects showing `cert`, sends a message: (session id, the
    200's code, None when the connection was refused)."""
    sdp, session = await answered_call(peer, blink, nursery, offer)
    assert sdp_attribute(sdp, "setup") == "passive", sdp
    (ours,) = parse_path(sdp_attribute(sdp, "path") or "")
    code = None
    async with MsrpWire.open(ours.host, ours.effective_port, tls=True, cert=cert) as wire:
        tid = hex_id()
        try:
            await wire.write(send_frame(str(ours), PEER_PATH, data=b"hello", tid=tid,
                                        content_type="text/plain"))
            code = (await wire.response(tid)).code
        except (trio.BrokenResourceError, trio.ClosedResourceError, AssertionError):
            code = None
    return session, str(code) if code is not None else None


async def test_the_certificate_named_in_the_offer_chats(daemon, tmp_path: Path) -> None:
    mine = ensure_identity(tmp_path / "peer")
    async with open_peer(daemon, TOPICS) as peer, BlinkUac.bound() as blink, \
            trio.open_nursery() as nursery:
        session, code = await connect_and_send(peer, blink, nursery, offer_naming(mine),
                                               (mine.cert_path, mine.key_path))
        assert code == "200"
        got = await peer.events.wait("chat.message", session=session)
        assert got["content"] == "hello"
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("shown", ["another", "none"])
async def test_another_certificate_or_none_is_refused(daemon, tmp_path: Path,
                                                      shown: str) -> None:
    named = ensure_identity(tmp_path / "named")
    other = ensure_identity(tmp_path / "other")
    cert = (other.cert_path, other.key_path) if shown == "another" else None
    async with open_peer(daemon, TOPICS) as peer, BlinkUac.bound() as blink, \
            trio.open_nursery() as nursery:
        session, code = await connect_and_send(peer, blink, nursery, offer_naming(named), cert)
        assert code is None  # no 200: the connection was closed
        ended = await peer.state(session, "failed")
        expected = ("does not match the a=fingerprint" if shown == "another"
                    else "presented no TLS certificate")
        assert expected in ended["reason"], ended
        assert not peer.events.matching("chat.message", session=session)
        nursery.cancel_scope.cancel()
