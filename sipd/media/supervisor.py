"""The media supervisor: starts media workers on demand and hands out their call slots.

Runs in the main process under trio and never imports pjsua2. A session asks for a slot
with `allocate(session)`; the worker that carries it is returned, started first if every
running worker is full (4 calls each, up to `max_workers`, each on its own slice of
`rtp.port_range`). The slot is freed when the worker reports the session's call
disconnected, or by `release(session)`.

A worker's death (EOF on its control channel, then its exit status) is announced through
`on_worker_state` with the sessions it carried and a reason such as "media engine crashed
(signal 9, SIGKILL)"; the dead worker leaves the pool and the next allocation starts a fresh
one. Leaving `open_media_supervisor` stops every worker: shutdown command, then SIGTERM,
then SIGKILL, each bounded.

A worker that is alive but stuck (stopped, deadlocked inside pjsua) never closes its channel.
So each worker gets a heartbeat: a `status` command every `heartbeat_interval` seconds, whose
reply is also kept as the worker's last known state. A heartbeat unanswered for that long
marks the worker unresponsive (reported, state "unresponsive"); from then on a `status`
request (what `sessions.get` asks) is answered at once from the last known state, kept up to
date by the call events, with "stale": true, and no new call goes there. Other commands
still go to it and wait as usual: a worker merely slow on a loaded machine must not lose
them, and one that is really stuck is killed, which fails them with the reason. A worker
that answers again is reported "recovered"; one still silent after `unresponsive_grace`
seconds is killed, and its end is reported as a crash with that reason.

Callbacks (synchronous, must not block; exceptions are logged):
    on_event(worker_id, event)   every event of every worker (protocol.py lists them)
    on_worker_state(data)        data of the `media.worker` event:
                                 {"worker", "state": "started"|"unresponsive"|"recovered"|
                                  "stopped"|"crashed", "pid", "reason" (unresponsive,
                                  stopped, crashed), "sessions" (all but started/recovered)}
                                 "sessions" lists the sessions whose audio is lost: a worker
                                 can also stop unasked (SIGTERM from outside), not only crash.
"""

from __future__ import annotations

import itertools
import logging
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import trio

from sipd.media import protocol
from sipd.media.codecs import DEFAULT_CODECS, bridge_clock_rate
from sipd.media.forked import Zygote, ZygoteUnavailable
from sipd.media.process import (
    MediaWorkerError,
    MediaWorkerGone,
    WorkerProcess,
    port_slices,
    worker_env,
)

log = logging.getLogger(__name__)

OnWorkerEvent = Callable[[str, dict[str, Any]], None]
OnWorkerState = Callable[[dict[str, Any]], None]


class MediaUnavailable(Exception):
    """No media worker can take another call; the message says why."""


@dataclass(frozen=True)
class TurnServer:
    server: str  # host:port
    username: str = ""
    password: str = ""
    transport: str = "udp"  # "udp" | "tcp"


@dataclass(frozen=True)
class MediaSettings:
    """What every worker is configured with (the lead maps `rtp.*` and `nat.*` onto it)."""

    media_address: str = "127.0.0.1"  # RTP binds to and advertises this address
    rtp_port_range: tuple[int, int] | None = (50000, 50500)  # inclusive; None: any port
    audio_codecs: tuple[str, ...] = DEFAULT_CODECS
    srtp: str = "optional"  # "disabled" | "optional" | "mandatory"
    ice: bool = False
    stun_servers: tuple[str, ...] = ()
    turn: TurnServer | None = None
    auto_answer: bool = True  # answer calls from the signalling core at once
    rtp_timeout: float = 30.0  # rtp.inactivity_timeout: seconds of no RTP; 0 = no watch

    def configure_fields(self, port_slice: tuple[int, int] | None) -> dict[str, Any]:
        start, count = port_slice or (0, 0)
        turn = None
        if self.turn is not None:
            turn = {"server": self.turn.server, "username": self.turn.username,
                    "password": self.turn.password, "transport": self.turn.transport}
        return {"media_address": self.media_address, "rtp_port_start": start,
                "rtp_port_count": count, "codecs": list(self.audio_codecs), "srtp": self.srtp,
                "ice": self.ice, "stun_servers": list(self.stun_servers), "turn": turn,
                "auto_answer": self.auto_answer, "rtp_timeout": self.rtp_timeout}


