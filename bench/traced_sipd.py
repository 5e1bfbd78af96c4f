"""Run sipd with a trio instrument that notes every task step: SIGUSR2 writes them to FILE.

    python -m bench.traced_sipd FILE [sipd arguments ...]

Each line of FILE is one step of one trio task: wall-clock start (time.time()), its length in
seconds and the task's name. bench/call_timeline.py (`--trace`) puts the steps of both daemons
next to the packets of a call, which shows what a daemon was busy with between two messages
(and which tasks ran first). Only the benchmark tooling uses this; sipd itself is unchanged.
"""

from __future__ import annotations

import collections
import gc
import json
import runpy
import signal
import sys
import time
from typing import Any

import trio


class StepRecorder(trio.abc.Instrument):
    def __init__(self, keep: int = 200_000) -> None:
        self.steps: collections.deque[tuple[float, float, str]] = collections.deque(maxlen=keep)
        self._began = 0.0
        self._gc_began = 0.0
        # perf_counter for the lengths, one offset to put them on the wall clock.
        self._offset = time.time() - time.perf_counter()

    def before_task_step(self, task: Any) -> None:
        self._began = time.perf_counter()

    def after_task_step(self, task: Any) -> None:
        now = time.perf_counter()
        self.steps.append((self._began + self._offset, now - self._began, task.name))

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """Garbage collections show as steps of their own, `gc gen N`."""
        if phase == "start":
            self._gc_began = time.perf_counter()
        else:
            now = time.perf_counter()
            self.steps.append((self._gc_began + self._offset, now - self._gc_began,
                               f"gc.gen {info.get('generation')}"))

    def dump(self, path: str) -> None:
        with open(path, "w") as out:
            for began, length, name in list(self.steps):
                out.write(json.dumps([began, length, name]) + "\n")


def main() -> None:
    out, sipd_args = sys.argv[1], sys.argv[2:]
    recorder = StepRecorder()
    gc.callbacks.append(recorder.on_gc)
    signal.signal(signal.SIGUSR2, lambda _s, _f: recorder.dump(out))
    original_run = trio.run

    def run(*args: Any, **kwargs: Any) -> Any:
        kwargs["instruments"] = [*kwargs.get("instruments", ()), recorder]
        return original_run(*args, **kwargs)

    trio.run = run  # type: ignore[assignment]
    sys.argv = ["sipd", *sipd_args]
    runpy.run_module("sipd", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
