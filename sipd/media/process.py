"""One media worker process as the trio main process sees it (never imports pjsua2).

`WorkerProcess.start` spawns `python -m sipd.media.worker` with one end of a socket pair,
waits for its `ready` event and then serves it from tasks in the caller's nursery: one reads
the control channel (replies resolve `request` calls, events go to `on_event`), one forwards
stderr to the `sipd.media.worker` logger, one reaps the process and reports its end, with a
reason a person understands, through `on_exit`.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any, Callable, Protocol

import trio

from sipd.media import protocol
from sipd.media.forked import STATUS_LOST, Zygote, ZygoteUnavailable

log = logging.getLogger("sipd.media.worker")

OnEvent = Callable[["WorkerProcess", dict[str, Any]], None]
OnExit = Callable[["WorkerProcess"], None]

# Where `import sipd` finds this very code, so a worker runs what the daemon runs.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])
_PJLIB_EARLY_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3} ")
_PJ_LEVELS = {0: logging.ERROR, 1: logging.ERROR, 2: logging.WARNING}


def worker_env() -> dict[str, str]:
    """The environment of a worker (and of the zygote): ours, with `import sipd` finding this
    very code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
    return env


class ChildProcess(Protocol):
    """What a worker's process is to us: started by trio, or forked by the zygote."""

    pid: int

    @property
    def returncode(self) -> int | None: ...

    @property
    def stderr(self) -> trio.abc.ReceiveStream | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...

    async def wait(self) -> int: ...


class MediaWorkerError(Exception):
    """A media worker refused or failed a command; the message is meant for a person."""


class MediaWorkerGone(MediaWorkerError):
    """The media worker exited (or crashed) before it answered."""


