"""Screen sharing end to end on 127.0.0.1 with real programs: Xvfb shows a known colour,
x11vnc (-localhost) serves it, one MSRP connection pair (TCP, TLS) carries the RFB between a
sharing bridge (to x11vnc) and a viewing bridge (a loopback port), and vncdotool connects to
that port and captures the screen; the test checks the picture."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import trio

from sipd.msrp.sdp import MsrpMedia, Setup
from sipd.msrp.trio.endpoint import EndpointSettings, MsrpEndpoint
from sipd.screen.sdp import ACCEPT_TYPES
from sipd.screen.trio.bridge import (
    BridgeEnd,
    ViewerPort,
    VncConnectError,
    bridge,
    connect_vnc_server,
)

pytestmark = pytest.mark.peer

PROGRAMS = ("Xvfb", "x11vnc", "xsetroot")
VNCDO = Path(sys.executable).with_name("vncdo")
COLOUR = (0x20, 0xC0, 0x60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


@pytest.fixture
def vnc_server(tmp_path):
    """Xvfb on a free display painted COLOUR, served by x11vnc on 127.0.0.1: its port."""
    with start_vnc_server(tmp_path) as (port, _):
        yield port


@contextlib.contextmanager
def start_vnc_server(tmp_path):
    """(x11vnc's port, a function that stops x11vnc) for Xvfb painted COLOUR (skipped,
    saying why, when a program is missing)."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing or not VNCDO.exists():
        pytest.skip(f"missing {', '.join(missing) or 'vncdotool'} (tests/install-deps.sh, "
                    f"pip install vncdotool)")
    display = next(n for n in range(90, 200) if not os.path.exists(f"/tmp/.X11-unix/X{n}")
                   and not os.path.exists(f"/tmp/.X{n}-lock"))
    processes = []
    try:
        xvfb = subprocess.Popen(["Xvfb", f":{display}", "-screen", "0", "320x240x24",
                                 "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / "xvfb.log", "wb"))
        processes.append(xvfb)
        deadline = time.monotonic() + 15
        while not os.path.exists(f"/tmp/.X11-unix/X{display}"):
            if xvfb.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xvfb did not start: {(tmp_path / 'xvfb.log').read_text()}")
            time.sleep(0.05)
        port = free_port()
        x11vnc = subprocess.Popen(
            ["x11vnc", "-display", f":{display}", "-localhost", "-rfbport", str(port),
             "-nopw", "-forever", "-shared", "-noxdamage", "-quiet"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "x11vnc.log", "wb"))
        processes.append(x11vnc)
        wait_for_port(port, x11vnc)
        colour = "#{:02x}{:02x}{:02x}".format(*COLOUR)
        subprocess.run(["xsetroot", "-display", f":{display}", "-solid", colour],
                       check=True, timeout=10)
        def stop() -> None:
            x11vnc.terminate()
            x11vnc.wait(timeout=10)

        yield port, stop
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def msrp_pair(nursery: trio.Nursery, state: Path, transport: str):
    """(sharer, viewer) MSRP connections taking application/x-rfb chunk by chunk."""
    ends = []
    for name in ("share", "view"):
        endpoint = MsrpEndpoint(EndpointSettings(transport=transport, state_dir=state / name))
        await nursery.start(endpoint.serve)
        ends.append(await endpoint.reserve())
    ours, theirs = ends
    offer = MsrpMedia(ours.local_path, list(ACCEPT_TYPES), setup=Setup.ACTPASS,
                      fingerprints=ours.fingerprints)
    answer = MsrpMedia(theirs.local_path, list(ACCEPT_TYPES), setup=Setup.PASSIVE,
                       fingerprints=theirs.fingerprints)
    options = {"deliver_chunks": True, "accept_types": ACCEPT_TYPES}
    sharer = await ours.connect(answer, active=True, **options)
    nursery.start_soon(sharer.run)
    viewer = await theirs.connect(offer, active=False, **options)
    nursery.start_soon(viewer.run)
    return sharer, viewer


def dominant_colour(path: Path) -> tuple[int, int, int]:
    from PIL import Image

    with Image.open(path) as image:
        counts = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert counts, "an empty capture"
    return max(counts)[1]


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_a_viewer_sees_the_shared_screen(tmp_path, vnc_server, transport):
    capture = tmp_path / "capture.png"
    ends: dict[str, BridgeEnd] = {}
    async with trio.open_nursery() as nursery:
        sharer, viewer = await msrp_pair(nursery, tmp_path, transport)

        async def share() -> None:
            vnc = await connect_vnc_server("127.0.0.1", vnc_server)
            ends["share"] = await bridge(sharer, vnc)

        async with ViewerPort() as port:
            nursery.start_soon(share)

            async def view() -> None:
                ends["view"] = await bridge(viewer, await port.accept())

            nursery.start_soon(view)
            with trio.fail_after(60):
                result = await trio.run_process(
                    [str(VNCDO), "-s", f"127.0.0.1::{port.port}", "capture", str(capture)],
                    capture_stdout=True, capture_stderr=True, check=False)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        with trio.fail_after(10):  # the viewer left: the viewing bridge ends, then the MSRP
            while "view" not in ends:
                await trio.sleep(0.05)
        await viewer.close(ends["view"].reason)
        with trio.fail_after(10):
            while "share" not in ends:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert "VNC side closed" in ends["view"].reason and ends["view"].vnc_side
    assert ends["share"] == BridgeEnd("connection closed by the peer", vnc_side=False)
    assert dominant_colour(capture) == COLOUR


async def test_an_unreachable_vnc_server_says_where():
    port = free_port()
    with pytest.raises(VncConnectError, match=f"cannot reach the VNC server at 127.0.0.1:{port}"):
        await connect_vnc_server("127.0.0.1", port, timeout=5)


async def test_the_viewer_port_takes_one_viewer_on_loopback():
    async with ViewerPort() as port:
        assert port.port
        client = await trio.open_tcp_stream("127.0.0.1", port.port)
        server = await port.accept()
        with pytest.raises(OSError):
            await trio.open_tcp_stream("127.0.0.1", port.port)
        await client.aclose()
        await server.aclose()


async def test_a_flooding_vnc_side_is_held_back_when_the_peer_does_not_read(tmp_path):
    """RFB from the local side waits in the MSRP session only up to max_unsent messages: the
    bridge stops reading the TCP side when the peer stops taking data."""
    left, right = trio.socket.socketpair()
    vnc_side, bridge_side = trio.SocketStream(left), trio.SocketStream(right)
    written = 0

    async def flood() -> None:
        nonlocal written
        block = os.urandom(64 * 1024)
        while True:
            await vnc_side.send_all(block)
            written += len(block)

    async with trio.open_nursery() as nursery:
        sharer, _viewer = await msrp_pair(nursery, tmp_path, "tcp")  # the viewer never reads
        nursery.start_soon(partial(bridge, sharer, bridge_side, max_unsent=4))
        nursery.start_soon(flood)
        previous = -1
        while written != previous:  # until the flood is stuck
            previous = written
            await trio.sleep(0.5)
        assert len(sharer.session.pending_messages) <= 4
        assert written < 256 * 1024 * 1024
        nursery.cancel_scope.cancel()
