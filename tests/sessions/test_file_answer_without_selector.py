"""A peer takes a file sipd pushes with an answer that does not echo a=file-selector (RFC
5547 asks the answerer to; some leave it out, as msrp-node-lib's SDP has no RFC 5547 at all):
sipd sends the file it offered instead of failing the transfer for "the peer's answer"."""

from __future__ import annotations

import hashlib

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


async def test_an_answer_without_file_selector_still_gets_the_file(tmp_path):
    source = make_file(tmp_path / "pushed.bin", SIZE)
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
            await uas.answer(invite, (
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=message {uri.effective_port} TCP/MSRP *\r\na=accept-types:*\r\n"
                f"a=path:{format_path(reservation.local_path)}\r\n"
                "a=setup:passive\r\na=recvonly\r\n"))
            nursery.start_soon(uas.serve_byes)
            theirs = MsrpMedia(parse_path(invite.attributes["path"]), ["*"], setup=Setup.ACTIVE)
            connection = await reservation.connect(theirs, active=False,
                                                   max_message_size=None)
            nursery.start_soon(connection.run)
            with trio.fail_after(60):
                async for event in connection.events:
                    if isinstance(event, MessageReceived):
                        break
            assert hashlib.sha1(event.body).digest() == hashlib.sha1(
                source.read_bytes()).digest()
            ended = await peer.state(started["id"], "ended")
            assert ended["reason"] == "completed", ended
            nursery.cancel_scope.cancel()