class WorkerProcess:
    def __init__(self, worker_id: str, process: ChildProcess, control: trio.SocketStream,
                 on_event: OnEvent, on_exit: OnExit,
                 control_socket: socket.socket | None = None) -> None:
        self.id = worker_id
        self.process = process
        self.pid: int = process.pid
        self.ready: dict[str, Any] = {}
        self.exit_reason: str | None = None  # set once the process is gone
        self.crashed = False
        self.stopping = False  # an exit we asked for is no crash
        self.kill_reason: str | None = None  # why we killed it ourselves (it hung)
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.last_error = ""  # the message of its latest `error` event
        self._control = control
        # The same socket as `control`, for writing a command at once (see `_write_now`).
        self._control_socket = control_socket
        self._on_event = on_event
        self._on_exit = on_exit
        self._ids = itertools.count(1)
        self._pending: dict[int, _PendingReply] = {}
        self._ready_event = trio.Event()
        self._gone = trio.Event()
        self._stderr_done = trio.Event()
        self._send_lock = trio.Lock()
        self._doorbell: socket.socket | None = None
        self._doorbell_address: tuple[str, int] = ("127.0.0.1", 0)

    # -- starting ---------------------------------------------------------------------------

    @classmethod
    async def start(cls, nursery: trio.Nursery, worker_id: str, *,
                    on_event: OnEvent | None = None, on_exit: OnExit | None = None,
                    log_level: int = 3, poll_ms: int = 50, start_timeout: float = 20.0,
                    python: str = sys.executable, zygote: Zygote | None = None,
                    clock_rate: int | None = None) -> WorkerProcess:
        """Start a worker (forked by `zygote` when there is one that works, else a fresh
        interpreter) and wait for its `ready` event (MediaWorkerGone if it never comes).
        `clock_rate`: its conference bridge's (None: pjsua's default)."""
        args = ["--log-level", str(log_level), "--poll-ms", str(poll_ms)]
        if clock_rate is not None:
            args += ["--clock-rate", str(clock_rate)]
        process: ChildProcess | None = None
        if zygote is not None and zygote.alive:
            parent_end, child_end = socket.socketpair()
            try:
                process = await zygote.spawn(args, control=child_end)
            except ZygoteUnavailable as exc:
                log.warning("media worker %s: %s; starting it without the zygote",
                            worker_id, exc)
                parent_end.close()
            except BaseException:
                parent_end.close()
                raise
            finally:
                child_end.close()
        if process is None:
            parent_end, process = await cls._spawn(args, python)
        control = trio.SocketStream(trio.socket.from_stdlib_socket(parent_end))
        worker = cls(worker_id, process, control, on_event or (lambda w, e: None),
                     on_exit or (lambda w: None), control_socket=parent_end)
        nursery.start_soon(worker._read_stderr)
        nursery.start_soon(worker._serve)
        try:
            with trio.move_on_after(start_timeout):
                await worker._ready_or_gone()
        except BaseException:  # cancelled while starting: leave nothing behind
            worker.stopping = True
            with trio.CancelScope(shield=True):
                await worker.kill()
            raise
        if not worker._ready_event.is_set():
            reason = worker.exit_reason or f"no ready event within {start_timeout:g} s"
            worker.stopping = True
            await worker.kill()
            with trio.move_on_after(1):
                await worker._stderr_done.wait()
            # Why it failed is in its last words: an error event or a Python traceback.
            last_words = worker.last_error or (worker.stderr_tail[-1] if worker.stderr_tail
                                               else "")
            raise MediaWorkerGone(f"media worker {worker_id} did not start: {reason}"
                                  + (f" ({last_words})" if last_words else ""))
        return worker

    @staticmethod
    async def _spawn(args: list[str], python: str) -> tuple[socket.socket, ChildProcess]:
        """A fresh interpreter running the worker; our end of its control socket pair."""
        parent_end, child_end = socket.socketpair()
        try:
            process = await trio.lowlevel.open_process(
                [python, "-m", "sipd.media.worker", "--control-fd", str(child_end.fileno()),
                 *args],
                pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=worker_env(),
                # Its own session: a Ctrl-C at the terminal reaches the daemon, which then
                # stops its workers in order, instead of killing them mid-call.
                start_new_session=True)
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()  # only the worker holds it now: its exit means EOF here
        return parent_end, process

    async def _ready_or_gone(self) -> None:
        async with trio.open_nursery() as nursery:
            async def wait(event: trio.Event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()
            nursery.start_soon(wait, self._ready_event)
            nursery.start_soon(wait, self._gone)

    # -- properties -------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return not self._gone.is_set()

    @property
    def uri(self) -> str:
        return self.ready.get("uri", "")

    @property
    def sip(self) -> dict[str, str]:
        return dict(self.ready.get("sip", {}))

    # -- commands ---------------------------------------------------------------------------

    async def request(self, cmd: str, *, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Send one command and return the reply's fields; MediaWorkerError on refusal."""
        if not self.alive:
            raise MediaWorkerGone(f"media worker {self.id} is gone: {self.exit_reason}")
        request_id = next(self._ids)
        pending = self._pending[request_id] = _PendingReply()
        data = protocol.encode(protocol.command(request_id, cmd, **fields))
        try:
            try:
                self._send_lock.acquire_nowait()
            except trio.WouldBlock:
                await self._send_lock.acquire()
            else:
                data = self._write_now(data)
            try:
                if data:
                    await self._control.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the reaper fails the pending reply with the exit reason
            else:
                self._ring_doorbell()
            finally:
                self._send_lock.release()
            with trio.move_on_after(timeout):
                await pending.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if pending.reply is None:
            raise MediaWorkerError(f"media worker {self.id} did not answer {cmd!r} "
                                   f"within {timeout:g} s")
        if not pending.reply.get("ok"):
            error = pending.reply.get("error") or "refused without a reason"
            raise (MediaWorkerGone if pending.gone else MediaWorkerError)(error)
        return {k: v for k, v in pending.reply.items() if k not in ("id", "ok")}

    def _write_now(self, data: bytes) -> bytes:
        """Writes what the control socket takes right now and returns the rest (usually
        nothing: a command is small and the worker keeps reading). A command then reaches
        the worker before this task yields to the scheduler: on a busy daemon (RPC replies
        and events being written) every schedule point of a call setup costs time. Only
        with the send lock held, so nothing else writes between this and the rest."""
        if self._control_socket is None:
            return data
        try:
            sent = self._control_socket.send(data)
        except OSError:  # full (BlockingIOError) or broken: send_all waits or says so
            return data
        return data[sent:]

    def _ring_doorbell(self) -> None:
        """Wake the worker's pjsua poll so it reads the command now, not after `poll_ms`.

        The worker's loop sleeps inside libHandleEvents, which wakes only for its SIP
        sockets; a bare CRLF keep-alive to its own UDP SIP port wakes it and pjsip drops it
        silently. Best effort: a lost datagram costs at most one poll interval. A plain
        non-blocking socket: a datagram on loopback is sent at once, no need to yield.
        """
        if self._doorbell is None:
            return
        try:
            self._doorbell.sendto(protocol.DOORBELL, self._doorbell_address)
        except OSError:
            pass

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask for a clean shutdown, then SIGTERM, then SIGKILL; returns once it is reaped."""
        self.stopping = True
        if self.alive:
            with trio.move_on_after(timeout):
                try:
                    await self.request("shutdown", timeout=timeout)
                except MediaWorkerError:
                    pass
                await self._gone.wait()
        if self.alive:
            self._signal(signal.SIGTERM)
            with trio.move_on_after(timeout):
                await self._gone.wait()
        if self.alive:
            await self.kill()

    async def kill(self, reason: str | None = None) -> None:
        """SIGKILL; `reason` (why a live worker had to go) becomes its exit reason and the
        end counts as a crash: its calls are lost all the same."""
        if reason is not None and self.alive:
            self.kill_reason = reason
        self._signal(signal.SIGKILL)
        await self._gone.wait()

    async def wait_gone(self) -> None:
        await self._gone.wait()

    def _signal(self, signum: int) -> None:
        if self.process.returncode is None:
            try:
                self.process.send_signal(signum)
            except ProcessLookupError:
                pass

    # -- tasks ------------------------------------------------------------------------------

    async def _serve(self) -> None:
        """Read the control channel until EOF, then reap the process and report its end."""
        try:
            await self._read_control()
        finally:
            with trio.CancelScope(shield=True):
                await self._reap()

    async def _read_control(self) -> None:
        decoder = protocol.LineDecoder()
        while True:
            try:
                data = await self._control.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except protocol.ProtocolError as exc:
                log.error("media worker %s: %s; stopping it", self.id, exc)
                return
            for error in decoder.errors:
                log.error("media worker %s sent a broken control line: %s", self.id, error)
            decoder.errors.clear()
            for message in messages:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if protocol.is_reply(message):
            pending = self._pending.get(message["id"])
            if pending is not None:
                pending.resolve(message)
            return
        if message.get("event") == "ready":
            self.ready = {k: v for k, v in message.items() if k != "event"}
            self._open_doorbell()
            self._ready_event.set()
        elif message.get("event") == "error":
            self.last_error = str(message.get("message"))
            log.warning("media worker %s: %s", self.id, self.last_error)
        try:
            self._on_event(self, message)
        except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the worker
            log.exception("media worker %s: event handler failed on %r", self.id, message)

    def _open_doorbell(self) -> None:
        host, _, port = str(self.ready.get("sip", {}).get("udp", "")).rpartition(":")
        if self._doorbell is None and host and port.isdigit():
            self._doorbell = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._doorbell.setblocking(False)
            self._doorbell_address = (host, int(port))

    async def _reap(self) -> None:
        await self._control.aclose()
        if self._doorbell is not None:
            self._doorbell.close()
            self._doorbell = None
        with trio.move_on_after(10):  # EOF came first: the exit follows at once, or we kill
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
        returncode = await self.process.wait()
        self.exit_reason, self.crashed = self._describe_exit(returncode)
        for pending in list(self._pending.values()):
            pending.resolve(protocol.reply_error(None, f"media worker {self.id} is gone: "
                                                       f"{self.exit_reason}"), gone=True)
        self._gone.set()
        level = logging.ERROR if self.crashed else logging.INFO
        log.log(level, "media worker %s (pid %s): %s", self.id, self.pid, self.exit_reason)
        try:
            self._on_exit(self)
        except Exception:  # noqa: BLE001
            log.exception("media worker %s: exit handler failed", self.id)

    def _describe_exit(self, returncode: int) -> tuple[str, bool]:
        if self.kill_reason is not None:
            return self.kill_reason, True
        if returncode == STATUS_LOST:
            return "media engine ended (its exit status was lost with the workers' zygote)", True
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = "unknown signal"
            if self.stopping and -returncode in (signal.SIGTERM, signal.SIGKILL):
                return f"stopped (signal {-returncode}, {name})", False
            return f"media engine crashed (signal {-returncode}, {name})", True
        if returncode == 0:  # a clean exit nobody here asked for: a SIGTERM from outside
            return ("stopped" if self.stopping else "media engine stopped unexpectedly"), False
        return f"media engine failed (exit status {returncode})", True

    async def _read_stderr(self) -> None:
        """Forward the worker's stderr (pjsua log, tracebacks) to logging, line by line."""
        assert self.process.stderr is not None
        buffer = b""
        level = logging.WARNING
        try:
            async with self.process.stderr:
                while True:
                    try:
                        data = await self.process.stderr.receive_some(65536)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        break
                    if not data:
                        break
                    *lines, buffer = (buffer + data).split(b"\n")
                    for raw in lines:
                        level = self._log_line(raw.decode(errors="replace"), level)
            if buffer:
                self._log_line(buffer.decode(errors="replace"), level)
        finally:
            self._stderr_done.set()

    def _log_line(self, line: str, previous_level: int) -> int:
        if not line.strip():
            return previous_level
        level = logging.WARNING  # a Python traceback, most likely
        if line.startswith(protocol.LOG_PREFIX):
            number, _, line = line[len(protocol.LOG_PREFIX):].partition("] ")
            level = _PJ_LEVELS.get(int(number), logging.DEBUG) if number.isdigit() else level
        elif line[:1].isspace():
            level = previous_level  # continuation of a multi-line pjsua entry
        elif _PJLIB_EARLY_LINE.match(line):
            level = logging.DEBUG  # pjlib's own prints before libInit installs the writer
        self.stderr_tail.append(line)
        log.log(level, "[%s] %s", self.id, line)
        return level


class _PendingReply:
    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: dict[str, Any] | None = None
        self.gone = False

    def resolve(self, reply: dict[str, Any], gone: bool = False) -> None:
        if self.reply is None:
            self.reply, self.gone = reply, gone
            self.done.set()


def port_slices(low: int, high: int, count: int) -> list[tuple[int, int]]:
    """Split the inclusive RTP port range into `count` (start, size) slices, even-aligned."""
    start = low + (low % 2)  # RTP on even ports, RTCP just above
    size = (high - start + 1) // count
    size -= size % 2
    if size < 2 * protocol.MAX_CALLS_PER_WORKER:
        raise ValueError(
            f"rtp.port_range {low}-{high} is too small for {count} media workers: each needs "
            f"at least {2 * protocol.MAX_CALLS_PER_WORKER} ports (RTP and RTCP for "
            f"{protocol.MAX_CALLS_PER_WORKER} calls)")
    return [(start + i * size, size) for i in range(count)]
