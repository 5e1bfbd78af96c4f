"""The daemon's side of the media workers' zygote (sipd/media/zygote.py): start it, ask it for
workers, and see each worker as a process like one trio started (`ForkedProcess`: pid,
returncode, stderr, send_signal, kill, wait).

    zygote = await Zygote.start(nursery, python=sys.executable, env=env)
    process = await zygote.spawn(["--log-level", "3"], control=child_end)
    ...
    await zygote.aclose()

A worker is the zygote's child, not ours: the zygote reaps it and reports its exit status;
we signal it through a pidfd, which names that very process even after its pid is reused.
Should the zygote itself die, its workers live on (adopted by init): each is then watched
through its pidfd, and its exit status is lost (`STATUS_LOST`). The supervisor then starts
new workers the plain way.
"""

from __future__ import annotations

import array
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
from typing import Any

import trio

log = logging.getLogger(__name__)

STATUS_LOST = 1000  # a returncode no process has: the zygote died before it could report it
START_TIMEOUT = 20.0
SPAWN_TIMEOUT = 10.0
MAX_PACKET = 65536


class ZygoteUnavailable(Exception):
    """The zygote cannot start a worker (it is gone, or refused): start one the plain way."""


class ForkedProcess:
    """A worker forked by the zygote, with the parts of trio.Process the supervisor uses."""

    def __init__(self, pid: int, stderr: trio.lowlevel.FdStream) -> None:
        self.pid = pid
        self.stderr = stderr
        self.returncode: int | None = None
        self._ended = trio.Event()
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except OSError:  # gone (and reaped) already: its exit report is on the way
            self._pidfd = None

    def send_signal(self, signum: int) -> None:
        if self.returncode is not None:
            return
        if self._pidfd is not None:
            signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        await self._ended.wait()
        assert self.returncode is not None
        return self.returncode

    def ended(self, returncode: int) -> None:
        if self.returncode is not None:
            return
        self.returncode = returncode
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._ended.set()

    async def watch_orphaned(self) -> None:
        """The zygote is gone: wait for the end through the pidfd (status unknown)."""
        if self._pidfd is not None and self.returncode is None:
            await trio.lowlevel.wait_readable(self._pidfd)
        self.ended(STATUS_LOST)


class Zygote:
    def __init__(self, process: trio.Process, sock: trio.socket.SocketType,
                 nursery: trio.Nursery) -> None:
        self.process = process
        self._sock = sock
        self._nursery = nursery
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[trio.Event, list[Any]]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._stderr: dict[int, trio.lowlevel.FdStream] = {}  # by spawn id, until spawned
        self._ready = trio.Event()
        self.alive = True

    @classmethod
    async def start(cls, nursery: trio.Nursery, *, python: str, env: dict[str, str],
                    start_timeout: float = START_TIMEOUT) -> Zygote:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = await trio.lowlevel.open_process(
                [python, "-m", "sipd.media.zygote", "--socket-fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, env=env, start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        zygote = cls(process, trio.socket.from_stdlib_socket(ours), nursery)
        nursery.start_soon(zygote._serve)
        with trio.move_on_after(start_timeout):
            await zygote._ready.wait()
        if not zygote._ready.is_set() or not zygote.alive:
            await zygote.aclose()
            raise ZygoteUnavailable(f"the media workers' zygote did not start within "
                                    f"{start_timeout:g} s (exit status {process.returncode})")
        return zygote

    async def spawn(self, argv: list[str], *, control: socket.socket,
                    timeout: float = SPAWN_TIMEOUT) -> ForkedProcess:
        """A new worker running `python -m sipd.media.worker ARGV --control-fd N`, `control`
        being its end of the control socket pair (the caller closes its copy)."""
        if not self.alive:
            raise ZygoteUnavailable("the media workers' zygote is gone")
        ident = next(self._ids)
        read_end, write_end = os.pipe()
        self._stderr[ident] = trio.lowlevel.FdStream(read_end)
        done, result = self._pending[ident] = (trio.Event(), [])
        try:
            data = json.dumps({"spawn": ident, "argv": argv}).encode()
            fds = array.array("i", [control.fileno(), write_end])
            try:
                await self._sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            except OSError as exc:
                raise ZygoteUnavailable(f"the media workers' zygote is gone: {exc}") from None
            finally:
                os.close(write_end)
            with trio.move_on_after(timeout):
                await done.wait()
        finally:
            self._pending.pop(ident, None)
            stderr = self._stderr.pop(ident, None)
        if not result or isinstance(result[0], str):
            if stderr is not None:
                await stderr.aclose()
            why = result[0] if result else f"no answer within {timeout:g} s"
            raise ZygoteUnavailable(f"the media workers' zygote did not start a worker: {why}")
        process: ForkedProcess = result[0]
        return process

    async def aclose(self) -> None:
        """Close our end (the zygote exits) and reap it; the workers are not touched."""
        self.alive = False
        self._sock.close()
        with trio.move_on_after(5):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def _serve(self) -> None:
        try:
            while True:
                try:
                    data = await self._sock.recv(MAX_PACKET)
                except (OSError, trio.ClosedResourceError):
                    break
                if not data:
                    break
                try:
                    message = json.loads(data)
                except ValueError:
                    log.error("media zygote sent something that is not JSON: %.80r", data)
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
        finally:
            self._gone()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("event") == "ready":
            self._ready.set()
        elif "spawned" in message:
            pending = self._pending.get(message["spawned"])
            stderr = self._stderr.pop(message["spawned"], None)
            pid = message.get("pid")
            if pending is None or stderr is None:
                return  # we gave up waiting; the worker sees its control socket closed
            if isinstance(pid, int):
                # Known before the spawner resumes: the exit report may come first.
                process = self._children[pid] = ForkedProcess(pid, stderr)
                pending[1].append(process)
            else:
                self._stderr[message["spawned"]] = stderr  # closed by the spawner
                pending[1].append(str(message.get("error") or "refused"))
            pending[0].set()
        elif "exited" in message:
            child = self._children.pop(message["exited"], None)
            if child is not None and isinstance(message.get("returncode"), int):
                child.ended(message["returncode"])
        elif "error" in message:
            log.error("media zygote: %s", message["error"])

    def _gone(self) -> None:
        if self.alive:
            log.error("the media workers' zygote ended (exit status %s); new workers start "
                      "without it", self.process.returncode)
        self.alive = False
        for pending in self._pending.values():
            pending[0].set()
        for child in self._children.values():
            self._nursery.start_soon(child.watch_orphaned)
        self._children.clear()
