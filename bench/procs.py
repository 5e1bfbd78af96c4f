"""The two servers under test, each in its own process: sipd and the bare echo server."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.harness.process import ROOT, SipdProcess

# log.level warning: the daemon's per-connection debug/info lines must not be what we measure.
SIPD_SETTINGS = {"log.level": "warning"}


@dataclass(frozen=True)
class Target:
    """Where a benchmark client connects: the URL, its Authorization header, the server pid."""
    name: str
    url: str
    headers: list[tuple[str, str]]
    pid: int

    def path(self, path: str) -> str:
        return self.url.rstrip("/") + path


class BenchSipd(SipdProcess):
    """SipdProcess, optionally with a cProfile switch (bench/profiled_sipd.py)."""

    def __init__(self, base: Path, profile_out: Path | None = None) -> None:
        super().__init__(base, SIPD_SETTINGS, name="sipd")
        self.profile_out = profile_out

    def command(self) -> list[str]:
        command = super().command()
        if self.profile_out is None:
            return command
        assert command[1:3] == ["-m", "sipd"], command
        return [command[0], "-m", "bench.profiled_sipd", str(self.profile_out), *command[3:]]

    def profiling(self, on: bool) -> None:
        """Start (SIGUSR1) or stop and write (SIGUSR2) the profile; see bench/profiled_sipd.py."""
        assert self.profile_out is not None
        self.signal(signal.SIGUSR1 if on else signal.SIGUSR2)

    def target(self) -> Target:
        endpoint = self.wait_ready()
        assert self.proc is not None
        return Target("sipd", endpoint.url, [("Authorization", f"Bearer {endpoint.token}")],
                      self.proc.pid)


class EchoProcess:
    """python -m bench.echo_server, listening on 127.0.0.1 and a free port."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def start(self, timeout: float = 15) -> EchoProcess:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.echo_server", "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=self._log, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 256)
                if not chunk:
                    break
                line += chunk
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(f"the echo server did not start: {line!r}; see {self.log_path}")
        self.port = int(line.split()[1])
        return self

    def target(self) -> Target:
        assert self.proc is not None and self.port is not None
        return Target("echo", f"ws://127.0.0.1:{self.port}/", [], self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def thread_cpu_seconds(pid: int) -> dict[tuple[int, str], float]:
    """User + system CPU time of each thread of a process so far, by (tid, thread name)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[tuple[int, str], float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return used
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        used[(int(task.name), name)] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc): a peer started through `timeout` and
    `stdbuf` (tests/peers/proc.py) is the child of the pid we hold."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, ()))
    return tree


def rss_bytes(pid: int) -> int:
    """A process's resident memory now (Linux /proc; 0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def pss_bytes(pid: int) -> int:
    """A process's proportional set size now: its resident pages, each shared page divided by
    the number of processes that map it (Linux /proc smaps_rollup; 0 when it is gone). Summed
    over processes, shared libraries and copy-on-write pages count once, not once each."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idling (Linux /proc/stat), steal included:
    time the hypervisor gave to other guests was not ours either."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds over one measured window: the server's, this (the client) process's, and
    everything else on the machine."""
    server: float
    client: float
    other: float


class CpuMeter:
    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self._start: tuple[float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float]:
        return (cpu_seconds(self.server_pid), cpu_seconds(os.getpid()), machine_busy_seconds())

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> CpuUse:
        if self._start is None:
            return CpuUse(float("nan"), float("nan"), float("nan"))
        server, client, machine = (b - a for a, b in zip(self._start, self._sample(), strict=True))
        return CpuUse(server, client, max(0.0, machine - server - client))