@dataclass(frozen=True)
class SupervisorConfig:
    media: MediaSettings = field(default_factory=MediaSettings)
    max_workers: int = 4  # media.max_workers
    log_level: int = 3  # pjsua log level forwarded to the `sipd.media.worker` logger
    poll_ms: int = 50  # a worker's longest libHandleEvents wait (commands ring a doorbell)
    start_timeout: float = 20.0
    request_timeout: float = 10.0
    stop_timeout: float = 5.0
    heartbeat_interval: float = 2.0  # media.heartbeat_interval
    unresponsive_grace: float = 10.0  # media.unresponsive_grace
    python: str = sys.executable
    zygote: bool = True  # media.zygote: fork workers from a process that imported pjsua2


@dataclass
class _Worker:
    process: WorkerProcess
    slice_index: int
    sessions: set[str] = field(default_factory=set)  # allocated or carried by a live call
    live_calls: dict[int, str | None] = field(default_factory=dict)  # call -> session
    last_status: dict[str, Any] = field(default_factory=dict)  # its latest heartbeat reply
    unresponsive_since: float | None = None  # trio time of the first unanswered heartbeat

    @property
    def responsive(self) -> bool:
        return self.unresponsive_since is None

    @property
    def all_sessions(self) -> list[str]:
        return sorted(self.sessions | {s for s in self.live_calls.values() if s})

    @property
    def used_slots(self) -> int:
        untagged = sum(1 for session in self.live_calls.values() if session is None)
        return len(self.sessions) + untagged

    @property
    def has_free_slot(self) -> bool:
        return (self.process.alive and not self.process.stopping and self.responsive
                and self.used_slots < protocol.MAX_CALLS_PER_WORKER)


