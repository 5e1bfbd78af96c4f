"""A file receiver in a process of its own, for the kill -9 test: an MSRP endpoint on
127.0.0.1 that takes one file into a folder, keeping its part in a PartStore as it goes.

    python -m tests.files.receiver_process STATE_DIR FOLDER

Protocol on stdin/stdout, one JSON object a line:
  out {"path": [our a=path URIs], "port": N}             ready, listening
  in  {"path": [...sender's a=path], "selector": "..."}  the offer (its a=file-selector value)
  out {"range": "start-stop", "held": N}                 what we ask for (a resume: held > 0)
  out {"transferred": N}                                 after each write to the part
  out {"done": "/final/path"} or {"failed": "reason"}
Each write is followed by a 20 ms pause, so a test can kill the process half way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from sipd.files.selector import parse_file_selector
from sipd.files.trio.parts import PartStore
from sipd.files.trio.receiver import FileReceiver, TransferFailed
from sipd.msrp.events import ChunkReceived
from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.uri import format_path, parse_path


def say(**data: object) -> None:
    print(json.dumps(data), flush=True)


async def main(state: Path, folder: Path) -> None:
    store = PartStore(state / "parts.json")
    await store.load()
    async with trio.open_nursery() as nursery:
        endpoint = MsrpEndpoint(EndpointSettings(transport="tcp", state_dir=state))
        await nursery.start(endpoint.serve)
        reservation = await endpoint.reserve()
        say(path=format_path(reservation.local_path), port=endpoint.port)
        offer = json.loads(await trio.to_thread.run_sync(sys.stdin.readline))
        selector = parse_file_selector(offer["selector"])
        receiver = await FileReceiver.create(folder, selector, resume=store.find(selector))
        say(range=str(receiver.range), held=receiver.incoming.contiguous)
        await store.put(receiver.record())
        theirs = MsrpMedia(parse_path(offer["path"]), ["*"], setup=Setup.ACTIVE)
        connection = await reservation.connect(theirs, active=False, deliver_chunks=True,
                                               owner_confirms=True, max_message_size=None)
        nursery.start_soon(connection.run)
        async for event in connection.events:
            if not isinstance(event, ChunkReceived):
                continue
            await receiver.write(event.start, event.data, event.total)
            await store.put(receiver.record())
            say(transferred=receiver.transferred)
            if receiver.complete:
                try:
                    path = await receiver.finish()
                except TransferFailed as exc:
                    await store.remove(receiver.folder, receiver.part)
                    say(failed=exc.reason)
                else:
                    await store.remove(receiver.folder, receiver.part)
                    connection.confirm_incoming(event.message_id)
                    say(done=path)
                break
            await trio.sleep(0.02)
        await connection.close("done")
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), Path(sys.argv[2]))
