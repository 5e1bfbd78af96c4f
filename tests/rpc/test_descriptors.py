"""File descriptors: the soft limit is raised at start, and a flood of connections to the RPC
port leaves the daemon the descriptors it needs to keep working."""

from __future__ import annotations

import errno
import socket

import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess, host_port


class LimitedSipd(SipdProcess):
    """sipd started with a given RLIMIT_NOFILE (soft, hard)."""

    def __init__(self, base, soft, hard, **kwargs):
        super().__init__(base, **kwargs)
        self.nofile = (soft, hard)

    def command(self):
        soft, hard = self.nofile
        return ["prlimit", f"--nofile={soft}:{hard}", "--", *super().command()]


def soft_limit_of(pid):
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no Max open files line")


async def test_soft_limit_is_raised_to_the_hard_limit(tmp_path):
    daemon = LimitedSipd(tmp_path, 256, 4096).start()
    try:
        assert soft_limit_of(daemon.proc.pid) == 4096
        async with connect(daemon.endpoint) as client:
            descriptors = (await client.call("system.state"))["descriptors"]
        assert descriptors["limit"] == 4096
        assert 0 < descriptors["open"] < descriptors["limit"]
        assert descriptors["reserved_for_rpc"] > 0
    finally:
        daemon.stop()


async def test_a_connection_flood_leaves_room_to_work(tmp_path):
    daemon = LimitedSipd(tmp_path, 128, 128).start()
    host, port = host_port(daemon.endpoint.url)
    flood = []
    try:
        async with connect(daemon.endpoint) as client:
            for _ in range(200):  # more than the daemon has descriptors
                sock = socket.socket()
                sock.settimeout(2)
                try:
                    sock.connect((host, port))
                except OSError as exc:
                    assert exc.errno in (errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EAGAIN)
                    sock.close()
                    continue
                flood.append(sock)
            await trio.sleep(0.5)
            # the daemon can still save settings (a temp file, a directory fsync) ...
            await client.call("settings.set", {"key": "log.level", "value": "info"})
            assert 'level = "info"' in daemon.config.read_text()
            # ... and says how it stands
            descriptors = (await client.call("system.state"))["descriptors"]
            assert descriptors["open"] < descriptors["limit"]
        assert "Too many open files" not in daemon.log()
        assert "descriptors" in daemon.log()  # refusing connections is logged
    finally:
        for sock in flood:
            sock.close()
        daemon.stop()
