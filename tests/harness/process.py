"""Run a real sipd process for a test: its own config, state and runtime directories.

`SipdProcess` starts `python -m sipd` with a config that listens on 127.0.0.1 and a free port,
waits for rpc.json, and always stops the process (SIGTERM, then SIGKILL) when the test ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sipctl.client import Endpoint

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, settings: dict[str, Any]) -> None:
    """A minimal TOML settings file: {"rpc.listen": "..."} -> [rpc] listen = "..."."""
    tables: dict[str, dict[str, Any]] = {}
    for key, value in settings.items():
        table, _, name = key.rpartition(".")
        tables.setdefault(table, {})[name] = value
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{name} = {json.dumps(value)}" for name, value in values.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def host_port(url: str) -> tuple[str, int]:
    """'ws://127.0.0.1:7575/' -> ('127.0.0.1', 7575)."""
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    return host.strip("[]"), int(port)


class SipdProcess:
    def __init__(self, base: Path, settings: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, name: str = "sipd") -> None:
        self.base = base / name
        self.config = self.base / "config" / "sipd.toml"
        self.state_dir = self.base / "state"
        self.runtime_dir = self.base / "run"
        self.log_path = self.base / "sipd.log"
        self.settings = {"rpc.listen": "127.0.0.1:0", "web.listen": "127.0.0.1:0",
                         "sip.listen_address": "127.0.0.1",
                         "log.level": "debug", **(settings or {})}
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def rpc_file(self) -> Path:
        return self.runtime_dir / "rpc.json"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sipd", "--config", str(self.config),
                "--state-dir", str(self.state_dir), "--runtime-dir", str(self.runtime_dir)]

    def start(self, wait: bool = True, write_settings: bool = True) -> SipdProcess:
        self.base.mkdir(parents=True, exist_ok=True)
        if write_settings and not self.config.exists():
            write_config(self.config, self.settings)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, cwd=ROOT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15) -> Endpoint:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rpc_file.exists():
                try:
                    info = json.loads(self.rpc_file.read_text())
                    if self.proc is None or info.get("pid") == self.proc.pid:
                        return Endpoint(info["url"], info["token"])
                except (ValueError, FileNotFoundError):
                    pass  # a stale file of an earlier daemon, or one being replaced
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"sipd exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise TimeoutError(f"sipd not ready after {timeout} s:\n{self.log()}")

    @property
    def endpoint(self) -> Endpoint:
        info = json.loads(self.rpc_file.read_text())
        return Endpoint(info["url"], info["token"])

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 10) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)
        finally:
            self._log.close()


@contextmanager
def running(base: Path, settings: dict[str, Any] | None = None,
            names: tuple[str, ...] = ("a", "b")) -> Iterator[list[SipdProcess]]:
    """Several daemons, started side by side (their start-ups overlap), always stopped."""
    started = [SipdProcess(base, settings, name=name) for name in names]
    try:
        for daemon in started:
            daemon.start(wait=False)
        for daemon in started:
            daemon.wait_ready()
        yield started
    finally:
        for daemon in started:
            daemon.stop()
