"""The file transfer benchmark's baseline: a bare trio TCP (TLS) copy of a file from one process
to another on 127.0.0.1, file to file, no hash, no framing.

    python -m bench.files_copy receive --out PATH --size N [--tls DIR] [--hash]
                                                 # prints PORT n, then its JSON when done
    python -m bench.files_copy send --port N --path PATH [--tls DIR]     # prints its JSON

The sender reads the file in blocks of a direct MSRP chunk's size (os.read, 256 KiB) and
writes each with send_all; the receiver writes what each receive_some (256 KiB at most) gives
to its file and answers one byte once it has the whole size, which is where the sender's time
stops. With --hash the receiver also keeps the sha-1 of what arrives (hashlib, in its loop,
after each write): the least any receiver that checks the offered hash on arrival does, with
nothing else of MSRP. Each end prints {"seconds": wall, "cpu": its process CPU} over the copy
(from the connection's start, TLS handshake included, interpreter start-up not). `copy()` runs both
processes and returns their figures.

`warm_pages` is run before each measured copy or transfer. A virtual machine may hand the
memory its kernel frees back to the host (free page reporting: the machine of
docs/performance.md does within about two seconds), and a page the host has to bring back
costs there ~2 ms per MB written into the page cache, against 0.25 ms otherwise: whichever of
two runs came within two seconds of the other's deleted file wrote faster. Writing and deleting
a file of the payload's size just before leaves freshly freed, resident pages for the next
writer, whichever it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from sipd.msrp.trio.endpoint import DIRECT_CHUNK_SIZE
from sipd.msrp.trio.tls import ensure_identity, peer_context, server_context

ROOT = Path(__file__).resolve().parent.parent
BLOCK = DIRECT_CHUNK_SIZE
RECEIVE = 256 * 1024


@dataclass(frozen=True)
class CopyRun:
    seconds: float  # the sender's wall time: connect to the receiver's last-byte answer
    send_cpu: float  # CPU seconds of the sending process over its copy
    receive_cpu: float


async def _receive(out_path: Path, size: int, tls: Path | None, check_hash: bool) -> None:
    done = trio.Event()
    hasher = hashlib.sha1() if check_hash else None
    figures: dict[str, float | str] = {}
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    async def serve(stream: trio.abc.Stream) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        if tls is not None:
            stream = trio.SSLStream(stream, server_context(ensure_identity(tls)),
                                    server_side=True)
        got = 0
        while got < size:
            data = await stream.receive_some(RECEIVE)
            if not data:
                break
            os.write(out, data)
            if hasher is not None:
                hasher.update(data)
            got += len(data)
        await stream.send_all(b"k")
        if hasher is not None:
            figures["sha1"] = hasher.hexdigest()
        figures.update(seconds=time.perf_counter() - started, cpu=time.process_time() - cpu,
                       bytes=got)
        done.set()

    try:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, serve, 0)
            print(f"PORT {listeners[0].socket.getsockname()[1]}", flush=True)
            await done.wait()
            nursery.cancel_scope.cancel()
    finally:
        os.close(out)
    print(json.dumps(figures), flush=True)


async def _send(port: int, path: Path, tls: Path | None) -> None:
    source = os.open(path, os.O_RDONLY)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            if tls is not None:
                stream = trio.SSLStream(stream, peer_context(ensure_identity(tls)),
                                        server_hostname=None)
            while block := os.read(source, BLOCK):
                await stream.send_all(block)
            answer = await stream.receive_some(1)
            figures = {"seconds": time.perf_counter() - started,
                       "cpu": time.process_time() - cpu}
        finally:
            await stream.aclose()  # the TLS stream's, when there is one: close_notify
    finally:
        os.close(source)
    if answer != b"k":
        raise SystemExit("the receiver did not confirm the copy")
    print(json.dumps(figures), flush=True)


def warm_pages(work: Path, size: int) -> None:
    """Writes `size` bytes into a file in `work` and deletes it (see the module's text)."""
    block = bytes(1024 * 1024)
    scratch = work / "warm-pages.tmp"
    out = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for done in range(0, size, len(block)):
            os.write(out, block[:min(len(block), size - done)])
    finally:
        os.close(out)
        scratch.unlink()


def copy(path: Path, work: Path, tls: bool, *, sha1: str | None = None) -> CopyRun:
    """One copy of `path` between two fresh processes (TLS: a self-signed identity in `work`;
    `sha1`: the file's, which the receiver checks over what arrives); the copy is removed
    afterwards."""
    identity = work / "bare-identity"
    if tls:
        ensure_identity(identity)  # made once, here, so the two ends do not race for it
    extra = ["--tls", str(identity)] if tls else []
    out = work / "bare.out"
    command = [sys.executable, "-m", "bench.files_copy"]
    receiver = subprocess.Popen(
        [*command, "receive", "--out", str(out), "--size", str(path.stat().st_size), *extra,
         *(["--hash"] if sha1 else [])],
        stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert receiver.stdout is not None
        line = receiver.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the bare receiver did not start: {line!r}")
        sent = subprocess.run([*command, "send", "--port", line.split()[1], "--path", str(path),
                               *extra], stdout=subprocess.PIPE, cwd=ROOT, text=True,
                              check=True, timeout=300)
        received = json.loads(receiver.stdout.readline())
        receiver.wait(30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    if received.get("bytes") != path.stat().st_size or out.stat().st_size != received["bytes"]:
        raise RuntimeError(f"the bare copy is not whole: {received}")
    if sha1 is not None and received.get("sha1") != sha1:
        raise RuntimeError(f"the bare copy's sha-1 is not the file's: {received}")
    out.unlink()
    figures = json.loads(sent.stdout)
    return CopyRun(figures["seconds"], figures["cpu"], received["cpu"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.files_copy",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    receive = sub.add_parser("receive")
    receive.add_argument("--out", type=Path, required=True)
    receive.add_argument("--size", type=int, required=True)
    receive.add_argument("--tls", type=Path)
    receive.add_argument("--hash", action="store_true")
    send = sub.add_parser("send")
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--path", type=Path, required=True)
    send.add_argument("--tls", type=Path)
    args = parser.parse_args(argv)
    if args.role == "receive":
        trio.run(_receive, args.out, args.size, args.tls, args.hash)
    else:
        trio.run(_send, args.port, args.path, args.tls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
