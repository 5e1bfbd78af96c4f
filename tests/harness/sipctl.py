"""Running the sipctl command line against a test's daemon, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.harness.process import SipdProcess


def sipctl(daemon: SipdProcess, *args: str, check: bool = True, stdin: str | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`sipctl --runtime-dir <daemon's> args...`; it must succeed unless `check` is false."""
    result = subprocess.run([sys.executable, "-m", "sipctl", "--runtime-dir",
                             str(daemon.runtime_dir), *args],
                            capture_output=True, text=True, input=stdin, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def sipctl_json(daemon: SipdProcess, *args: str, **kw: Any) -> Any:
    return json.loads(sipctl(daemon, "--json", *args, **kw).stdout)


def sessions(daemon: SipdProcess) -> list[dict[str, Any]]:
    return sipctl_json(daemon, "sessions", "list")["sessions"]


def run_sipctl(daemon: SipdProcess, *args: str, stdin: str | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`sipctl` whatever its exit code: the test looks at it."""
    return sipctl(daemon, *args, check=False, stdin=stdin, timeout=timeout)
