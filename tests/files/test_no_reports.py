"""A real sipd sends a file to a peer that answers every MSRP chunk 200 but never sends the
success report asked for (it ignores Success-Report, as some implementations do): the
transfer is completed, not failed for want of the report — when the peer hangs up, and when
it stays silent past the report's wait (sipd then hangs up itself)."""

from __future__ import annotations

import hashlib

import pytest
import trio

from sipd.msrp.events import ChunkReceived
from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.uri import format_path, parse_path
from tests.files.raw_peer import RawUas, file_answer
from tests.harness.files import FILE_TOPICS, make_file, sha1_of
from tests.harness.peer import daemon_settings

PEER_TOPICS = FILE_TOPICS
DAEMON_SETTINGS = {**daemon_settings(), "msrp.transport": "tcp"}
SIZE = 3 * 1024 * 1024 + 5
REPORT_WAIT = 30.0  # the MSRP session's report timeout, and some


@pytest.mark.parametrize("peer_hangs_up", [True, False], ids=["peer-bye", "silent-peer"])
async def test_a_peer_that_sends_no_success_report_gets_the_file(a, tmp_path,
                                                                  peer_hangs_up):
    source = make_file(tmp_path / "unreported.bin", SIZE)
    endpoint = MsrpEndpoint(EndpointSettings(transport="tcp", state_dir=tmp_path / "raw"))
    async with RawUas.bound() as uas, trio.open_nursery() as nursery:
        await nursery.start(endpoint.serve)
        reservation = await endpoint.reserve()
        started = await a.call("files.send", account=a.id, to=uas.uri, path=str(source))
        invite = await uas.invite()
        uri = reservation.local_uri
        await uas.answer(invite, file_answer(invite, format_path(reservation.local_path),
                                             uri.effective_port))
        theirs = MsrpMedia(parse_path(invite.attributes["path"]), ["*"], setup=Setup.ACTIVE)
        # owner_confirms and never a confirm_incoming: every chunk answered 200, no report
        connection = await reservation.connect(theirs, active=False, max_message_size=None,
                                               deliver_chunks=True, owner_confirms=True)
        nursery.start_soon(connection.run)
        digest, got = hashlib.sha1(), 0
        with trio.fail_after(60):
            async for event in connection.events:
                if isinstance(event, ChunkReceived):
                    digest.update(event.data)
                    got += len(event.data)
                    if got >= SIZE:
                        break
        assert "sha-1:" + ":".join(f"{b:02X}" for b in digest.digest()) == sha1_of(source)
        if peer_hangs_up:
            await uas.bye(invite)
        else:
            nursery.start_soon(uas.serve_byes)  # sipd's own BYE, after the report's wait
        ended = await a.events.wait("session.state", id=started["id"],
                                    predicate=lambda e: e["state"] in ("ended", "failed"),
                                    timeout=REPORT_WAIT + 30)
        assert ended["state"] == "ended" and ended["reason"] == "completed", ended
        done = await a.events.wait("file.transfer", session=started["id"],
                                   predicate=lambda e: e["state"] != "started")
        assert done["state"] == "completed", done
        nursery.cancel_scope.cancel()
