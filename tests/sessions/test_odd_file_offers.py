"""File pushes whose a=file-selector other implementations write differently from the RFC's
examples: doubango's default selector has no size (`name:"x" type:application/octet-stream`,
RFC 5547 makes every selector part optional), and python-sipsimple (Blink) writes a name as it
is, a `"` inside it included. sipd takes both: the sizeless file whole, however long its
message is (its chunks here say `Byte-Range: start-end/*` until the last), the quoted name
read to its real end and saved under a name that stays in the download folder."""

from __future__ import annotations

import os

import trio

from sipd.msrp.message import MsrpResponse
from sipd.msrp.uri import parse_path
from tests.harness.files import FILE_TOPICS
from tests.harness.peer import open_peer
from tests.sessions.blink_peer import BlinkUac, MsrpWire, answered_call, hex_id, sdp_attribute

PEER_PATH = "msrps://127.0.0.1:40127/d0b1a2c3;tcp"


def push_offer(selector: str) -> str:
    """A push as doubango offers it (over TLS, as sipd takes MSRP by default): sendonly,
    actpass, its a=accept-types and a=connection."""
    return ("v=0\r\no=doubango 1983 678901 IN IP4 127.0.0.1\r\ns=-\r\n"
            "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=message 40127 TCP/TLS/MSRP *\r\n"
            f"a=path:{PEER_PATH}\r\na=sendonly\r\n"
            "a=accept-types:message/CPIM application/octet-stream\r\n"
            "a=setup:actpass\r\na=connection:new\r\n"
            f"a=file-selector:{selector}\r\na=file-disposition:attachment\r\n"
            "a=file-transfer-id:8f2e7d3c6b5a\r\n")


def chunks(to_path: str, data: bytes, size: int = 4096) -> list[tuple[str, bytes]]:
    """The message in `size`-byte chunks whose Byte-Range leaves the total out (`*`) but on
    the last, both reports asked on the first."""
    message_id = hex_id()
    frames = []
    for offset in range(0, len(data), size):
        part = data[offset:offset + size]
        end = offset + len(part)
        last = end == len(data)
        tid = hex_id()
        head = [f"MSRP {tid} SEND", f"To-Path: {to_path}", f"From-Path: {PEER_PATH}",
                f"Message-ID: {message_id}",
                f"Byte-Range: {offset + 1}-{end}/{len(data) if last else '*'}",
                "Success-Report: yes", "Failure-Report: yes",
                "Content-Type: application/octet-stream", "\r\n"]
        frames.append((tid, "\r\n".join(head).encode() + part
                       + f"\r\n-------{tid}{'$' if last else '+'}\r\n".encode()))
    return frames


async def push(daemon, save, selector: str, data: bytes) -> tuple[dict, dict]:
    """The offer, answered into `save`, the chunks, the success REPORT: (session.new,
    the completed file.transfer)."""
    async with open_peer(daemon, FILE_TOPICS) as peer, BlinkUac.bound() as uac, \
            trio.open_nursery() as nursery:
        sdp, session = await answered_call(peer, uac, nursery, push_offer(selector),
                                           path=str(save))
        offered = peer.events.matching("session.new", id=session)[-1]
        assert "a=recvonly" in sdp, sdp
        # the whole file: no range at all without a size, else its every octet
        assert sdp_attribute(sdp, "file-range") in (None, f"1-{len(data)}"), sdp
        if "size:" not in selector:
            assert sdp_attribute(sdp, "file-range") is None, sdp
        (ours,) = parse_path(sdp_attribute(sdp, "path") or "")
        async with MsrpWire.open(ours.host, ours.effective_port, tls=True) as wire:
            await wire.bind(str(ours), PEER_PATH)
            await wire.send_chunks(chunks(str(ours), data))
            report = await wire.request("REPORT")
            assert report.headers.get("Status") == "000 200 OK"
            done = await peer.events.wait("file.transfer", session=session, state="completed")
            final = await peer.events.wait("file.progress", session=session, final=True)
            assert final["size"] == len(data), final  # a sizeless offer's too, once known
            assert not [f for f in wire.frames if isinstance(f, MsrpResponse) and f.code != 200]
            await uac.bye(("127.0.0.1", peer.ports["udp"]))
            ended = await peer.state(session, "ended")
            assert ended["reason"] == "completed", ended
        nursery.cancel_scope.cancel()
    return offered, done


async def test_doubango_pushes_a_file_without_size(daemon, tmp_path):
    data = os.urandom(20_000)
    save = tmp_path / "saved"
    save.mkdir()
    offered, done = await push(daemon, save, 'name:"x.bin" type:application/octet-stream',
                               data)
    assert offered["file"]["name"] == "x.bin" and offered["file"]["size"] is None
    assert done["size"] == len(data)  # the message's length said it
    assert (save / "x.bin").read_bytes() == data


async def test_blink_pushes_a_name_with_raw_quotes(daemon, tmp_path):
    data = os.urandom(5000)
    save = tmp_path / "saved"
    save.mkdir()
    name = 'say "hi" 100%.txt'
    offered, done = await push(daemon, save,
                               f'name:"{name}" type:text/plain size:{len(data)}', data)
    assert offered["file"]["name"] == name and offered["file"]["size"] == len(data)
    assert done["name"] == name
    assert os.listdir(save) == ["say _hi_ 100%.txt"]
    assert (save / "say _hi_ 100%.txt").read_bytes() == data
