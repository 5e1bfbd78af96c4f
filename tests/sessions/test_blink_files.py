"""Blink (python-sipsimple) pushes a file to sipd over TLS, as it does by default: an actpass
offer with no a=fingerprint (sipd answers passive and Blink connects), a name written as it
is, a uuid a=file-transfer-id and Blink's own a=x-file-offset; then its chunks, 64 KiB each
with `Byte-Range: start-*/size`, both reports asked on each. sipd answers each 200, and once
the file is whole and verified sends the one success REPORT python-sipsimple waits for: its
Byte-Range must end at the total, its Status read as `000 200 OK`."""

from __future__ import annotations

import hashlib
import os

import trio

from sipd.msrp.message import MsrpResponse
from sipd.msrp.uri import parse_path
from tests.files.raw_peer import RawUas
from tests.harness.files import FILE_TOPICS
from tests.harness.peer import open_peer
from tests.sessions.blink_peer import (
    BlinkUac,
    MsrpWire,
    answered_call,
    file_answer,
    file_chunks,
    file_offer,
    sdp_attribute,
)

BLINK_PATH = "msrps://127.0.0.1:40125/0a1b2c3d4e5f60718293;tcp"
NAME = "Résumé final 2026.pdf"  # Blink writes the name as it is, UTF-8, spaces and all


async def test_blink_pushes_a_file_over_tls(daemon, tmp_path):
    data = os.urandom(150_000)
    digest = hashlib.sha1(data).hexdigest().upper()
    hash_text = "sha-1:" + ":".join(digest[i:i + 2] for i in range(0, 40, 2))
    selector = f'name:"{NAME}" type:application/pdf size:{len(data)} hash:{hash_text}'
    save = tmp_path / "saved"
    save.mkdir()
    async with open_peer(daemon, FILE_TOPICS) as peer, BlinkUac.bound() as blink, \
            trio.open_nursery() as nursery:
        offer = file_offer(BLINK_PATH, 40125, selector, "3d1f2b9c-5a6e-4b1c-9c1e-1234567890ab")
        sdp, session = await answered_call(peer, blink, nursery, offer, path=str(save))
        new = peer.events.matching("session.new", id=session)[-1]
        assert new["streams"] == ["file-transfer"]
        assert new["file"]["name"] == NAME and new["file"]["hash"] == hash_text
        assert sdp_attribute(sdp, "setup") == "passive", sdp
        assert "a=recvonly" in sdp
        assert sdp_attribute(sdp, "file-transfer-id") == "3d1f2b9c-5a6e-4b1c-9c1e-1234567890ab"
        (ours,) = parse_path(sdp_attribute(sdp, "path") or "")

        async with MsrpWire.open(ours.host, ours.effective_port, tls=True) as wire:
            await wire.bind(str(ours), BLINK_PATH)
            await wire.send_chunks(file_chunks(str(ours), BLINK_PATH, data, "application/pdf"))
            report = await wire.request("REPORT")
            assert report.headers.get("Status") == "000 200 OK"
            assert report.headers.get("Byte-Range") == f"1-{len(data)}/{len(data)}"
            done = await peer.events.wait("file.transfer", session=session, state="completed")
            assert done["name"] == NAME and done["hash"] == hash_text
            assert (save / NAME).read_bytes() == data
            # python-sipsimple hangs up once the report came
            await blink.bye(("127.0.0.1", peer.ports["udp"]))
            ended = await peer.state(session, "ended")
            assert ended["reason"] == "completed", ended
            assert not [f for f in wire.frames if isinstance(f, MsrpResponse) and f.code != 200]
        nursery.cancel_scope.cancel()


async def test_sipd_pushes_a_file_to_blink_over_tls(daemon, tmp_path):
    """The other way: Blink answers active (no a=fingerprint: it connects, sipd checks
    nothing), binds, and takes the chunks as python-sipsimple does: each must carry the
    Content-Type (it reads each chunk's) and a Byte-Range with the total (it takes the file's
    size from it); it answers each 200 and REPORTs each chunk's bytes. sipd hangs up once
    the REPORTs cover the file."""
    data = os.urandom(200_000)
    source = tmp_path / "to blink.pdf"
    source.write_bytes(data)
    async with open_peer(daemon, FILE_TOPICS) as peer, RawUas.bound() as uas, \
            trio.open_nursery() as nursery:
        started = await peer.call("files.send", account="local", to=uas.uri, path=str(source))
        invite = await uas.invite()
        assert sdp_attribute(invite.body, "setup") == "actpass"
        (ours,) = parse_path(invite.attributes["path"])
        await uas.answer(invite, file_answer(invite.body, BLINK_PATH, 40125))
        nursery.start_soon(uas.serve_byes)
        received = bytearray(len(data))
        got = 0
        async with MsrpWire.open(ours.host, ours.effective_port, tls=True) as wire:
            await wire.bind(str(ours), BLINK_PATH)
            while got < len(data):
                chunk = await wire.request("SEND")
                assert chunk.headers.get("Content-Type") == "application/pdf", chunk.headers
                start, _, total = (chunk.headers.get("Byte-Range") or "").partition("-")
                assert total.endswith(f"/{len(data)}"), chunk.headers
                body = chunk.body or b""
                received[int(start) - 1:int(start) - 1 + len(body)] = body
                got += len(body)
                await wire.answer(chunk)
                if chunk.headers.get("Success-Report") == "yes":
                    await wire.report(chunk)
            assert bytes(received) == data
            ended = await peer.state(started["id"], "ended")
            assert ended["reason"] == "completed", ended
            done = await peer.events.wait("file.transfer", session=started["id"],
                                          predicate=lambda e: e["state"] != "started")
            assert done["state"] == "completed", done
        nursery.cancel_scope.cancel()
