"""A file offered to a real sipd by a raw SIP + MSRP peer whose a=file-selector name tries to
leave the download folder (`../`, an absolute path, a NUL, control characters): answered over
RPC, the file lands inside the download folder under a safe name, hash checked. The peer is
written by hand (SIP text on UDP, our MSRP core for the file): no sipd would send such a
name."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import pytest
import trio

from sipd.files.selector import quote_name
from sipd.msrp.events import MessageDelivered, MessageFailed
from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.uri import format_path, parse_path
from tests.harness.files import FILE_TOPICS
from tests.harness.peer import daemon_settings
from tests.harness.raw_uac import raw_uac

PEER_TOPICS = FILE_TOPICS
DAEMON_SETTINGS = {**daemon_settings(), "msrp.transport": "tcp"}
CONTENT = b"root:x:0:0:not really:/root:/bin/sh\n"


def offer(name_field: str, msrp_path: str, port: int) -> str:
    digest = hashlib.sha1(CONTENT).hexdigest().upper()
    file_hash = ":".join(digest[i:i + 2] for i in range(0, 40, 2))
    return ("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=message {port} TCP/MSRP *\r\na=sendonly\r\na=accept-types:*\r\n"
            f"a=path:{msrp_path}\r\na=setup:active\r\n"
            f"a=file-selector:name:\"{name_field}\" type:text/plain size:{len(CONTENT)} "
            f"hash:sha-1:{file_hash}\r\n"
            f"a=file-transfer-id:{uuid.uuid4().hex}\r\na=file-disposition:attachment\r\n")


@pytest.mark.parametrize(("name_field", "saved"), [
    ("../../etc/passwd", "passwd"),
    ("/etc/shadow", "shadow"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("evil%00.sh", "evil.sh"),                   # a NUL, percent-encoded as RFC 5547 says
    (quote_name("bell\x07\x1b[31m.txt")[1:-1], "bell[31m.txt"),  # BEL, ESC
    ("%2E%2E%2Fup.txt", "up.txt"),               # ../ percent-encoded
    ("tab\there\x1b.txt", "tabhere.txt"),        # raw control characters, not encoded
], ids=["dotdot", "absolute", "backslashes", "nul", "control", "encoded-dotdot", "raw-control"])
async def test_a_hostile_file_name_lands_safely_in_the_download_folder(b, daemons, tmp_path,
                                                                       name_field, saved):
    downloads = daemons[1].state_dir / "downloads"
    endpoint = MsrpEndpoint(EndpointSettings(transport="tcp", state_dir=tmp_path / "raw"))
    async with raw_uac(b) as uac, trio.open_nursery() as nursery:
        await nursery.start(endpoint.serve)
        reservation = await endpoint.reserve()
        uri = f"sip:local@127.0.0.1:{uac.peer_port}"
        mark = b.events.mark()
        await uac.send(uac.request("INVITE", uri, 1, body=offer(
            name_field, format_path(reservation.local_path),
            reservation.local_uri.effective_port)))
        new = await b.events.wait("session.new", direction="incoming", since=mark)
        assert new["streams"] == ["file-transfer"]
        await b.state(new["id"], "ringing")
        await b.call("sessions.answer", id=new["id"])
        headers, answer = await uac.response(200)
        to_tag = re.search(r";tag=([^;>\s]+)", headers["to"])
        assert to_tag is not None
        await uac.send(uac.request("ACK", uri, 1, to_tag=to_tag.group(1)))
        path = re.search(r"^a=path:(.+?)\s*$", answer, re.M)
        assert path is not None
        theirs = MsrpMedia(parse_path(path.group(1)), ["*"], setup=Setup.PASSIVE)
        connection = await reservation.connect(theirs, active=True, max_message_size=None)
        nursery.start_soon(connection.run)
        message_id = connection.send_message(CONTENT, "text/plain", success_report=True)
        with trio.fail_after(30):
            async for event in connection.events:
                if isinstance(event, (MessageDelivered, MessageFailed)) \
                        and event.message_id == message_id:
                    break
        assert isinstance(event, MessageDelivered), event
        done = await b.events.wait("file.transfer", session=new["id"], state="completed")
        landed = Path(done["path"])
        assert landed.parent == downloads and landed.name == saved, landed
        assert await trio.Path(landed).read_bytes() == CONTENT
        await uac.send(uac.request("BYE", uri, 2, to_tag=to_tag.group(1)))
        assert (await b.state(new["id"], "ended"))["reason"] == "completed"
        assert not list(downloads.glob("*.part"))
        nursery.cancel_scope.cancel()
