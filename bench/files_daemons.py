"""File transfer between two sipd daemons on 127.0.0.1, driven over RPC as a user would:
`files.send` on A, `sessions.answer` on B when it rings, until B's file is complete and
verified and A's session ends. Used by bench/files_bench.py (`python -m bench --only files`),
which runs it against a bare copy of the same file; alone it prints one transfer per transport:

    python -m bench.files_daemons [--mb 200] [--transport tcp --transport tls]

The figures of one transfer (DaemonRun): "hash" is the `files.send` call (the daemon hashes
the file before it offers it; the session's start is a small part of it), "seconds" from the
answer to the end (MSRP connection, the file, B's check of its sha-1 and rename, A's success
REPORT), "total" from `files.send` to the end. CPU is each daemon's process time (/proc),
worker threads included: the sender's from the answer (and from `files.send`: with its hash),
the receiver's from the answer (its sha-1 as the file arrives, its writes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess, running

from .procs import cpu_seconds

BLOCK = 1024 * 1024


@dataclass(frozen=True)
class DaemonRun:
    seconds: float  # from sessions.answer to the end
    total: float  # from files.send to the end
    hash_seconds: float  # the files.send call: the sender's sha-1 (and the session's start)
    send_cpu: float  # A's CPU seconds from the answer
    send_cpu_total: float  # A's CPU seconds from files.send (its hash included)
    receive_cpu: float  # B's CPU seconds from the answer


def settings(transport: str) -> dict[str, Any]:
    return {"log.level": "warning", "msrp.transport": transport}


def make_file(path: Path, size: int) -> None:
    block = os.urandom(BLOCK)
    with open(path, "wb") as file:
        for _ in range(size // BLOCK):
            file.write(block)
        file.write(block[:size % BLOCK])


def _event(message: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    params = message.get("params") or {}
    return params.get("name"), params.get("data") or {}


async def transfer(a: SipdProcess, b: SipdProcess, path: Path, *, keep: bool = False) -> DaemonRun:
    """One file from A to B; B's copy is removed afterwards unless `keep`."""
    async with connect(a.endpoint) as ra, connect(b.endpoint) as rb:
        await rb.call("events.subscribe", {"topics": ["sessions", "files"]})
        await ra.call("events.subscribe", {"topics": ["sessions"]})
        port = (await rb.call("system.state"))["sip"]["ports"]["tcp"]
        a_pid, b_pid = a.proc.pid, b.proc.pid  # type: ignore[union-attr]
        cpu_a_total = cpu_seconds(a_pid)
        started = time.perf_counter()
        sent = await ra.call("files.send", {
            "account": "local", "to": f"sip:local@127.0.0.1:{port};transport=tcp",
            "path": str(path)})
        hashed = time.perf_counter() - started
        answered = cpu_a = cpu_b = None
        received: str | None = None
        async for message in rb.events:
            name, data = _event(message)
            if name == "session.state" and data.get("state") == "ringing" and answered is None:
                cpu_a, cpu_b = cpu_seconds(a_pid), cpu_seconds(b_pid)
                answered = time.perf_counter()
                await rb.call("sessions.answer", {"id": data["id"]})
            elif name == "file.transfer" and data.get("state") in ("completed", "failed"):
                if data["state"] != "completed":
                    raise RuntimeError(f"the transfer failed: {data}")
                received = data.get("path")
                break
        cpu_b_end = cpu_seconds(b_pid)
        async for message in ra.events:
            name, data = _event(message)
            if data.get("id") == sent["id"] and data.get("state") in ("ended", "failed"):
                if data["state"] != "ended":
                    raise RuntimeError(f"the sender's session failed: {data}")
                break
        done = time.perf_counter()
        cpu_a_end = cpu_seconds(a_pid)
    assert answered is not None and cpu_a is not None and cpu_b is not None
    await trio.to_thread.run_sync(_check, received, path, keep)
    return DaemonRun(done - answered, done - started, hashed, cpu_a_end - cpu_a,
                     cpu_a_end - cpu_a_total, cpu_b_end - cpu_b)


def _check(received: str | None, sent: Path, keep: bool) -> None:
    if received is None or os.path.getsize(received) != sent.stat().st_size:
        raise RuntimeError(f"the received file is not whole: {received}")
    if not keep:
        os.unlink(received)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--transport", action="append", choices=["tcp", "tls"])
    options = parser.parse_args(argv)
    size = options.mb * BLOCK
    mb = size / 1e6
    print(f"{'MSRP':5} {'MB/s':>8} {'MB/s from files.send':>21} {'hash s':>7} "
          f"{'A ms/MB':>8} {'B ms/MB':>8}")
    with tempfile.TemporaryDirectory(prefix="sipd-files-bench-") as work:
        source = Path(work) / "bench.bin"
        make_file(source, size)
        for transport in options.transport or ["tcp", "tls"]:
            with running(Path(work) / transport, settings(transport)) as (a, b):
                run = trio.run(transfer, a, b, source)
            print(f"{transport:5} {mb / run.seconds:8.1f} {mb / run.total:21.1f} "
                  f"{run.hash_seconds:7.2f} {run.send_cpu / mb * 1e3:8.2f} "
                  f"{run.receive_cpu / mb * 1e3:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
