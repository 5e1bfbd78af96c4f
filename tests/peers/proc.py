"""Start an external program for a test, watch its output, and always stop it.

Every peer runs:
- in its own session (process group), so stopping it reaches the children it forked;
- under coreutils `timeout`, so it dies by itself after `max_lifetime` seconds even if the test
  process is killed before its fixtures run;
- with stdout and stderr appended to one log file under the test's tmp dir, which the fixtures
  print when a test fails and which the drivers read to wait for what a peer printed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.harness.waits import off_loop, wait_until

__all__ = ["Process", "ProcessError", "off_loop", "require_binary", "wait_until"]

#: Every Process started and not yet stopped, so a fixture can check that none is left behind.
RUNNING: set[Process] = set()
#: Every Process ever started by this test run, oldest first.
STARTED: list[Process] = []


def require_binary(name: str) -> str:
    """Full path of `name`; skips the test when it is missing, or fails it when CI=true.

    An interop test that skips in CI is a failure: CI installs every peer (tests/install-deps.sh).
    """
    import pytest

    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")
    if path:
        return path
    message = f"{name} is not installed (tests/install-deps.sh installs the test peers)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")  # pytest.skip raises


class ProcessError(RuntimeError):
    pass


class Process:
    """One external program in its own process group, logging to `log_path`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        name: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin_pipe: bool = False,
        max_lifetime: float = 300,
        line_buffered: bool = False,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.name = name or Path(self.argv[0]).name
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.env = env
        self.stdin_pipe = stdin_pipe
        self.max_lifetime = max_lifetime
        self.line_buffered = line_buffered
        self.popen: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Process:
        prefix = ["timeout", "--kill-after=5", f"{self.max_lifetime:.0f}"]
        if self.line_buffered:
            # The peers' stdout is a file: without this glibc buffers what we wait for.
            prefix += ["stdbuf", "-oL", "-eL"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab", buffering=0)
        try:
            log.write(f"### {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            self.popen = subprocess.Popen(
                prefix + self.argv,
                stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        finally:
            log.close()
        RUNNING.add(self)
        STARTED.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 5.0, *, graceful: Callable[[], None] | None = None,
             signals: Sequence[int] = (signal.SIGTERM,)) -> int | None:
        """Stop the program and everything in its process group; returns its exit status.

        `graceful` (e.g. writing "quit" to stdin) is tried first, then each of `signals` to the
        whole group with `timeout` seconds each, then SIGKILL.
        """
        if self.popen is None:
            return None
        try:
            if self.alive() and graceful is not None:
                try:
                    graceful()
                    self._wait(timeout)
                except Exception as exc:  # noqa: BLE001 - fall through to signals
                    self._note(f"graceful stop failed: {exc!r}")
            for sig in signals:
                if not self.alive():
                    break
                self._signal_group(sig)
                self._wait(timeout)
            if self.alive():
                self._note("did not stop, sending SIGKILL")
                self._signal_group(signal.SIGKILL)
                self._wait(timeout)
        finally:
            # Children that outlived the leader (a forking server whose main process died).
            self._signal_group(signal.SIGKILL)
            if self.popen.stdin:
                try:
                    self.popen.stdin.close()
                except OSError:
                    pass
            self.returncode = self.popen.poll()
            RUNNING.discard(self)
            self._note(f"stopped, exit status {self.returncode}")
        return self.returncode

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait(self, timeout: float) -> None:
        assert self.popen is not None
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def _signal_group(self, sig: int) -> None:
        assert self.popen is not None
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _note(self, text: str) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n### {time.strftime('%H:%M:%S')} {self.name}: {text}\n".encode())

    def group_gone(self, timeout: float = 3.0) -> bool:
        """Waits (bounded) for the last process of the group to go: the children of a forking
        server killed with the group may take a moment to be reaped on a loaded machine."""
        deadline = time.monotonic() + timeout
        while self.group_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def group_alive(self) -> bool:
        """True while any process of the group exists (the leader or what it forked)."""
        if self.popen is None:
            return False
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    # -- input and output --------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Write to the program's stdin (started with stdin_pipe=True)."""
        if self.popen is None or self.popen.stdin is None:
            raise ProcessError(f"{self.name} has no stdin pipe")
        self.popen.stdin.write(text.encode())
        self.popen.stdin.flush()

    def log_text(self) -> str:
        try:
            # bytes, not read_text(): universal newlines would turn a bare "\r" into "\n"
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, chars: int = 4000) -> str:
        text = self.log_text()
        return f"--- last output of {self.name} ({self.log_path}) ---\n{text[-chars:]}"

    def wait_for_output(self, pattern: str | re.Pattern[str], *, timeout: float = 10.0,
                        since: int = 0) -> re.Match[str]:
        """Wait until the log (from byte offset `since`) matches `pattern`; return the match.

        Fails early when the program exits.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern

        def check() -> re.Match[str] | None:
            text = self._read_from(since)
            match = regex.search(text)
            if match:
                return match
            if not self.alive():
                raise ProcessError(f"{self.name} exited with status {self.popen.poll()} "
                                   f"before printing {regex.pattern!r}\n{self.log_tail()}")
            return None

        return wait_until(check, timeout=timeout, what=f"{self.name} to print {regex.pattern!r}",
                          on_timeout=self.log_tail)

    def _read_from(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
