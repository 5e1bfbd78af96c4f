"""sipctl's call commands (dial, answer, dtmf, hold, hangup...) against two real daemons."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.daemon import SipdProcess

pytestmark = pytest.mark.interop  # real pjsua2 media workers


def sipctl(daemon: SipdProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "sipctl", "--runtime-dir",
                             str(daemon.runtime_dir), *args],
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def sipctl_json(daemon: SipdProcess, *args: str) -> dict:
    return json.loads(sipctl(daemon, "--json", *args).stdout)


def wait_for(what, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"no result from {what}")


def sessions(daemon: SipdProcess) -> list[dict]:
    return sipctl_json(daemon, "sessions", "list")["sessions"]


def test_dial_answer_dtmf_hold_hangup(pair):
    a, b = pair
    port = sipctl_json(b, "state")["sip"]["ports"]["udp"]
    call = sipctl_json(a, "dial", "local", f"sip:local@127.0.0.1:{port}")
    incoming = wait_for(lambda: [s for s in sessions(b) if s["direction"] == "incoming"])[0]
    assert incoming["id"] in sipctl(b, "sessions", "list").stdout  # the table names it

    sipctl(b, "answer", incoming["id"])
    wait_for(lambda: sipctl_json(a, "sessions", "get", call["id"])["state"] == "established")
    sipctl(a, "dtmf", call["id"], "12#")
    sipctl(a, "hold", call["id"])
    sipctl(a, "unhold", call["id"])
    sipctl(a, "hangup", call["id"])
    wait_for(lambda: not [s for s in sessions(b) if s["state"] not in ("ended", "failed")])

    failed = sipctl(a, "answer", "no-such-session", check=False)
    assert failed.returncode == 1 and "no-such-session" in failed.stderr


def test_reject_with_a_code(pair):
    a, b = pair
    port = sipctl_json(b, "state")["sip"]["ports"]["udp"]
    call = sipctl_json(a, "dial", "local", f"sip:local@127.0.0.1:{port}")
    incoming = wait_for(lambda: [s for s in sessions(b) if s["direction"] == "incoming"])[0]
    sipctl(b, "reject", incoming["id"], "--code", "486")
    ended = wait_for(lambda: (s := sipctl_json(a, "sessions", "get", call["id"]))["state"]
                     == "failed" and s)
    assert ended.get("code") == 486
