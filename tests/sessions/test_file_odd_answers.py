"""Answers to a file sipd pushes that bend RFC 5547 or 4975: one that does not echo
a=file-selector (RFC 5547 asks the answerer to; some leave it out) gets the file offered
instead of a transfer failed for "the peer's answer"; one whose a=accept-types takes only
`message/CPIM application/octet-stream` (doubango's) gets chunks of application/octet-stream,
not of the file's own type it would refuse."""

from __future__ import annotations

import hashlib

import pytest
import trio

from sipd.msrp.events import MessageReceived
from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.uri import format_path, parse_path
from tests.files.raw_peer import RawUas
from tests.harness.files import FILE_TOPICS, make_file
from tests.harness.peer import daemon_settings, open_peer
from tests.harness.process import running

SIZE = 200_000


@pytest.mark.parametrize("accept_types,echo_selector,chunk_type", [
    ("*", False, "image/png"),
    ("message/CPIM application/octet-stream", True, "application/octet-stream"),
], ids=["no-selector", "octet-stream-only"])
async def test_an_odd_answer_still_gets_the_file(tmp_path, accept_types, echo_selector,
                                                 chunk_type):
    source = make_file(tmp_path / "photo.png", SIZE)
    settings = {**daemon_settings(), "msrp.transport": "tcp"}
    endpoint = MsrpEndpoint(EndpointSettings(transport="tcp", state_dir=tmp_path / "raw"))
    with running(tmp_path, settings, names=("sipd",)) as (daemon,):
        async with open_peer(daemon, FILE_TOPICS) as peer, RawUas.bound() as uas, \
                trio.open_nursery() as nursery:
            await nursery.start(endpoint.serve)
            reservation = await endpoint.reserve()
            started = await peer.call("files.send", account="local", to=uas.uri,
                                      path=str(source))
            invite = await uas.invite()
            uri = reservation.local_uri
            selector = (f"a=file-selector:{invite.attributes['file-selector']}\r\n"
                        if echo_selector else "")
            await uas.answer(invite, (
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=message {uri.effective_port} TCP/MSRP *\r\n"
                f"a=accept-types:{accept_types}\r\n"
                f"a=path:{format_path(reservation.local_path)}\r\n"
                f"a=setup:passive\r\na=recvonly\r\n{selector}"))
            nursery.start_soon(uas.serve_byes)
            theirs = MsrpMedia(parse_path(invite.attributes["path"]), ["*"], setup=Setup.ACTIVE)
            connection = await reservation.connect(theirs, active=False,
                                                   max_message_size=None)
            nursery.start_soon(connection.run)
            with trio.fail_after(60):
                async for event in connection.events:
                    if isinstance(event, MessageReceived):
                        break
            assert event.content_type == chunk_type
            assert hashlib.sha1(event.body).digest() == hashlib.sha1(
                source.read_bytes()).digest()
            ended = await peer.state(started["id"], "ended")
            assert ended["reason"] == "completed", ended
            nursery.cancel_scope.cancel()
