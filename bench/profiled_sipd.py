"""Run sipd with a cProfile switch: SIGUSR1 starts profiling, SIGUSR2 stops it and writes FILE.

The profile counts CPU time (time.process_time), so waiting in epoll and being preempted by
other processes are not in it.

    python -m bench.profiled_sipd FILE [sipd arguments ...]

Only the benchmark uses this (`python -m bench --profile`), so the profile covers the load and
not the daemon's start-up and shutdown. sipd itself is unchanged: this module installs the two
signal handlers and runs `python -m sipd` in the same process.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
import time


def main() -> None:
    out, sipd_args = sys.argv[1], sys.argv[2:]
    # CPU time, not wall time: on a shared machine a process is often preempted in a syscall
    # (a send on loopback wakes the client), and wall time would charge that to the syscall.
    profiler = cProfile.Profile(time.process_time)

    def start(_signum: int, _frame: object) -> None:
        profiler.enable()

    def stop(_signum: int, _frame: object) -> None:
        profiler.disable()
        profiler.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = ["sipd", *sipd_args]
    runpy.run_module("sipd", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
