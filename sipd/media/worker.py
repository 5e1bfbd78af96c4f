"""A media worker process: `python -m sipd.media.worker --control-fd N`.

One pjsua2 Endpoint, one thread. The loop alternates `libHandleEvents(poll_ms)` with a
non-blocking read of the control socket. Why no reader thread: the single thread owns every
pjsua2 object and every piece of Python state with no locks, and SIP or RTP traffic is not
slowed by the poll (the ioqueue wakes on packets). A command would wait up to `poll_ms`
before it is read, so the supervisor rings a doorbell after each one: a bare CRLF datagram
to the worker's own UDP SIP port, which wakes libHandleEvents at once and which pjsip drops
silently (protocol.DOORBELL). What still waits for the next poll: callbacks pjsua posts from
its media threads (DTMF digits, end of file) and the check for finished recordings. pjsip's
timers do not: libHandleEvents never waits past the next one.

So the poll is only a bound on those few events, and each wake-up costs: the idle loop
took ~2.2 % of a core at 10 ms (a timed-out wait is expensive on a VM), ~0.4 % at 50 ms,
and a call's CPU fell by about a quarter in the call benchmark (docs/decisions.md).

Stdout is no channel: pjlib prints there before libInit, so fd 1 is pointed at stderr
before anything else happens. The supervisor forwards stderr to the daemon's log.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import socket
import sys
from typing import Any

from sipd.media import protocol

# The supervisor passes its own --poll-ms (MediaConfig.poll_ms); this is for a worker run
# by hand. 50 ms: DTMF and end-of-file events at most that late, a fifth of the wake-ups.
DEFAULT_POLL_MS = 50


class ControlChannel:
    """The worker's end of the socket pair: JSON lines in (non-blocking), out (blocking)."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._decoder = protocol.LineDecoder()
        self.closed = False

    def receive(self) -> list[dict[str, Any]]:
        """Whatever complete messages have arrived; sets `closed` on EOF."""
        messages: list[dict[str, Any]] = []
        while not self.closed:
            try:
                data = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.closed = True
                break
            try:
                messages += self._decoder.feed(data)
            except protocol.ProtocolError as exc:
                self.send(protocol.event("error", message=str(exc)))
                self.closed = True  # no way to find the next message boundary
        for error in self._decoder.errors:
            self.send(protocol.reply_error(None, str(error)))
        self._decoder.errors.clear()
        return messages

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self._sock.sendall(protocol.encode(message))
        except OSError:
            self.closed = True  # the supervisor is gone: shut down

    def close(self) -> None:
        self.closed = True
        self._sock.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sipd.media.worker",
                                     description="sipd media worker (one pjsua2 endpoint)")
    parser.add_argument("--control-fd", type=int, required=True,
                        help="inherited socket carrying the JSON-lines control protocol")
    parser.add_argument("--log-level", type=int, default=3, help="pjsua log level 0-6")
    parser.add_argument("--poll-ms", type=int, default=DEFAULT_POLL_MS,
                        help="longest wait in libHandleEvents; bounds command latency")
    parser.add_argument("--clock-rate", type=int, choices=(8000, 16000, 32000, 48000),
                        help="the conference bridge's clock rate (default: pjsua's, 16000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.dup2(2, 1)  # before pjsua2 exists: pjlib writes to stdout before libInit
    # A crash inside pjsua (SIGSEGV, SIGABRT) leaves the Python stacks in the daemon's log.
    faulthandler.enable(all_threads=True)
    args = parse_args(argv)
    stop_requested = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True  # only a flag: raising here could cross into C++

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    from sipd.media.engine import CommandError, MediaEngine  # imports pjsua2

    control = ControlChannel(args.control_fd)
    engine = MediaEngine(control.send, log_level=args.log_level, clock_rate=args.clock_rate)
    try:
        try:
            ready = engine.start()
        except Exception as exc:  # noqa: BLE001 - report why, then exit non-zero
            control.send(protocol.event("error", message=f"media engine failed to start: {exc}"))
            return 1
        control.send(protocol.event("ready", **ready))
        while not (stop_requested or engine.stopping or control.closed):
            engine.poll(args.poll_ms)
            for message in control.receive():
                control.send(_answer(engine, message, CommandError))
                if engine.stopping:
                    break
            engine.run_deferred()  # events of what the commands did go out now, not next poll
    finally:
        engine.shutdown()
        control.close()
    return 0


def _answer(engine: Any, message: dict[str, Any],
            command_error: type[Exception]) -> dict[str, Any]:
    request_id = message.get("id")
    if not isinstance(request_id, int) or "cmd" not in message:
        return protocol.reply_error(request_id if isinstance(request_id, int) else None,
                                    "a command needs an integer 'id' and a 'cmd'")
    try:
        return protocol.reply_ok(request_id, **engine.execute(message))
    except command_error as exc:
        return protocol.reply_error(request_id, str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug in one command must not kill the calls
        return protocol.reply_error(request_id, f"internal error: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
