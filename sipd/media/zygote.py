"""The media workers' zygote: `python -m sipd.media.zygote --socket-fd N`.

A worker started as a fresh interpreter spends most of its memory on importing: the pjsua2
wrapper (thousands of SWIG classes) and sipd's media modules, about 12 MB of private heap each
time. The zygote imports them once, freezes what it imported (`gc.freeze`: the collector never
writes to those pages again, so they stay shared), and forks each worker from itself: a worker
then owns only what it makes (its Endpoint, its calls), and the imported heap is shared by all
(docs/decisions.md, "Media workers forked from a zygote"). pjsua2 itself is not started here:
a forked process must not inherit pjlib's threads or sockets, so each worker makes its own
Endpoint after the fork, as a fresh one does.

The daemon talks to the zygote over a SOCK_SEQPACKET socket pair, one JSON object per packet:

    daemon -> zygote   {"spawn": 7, "argv": ["--log-level", "3", ...]}
                       with two descriptors attached (SCM_RIGHTS): the worker's end of its
                       control socket pair, and the write end of its stderr pipe
    zygote -> daemon   {"event": "ready", "pid": 1234}                once, after the imports
                       {"spawned": 7, "pid": 4321} or {"spawned": 7, "error": "..."}
                       {"exited": 4321, "returncode": -9}            when a worker ends

The zygote is the workers' parent, so it reaps them and reports how each ended; the daemon
signals them through pidfds (sipd/media/forked.py). When the daemon's end closes, the zygote
exits; its workers notice their own control sockets closing and stop as before.

No trio here: this process only forks and reaps.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

MAX_PACKET = 65536


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sipd.media.zygote",
                                     description="forks sipd's media workers")
    parser.add_argument("--socket-fd", type=int, required=True,
                        help="inherited SOCK_SEQPACKET socket to the daemon")
    return parser.parse_args(argv)


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.send(json.dumps(message).encode())
    except OSError:
        pass  # the daemon is gone: the main loop sees EOF next


def _preload() -> None:
    import sipd.media.engine  # noqa: F401 - imports pjsua2, starts nothing
    import sipd.media.worker  # noqa: F401
    gc.collect()
    gc.freeze()


def _run_worker(argv: list[str], stderr_fd: int) -> int:
    """In the forked child: become what `python -m sipd.media.worker ARGV` would be."""
    os.setsid()  # its own session, as the daemon starts fresh workers (no Ctrl-C from a tty)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(stderr_fd, 2)
    os.close(devnull)
    os.close(stderr_fd)
    from sipd.media import worker
    try:
        return worker.main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def _spawn(sock: socket.socket, wakeup: tuple[int, int], request: dict[str, Any],
           fds: list[int]) -> None:
    ident = request.get("spawn")
    argv = request.get("argv")
    if len(fds) != 2 or not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        for fd in fds:
            os.close(fd)
        _send(sock, {"spawned": ident, "error": "a spawn needs an argv and two descriptors"})
        return
    control_fd, stderr_fd = fds
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        _send(sock, {"spawned": ident, "error": f"fork failed: {exc.strerror or exc}"})
        return
    if pid == 0:  # the worker
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            sock.close()
            for fd in wakeup:
                os.close(fd)
            code = _run_worker([*argv, "--control-fd", str(control_fd)], stderr_fd)
        except BaseException:  # noqa: BLE001 - say why on its stderr, then exit
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    for fd in fds:
        os.close(fd)
    _send(sock, {"spawned": ident, "pid": pid})


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sock = socket.socket(fileno=args.socket_fd)
    _preload()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # the wakeup fd does the work
    _send(sock, {"event": "ready", "pid": os.getpid()})
    while True:
        readable, _, _ = select.select([sock.fileno(), wake_read], [], [])
        if wake_read in readable:
            try:
                while os.read(wake_read, 512):
                    pass
            except BlockingIOError:
                pass
            _reap(sock)
        if sock.fileno() not in readable:
            continue
        try:
            data, fds, _flags, _address = socket.recv_fds(sock, MAX_PACKET, 2)
        except OSError:
            data, fds = b"", []
        if not data:
            for fd in fds:
                os.close(fd)
            return 0  # the daemon closed its end
        try:
            request = json.loads(data)
        except ValueError:
            request = None
        if not isinstance(request, dict) or "spawn" not in request:
            for fd in fds:
                os.close(fd)
            _send(sock, {"error": "not a spawn request"})
            continue
        _spawn(sock, (wake_read, wake_write), request, list(fds))


if __name__ == "__main__":
    sys.exit(main())