class MediaSupervisor:
    def __init__(self, config: SupervisorConfig, nursery: trio.Nursery,
                 on_event: OnWorkerEvent | None = None,
                 on_worker_state: OnWorkerState | None = None) -> None:
        if config.max_workers < 1:
            raise ValueError("media.max_workers must be at least 1")
        self.config = config
        self._nursery = nursery
        self._on_event = on_event or (lambda worker_id, event: None)
        self._on_worker_state = on_worker_state or (lambda data: None)
        port_range = config.media.rtp_port_range
        self._slices: list[tuple[int, int] | None] = (
            list(port_slices(*port_range, config.max_workers)) if port_range
            else [None] * config.max_workers)
        self._workers: dict[str, _Worker] = {}
        self._session_worker: dict[str, _Worker] = {}
        self._ids = itertools.count(1)
        self._lock = trio.Lock()
        self._closing = False
        self._zygote: Zygote | None = None
        self._zygote_tried = False  # it failed to start once: workers start without it

    # -- public API -------------------------------------------------------------------------

    @property
    def workers(self) -> list[WorkerProcess]:
        return [w.process for w in self._workers.values() if w.process.alive]

    @property
    def zygote_pid(self) -> int | None:
        """The pid of the zygote the workers are forked from (None: none is running)."""
        zygote = self._zygote
        return zygote.process.pid if zygote is not None and zygote.alive else None

    def worker_of(self, session: str) -> WorkerProcess | None:
        worker = self._session_worker.get(session)
        return worker.process if worker is not None else None

    async def allocate(self, session: str) -> WorkerProcess:
        """The worker that will carry `session`'s audio call, with a slot held for it."""
        if not self._lock.locked():
            # A running worker with room: taken at once, without the lock's trip through
            # the scheduler (it is on every call's setup path; only starting a worker waits).
            process = self._allocate_running(session)
            if process is not None:
                return process
        async with self._lock:
            process = self._allocate_running(session)
            if process is not None:
                return process
            worker = await self._start_worker()
            worker.sessions.add(session)
            self._session_worker[session] = worker
            return worker.process

    def _allocate_running(self, session: str) -> WorkerProcess | None:
        """A slot for `session` on a worker already running, or None when none has room."""
        if self._closing:
            raise MediaUnavailable("the media engine is shutting down")
        held = self._session_worker.get(session)
        if held is not None and held.process.alive:
            return held.process
        worker = next((w for w in self._workers.values() if w.has_free_slot), None)
        if worker is None:
            return None
        worker.sessions.add(session)
        self._session_worker[session] = worker
        return worker.process

    def release(self, session: str) -> None:
        """Give back `session`'s slot (its call ended, or it never made one)."""
        worker = self._session_worker.pop(session, None)
        if worker is not None:
            worker.sessions.discard(session)

    async def request(self, session: str, cmd: str, /, **fields: Any) -> dict[str, Any]:
        """A command to the worker carrying `session` (MediaWorkerError if refused).

        A `call` is tagged with the session unless the fields name another tag.
        """
        if cmd == "call":
            fields.setdefault("session", session)
        worker = self._session_worker.get(session)
        if worker is None:
            raise MediaWorkerError(f"session {session} has no media worker")
        if cmd == "status":
            return await self._status(worker)
        return await worker.process.request(cmd, timeout=self.config.request_timeout, **fields)

    async def _status(self, worker: _Worker) -> dict[str, Any]:
        """The worker's status; from its last heartbeat (marked stale) when it does not
        answer, at once if it is known not to, else within a heartbeat interval."""
        if worker.responsive:
            try:
                status = await worker.process.request(
                    "status", timeout=min(self.config.request_timeout,
                                          2 * self.config.heartbeat_interval))
                worker.last_status = status
                return status
            except MediaWorkerGone:
                raise
            except MediaWorkerError:
                if not worker.last_status:
                    raise
        return {**worker.last_status, "stale": True,
                "problem": self._unresponsive_reason(worker)}

    def _unresponsive_reason(self, worker: _Worker) -> str:
        name = f"media worker {worker.process.id} (pid {worker.process.pid})"
        since = worker.unresponsive_since
        if since is None:
            return f"{name} did not answer in time"
        return f"{name} has not answered its heartbeat for {trio.current_time() - since:.0f} s"

    async def aclose(self) -> None:
        """Stop every worker: shutdown command, SIGTERM, SIGKILL, each bounded."""
        self._closing = True
        async with self._lock:  # a worker being started joins the pool first
            async with trio.open_nursery() as nursery:
                for worker in list(self._workers.values()):
                    nursery.start_soon(worker.process.stop, self.config.stop_timeout)
            if self._zygote is not None:
                await self._zygote.aclose()

    # -- workers ----------------------------------------------------------------------------

    async def _start_worker(self) -> _Worker:
        used = {w.slice_index for w in self._workers.values()}
        free = [i for i in range(self.config.max_workers) if i not in used]
        if not free:
            raise MediaUnavailable(
                f"all {self.config.max_workers} media workers carry "
                f"{protocol.MAX_CALLS_PER_WORKER} calls each (media.max_workers)")
        worker_id = f"w{next(self._ids)}"
        config = self.config
        try:
            process = await WorkerProcess.start(
                self._nursery, worker_id, on_event=self._worker_event,
                on_exit=self._worker_exit, log_level=config.log_level, poll_ms=config.poll_ms,
                start_timeout=config.start_timeout, python=config.python,
                zygote=await self._running_zygote(),
                clock_rate=bridge_clock_rate(config.media.audio_codecs))
        except MediaWorkerGone as exc:
            raise MediaUnavailable(str(exc)) from None
        worker = self._workers[worker_id] = _Worker(process, free[0])
        try:
            reply = await process.request(
                "configure", timeout=config.request_timeout,
                **config.media.configure_fields(self._slices[free[0]]))
        except MediaWorkerError as exc:
            del self._workers[worker_id]  # never started, as far as anyone is told
            with trio.CancelScope(shield=True):
                await process.stop(config.stop_timeout)
            raise MediaUnavailable(f"media worker {worker_id} refused its settings: {exc}") \
                from None
        log.info("media worker %s (pid %s) started: SIP %s, codecs %s", worker_id,
                 process.pid, process.uri, reply.get("codecs"))
        self._notify({"worker": worker_id, "state": "started", "pid": process.pid})
        self._nursery.start_soon(self._heartbeat, worker)
        return worker

    async def _running_zygote(self) -> Zygote | None:
        """The zygote the workers are forked from, started with the first worker; None when
        media.zygote is off or it could not start (workers then start as fresh processes)."""
        if self._zygote is not None and self._zygote.alive:
            return self._zygote
        if not self.config.zygote or self._zygote_tried:
            return None
        self._zygote_tried = True  # once: a zygote that died or failed is not restarted
        try:
            self._zygote = await Zygote.start(self._nursery, python=self.config.python,
                                              env=worker_env(),
                                              start_timeout=self.config.start_timeout)
        except (OSError, ZygoteUnavailable) as exc:
            log.warning("media workers start without a zygote: %s", exc)
            return None
        log.info("media workers' zygote started (pid %s)", self._zygote.process.pid)
        return self._zygote

    async def _heartbeat(self, worker: _Worker) -> None:
        """Asks the worker for its status every heartbeat_interval while it lives; reports
        it unresponsive when it does not answer in time, kills it after the grace."""
        process, interval = worker.process, self.config.heartbeat_interval
        while process.alive and not process.stopping:
            sent = trio.current_time()
            reply: dict[str, Any] | None = None
            with trio.move_on_after(interval):  # also bounds a write to a full channel
                try:
                    reply = await process.request("status", timeout=interval)
                except MediaWorkerGone:
                    return
                except MediaWorkerError:
                    pass  # not answered in time
            if not process.alive or process.stopping:
                return
            if reply is not None:
                worker.last_status = reply
                if not worker.responsive:
                    worker.unresponsive_since = None
                    log.warning("media worker %s (pid %s) answers again", process.id,
                                process.pid)
                    self._notify({"worker": process.id, "state": "recovered",
                                  "pid": process.pid})
            elif worker.unresponsive_since is None:
                worker.unresponsive_since = sent
                reason = (f"{self._unresponsive_reason(worker)}; it is killed unless it "
                          f"answers within {self.config.unresponsive_grace:g} s")
                log.error("%s", reason)
                self._notify({"worker": process.id, "state": "unresponsive",
                              "pid": process.pid, "reason": reason,
                              "sessions": worker.all_sessions})
            elif trio.current_time() - worker.unresponsive_since \
                    >= self.config.unresponsive_grace:
                silent = trio.current_time() - worker.unresponsive_since
                await process.kill(f"media engine stopped answering: no reply to its "
                                   f"heartbeat for {silent:.0f} s, killed")
                return
            with trio.move_on_after(max(0.0, sent + interval - trio.current_time())):
                await process.wait_gone()  # a worker that ends, ends its heartbeat at once

    def _worker_event(self, process: WorkerProcess, event: dict[str, Any]) -> None:
        worker = self._workers.get(process.id)
        if worker is not None and event.get("event") == "call.state":
            self._track_call(worker, event)
        if worker is not None and event.get("event") in ("call.state", "call.media"):
            remember_call_event(worker.last_status, event)
        self._on_event(process.id, event)

    def _track_call(self, worker: _Worker, event: dict[str, Any]) -> None:
        call, session = event.get("call"), event.get("session")
        if not isinstance(call, int):
            return
        if event.get("state") != "disconnected":
            worker.live_calls[call] = session
            if session is not None:
                worker.sessions.add(session)
                self._session_worker.setdefault(session, worker)
            return
        worker.live_calls.pop(call, None)
        if session is not None and session not in worker.live_calls.values():
            worker.sessions.discard(session)
            if self._session_worker.get(session) is worker:
                del self._session_worker[session]

    def _worker_exit(self, process: WorkerProcess) -> None:
        worker = self._workers.pop(process.id, None)
        if worker is None:  # it died before it was configured: allocate() reports it
            return
        sessions = worker.all_sessions
        for session in sessions:
            if self._session_worker.get(session) is worker:
                del self._session_worker[session]
        self._notify({"worker": process.id, "state": "crashed" if process.crashed else "stopped",
                      "pid": process.pid, "reason": process.exit_reason, "sessions": sessions})

    def _notify(self, data: dict[str, Any]) -> None:
        try:
            self._on_worker_state(data)
        except Exception:  # noqa: BLE001
            log.exception("media.worker handler failed on %r", data)


