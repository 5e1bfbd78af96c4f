"""Crash safety: a process killed with SIGKILL in the middle of writing settings leaves a file
that parses and validates (the old version or the new one, never a torn one)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from sipd.settings.store import SettingsStore

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROUNDS = 20


def test_sigkill_during_writes_never_leaves_a_broken_file(tmp_path):
    path = tmp_path / "sipd.toml"
    SettingsStore.open(path)
    rng = random.Random()
    progress = []
    interrupted_saves = 0  # rounds killed with a temp file written but not yet renamed
    for _ in range(ROUNDS):
        child = subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(path)],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            time.sleep(rng.uniform(0.005, 0.08))
            assert child.poll() is None, f"the writer died by itself: {child.stderr.read()}"
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
            child.stderr.close()
        # An independent parser first, then the store's own validation.
        tomllib.loads(path.read_text())
        interrupted_saves += any(name.endswith(".tmp") for name in os.listdir(tmp_path))
        store = SettingsStore.open(path)
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
        assert set(store.section("accounts")) <= {"a0", "a1", "a2"}
        progress.append(store.get("rpc.event_replay"))
    # The writers really wrote: each round started where the previous one was killed.
    assert progress == sorted(progress) and progress[-1] > 1000
    print(f"{interrupted_saves} of {ROUNDS} kills landed inside a save")
