"""A receiving process killed with SIGKILL half way through a file keeps its part and its
record; a new process resumes with only the missing range, and the whole file's hash holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import trio

from sipd.files.sdp import parse_file_range
from sipd.files.trio.hashing import hash_file
from sipd.files.trio.sender import FileRangeSource, describe_file
from sipd.msrp.events import MessageDelivered, MessageFailed
from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.msrp.uri import format_path, parse_path

from .test_transfer import make_file

SIZE = 12 * 1024 * 1024 + 7  # 12 writes of 1 MiB and a bit: a kill lands between two


class Receiver:
    def __init__(self, state, folder):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.files.receiver_process", str(state), str(folder)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    async def line(self) -> dict:
        with trio.fail_after(30):
            text = await trio.to_thread.run_sync(self.process.stdout.readline)
        assert text, f"the receiver process ended ({self.process.wait()})"
        return json.loads(text)

    def send(self, **data) -> None:
        self.process.stdin.write(json.dumps(data) + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


async def send_to(receiver: Receiver, nursery, state, path, selector, *, until_half: bool):
    """Offers the file to the receiver process and sends the range it asks for; returns that
    range and the last line it printed."""
    ready = await receiver.line()
    endpoint = MsrpEndpoint(EndpointSettings(transport="tcp", state_dir=state))
    await nursery.start(endpoint.serve)
    reservation = await endpoint.reserve()
    receiver.send(path=format_path(reservation.local_path), selector=selector.value())
    asked = await receiver.line()
    theirs = MsrpMedia(parse_path(ready["path"]), ["*"], setup=Setup.PASSIVE)
    connection = await reservation.connect(theirs, active=True, max_message_size=None)
    nursery.start_soon(connection.run)
    file_range = parse_file_range(asked["range"])
    source = FileRangeSource.open(path, file_range)
    message_id = connection.send_message(source, selector.type, success_report=True)
    while True:
        line = await receiver.line()
        if until_half and line.get("transferred", 0) >= SIZE // 2:
            receiver.kill()
            return asked, line, None
        if "done" in line or "failed" in line:
            async for event in connection.events:
                if isinstance(event, (MessageDelivered, MessageFailed)) and \
                        event.message_id == message_id:
                    return asked, line, event
            raise AssertionError("no outcome for the file's message")


async def test_a_killed_receiver_resumes_with_the_missing_range(tmp_path):
    path = make_file(tmp_path / "movie.mkv", SIZE)
    selector = await describe_file(path)
    state, folder = tmp_path / "receiver", tmp_path / "downloads"

    first = Receiver(state, folder)
    try:
        async with trio.open_nursery() as nursery:
            asked, last, _ = await send_to(first, nursery, tmp_path / "s1", path, selector,
                                           until_half=True)
            nursery.cancel_scope.cancel()
    finally:
        first.kill()
    assert asked == {"range": f"1-{SIZE}", "held": 0}
    assert os.listdir(folder) == ["movie.mkv.part"]

    second = Receiver(state, folder)
    try:
        async with trio.open_nursery() as nursery:
            asked, last, outcome = await send_to(second, nursery, tmp_path / "s2", path,
                                                 selector, until_half=False)
            nursery.cancel_scope.cancel()
    finally:
        second.kill()
    held = asked["held"]
    # what was written when it died: at least half, less what waited for its 1 MiB write
    assert SIZE // 2 - 1024 * 1024 <= held < SIZE and asked["range"] == f"{held + 1}-{SIZE}"
    assert last == {"done": str(folder / "movie.mkv")}
    assert isinstance(outcome, MessageDelivered)
    assert await hash_file(folder / "movie.mkv") == selector.hash
    assert os.listdir(folder) == ["movie.mkv"]
    assert json.loads((state / "parts.json").read_text())["parts"] == []