def remember_call_event(status: dict[str, Any], event: dict[str, Any]) -> None:
    """Bring a worker's last status up to date with a call.state or call.media event, so
    that the last known state of a worker that stops answering is as recent as can be."""
    call = event.get("call")
    if not isinstance(call, int) or not status:
        return
    calls: list[dict[str, Any]] = status.setdefault("calls", [])
    if event.get("event") == "call.state" and event.get("state") == "disconnected":
        calls[:] = [c for c in calls if c.get("call") != call]
        return
    entry = next((c for c in calls if c.get("call") == call), None)
    if entry is None:
        entry = {"call": call, "session": event.get("session"), "role": event.get("role"),
                 "state": "null", "remote_uri": "", "media": {}, "rtp": None,
                 "playing": None, "recording": None}
        calls.append(entry)
    if event.get("event") == "call.state":
        entry["state"] = event.get("state")
    else:
        entry["media"] = {k: v for k, v in event.items()
                          if k not in ("event", "call", "session")}


@asynccontextmanager
async def open_media_supervisor(
        config: SupervisorConfig, *, on_event: OnWorkerEvent | None = None,
        on_worker_state: OnWorkerState | None = None) -> AsyncIterator[MediaSupervisor]:
    """A running supervisor; all its workers are stopped when the block is left."""
    try:
        async with trio.open_nursery() as nursery:
            supervisor = MediaSupervisor(config, nursery, on_event, on_worker_state)
            try:
                yield supervisor
            finally:
                with trio.CancelScope(shield=True):
                    await supervisor.aclose()
    except BaseExceptionGroup as group:
        # The nursery wraps whatever the caller's block raised: hand back the caller's own
        # exception when it is the only one (a worker task never raises).
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
