"""File transfer between two sipd daemons on 127.0.0.1, driven over RPC as a user would:
`files.send` on A, `sessions.answer` on B, until B's file is complete and verified and A's
session ends "completed". Over MSRP TCP and TLS (msrp.transport). Not a test: it prints MB/s
and each daemon's CPU seconds per MB (the sender's includes hashing the file before the
offer, the receiver's hashing it as it arrives).

    python -m bench.files_daemons [--mb 200] [--transport tcp --transport tls]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess, running

from .procs import cpu_seconds

BLOCK = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    block = os.urandom(BLOCK)
    with open(path, "wb") as file:
        for _ in range(size // BLOCK):
            file.write(block)
        file.write(block[:size % BLOCK])


async def one_transfer(a: SipdProcess, b: SipdProcess, path: Path) -> dict[str, float]:
    async with connect(a.endpoint) as ra, connect(b.endpoint) as rb:
        await rb.call("events.subscribe", {"topics": ["sessions", "files"]})
        await ra.call("events.subscribe", {"topics": ["sessions"]})
        ports = (await rb.call("system.state"))["sip"]["ports"]
        a_pid, b_pid = a.proc.pid, b.proc.pid  # type: ignore[union-attr]
        cpu_a, cpu_b = cpu_seconds(a_pid), cpu_seconds(b_pid)
        started = time.monotonic()
        sent = await ra.call("files.send", {
            "account": "local", "to": f"sip:local@127.0.0.1:{ports['tcp']};transport=tcp",
            "path": str(path)})
        answered = None
        async for message in rb.events:
            data = (message.get("params") or {}).get("data") or {}
            name = (message.get("params") or {}).get("name")
            if name == "session.state" and data.get("state") == "ringing" and not answered:
                answered = time.monotonic()
                await rb.call("sessions.answer", {"id": data["id"]})
            elif name == "file.transfer" and data.get("state") in ("completed", "failed"):
                assert data["state"] == "completed", data
                break
        async for message in ra.events:
            data = (message.get("params") or {}).get("data") or {}
            if data.get("id") == sent["id"] and data.get("state") in ("ended", "failed"):
                break
        done = time.monotonic()
        return {"seconds": done - started, "after_answer": done - (answered or started),
                "cpu_a": cpu_seconds(a_pid) - cpu_a, "cpu_b": cpu_seconds(b_pid) - cpu_b}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--transport", action="append", choices=["tcp", "tls"])
    options = parser.parse_args(argv)
    size = options.mb * BLOCK
    print(f"{'MSRP':5} {'MB/s (total)':>13} {'MB/s (after answer)':>20} "
          f"{'A CPU s/MB':>11} {'B CPU s/MB':>11}")
    with tempfile.TemporaryDirectory(prefix="sipd-files-bench-") as work:
        source = Path(work) / "bench.bin"
        make_file(source, size)
        for transport in options.transport or ["tcp", "tls"]:
            settings = {"log.level": "warning", "msrp.transport": transport}
            with running(Path(work) / transport, settings) as (a, b):
                run = trio.run(one_transfer, a, b, source)
            mb = size / BLOCK
            print(f"{transport:5} {mb / run['seconds']:13.1f} {mb / run['after_answer']:20.1f} "
                  f"{run['cpu_a'] / mb:11.4f} {run['cpu_b'] / mb:11.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
