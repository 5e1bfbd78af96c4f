"""sipctl's call commands (dial, answer, dtmf, hold, hangup...) against two real daemons."""

from __future__ import annotations

import pytest

from tests.harness.sipctl import sessions, sipctl, sipctl_json
from tests.harness.waits import wait_until

pytestmark = pytest.mark.interop  # real pjsua2 media workers


def test_dial_answer_dtmf_hold_hangup(pair):
    a, b = pair
    port = sipctl_json(b, "state")["sip"]["ports"]["udp"]
    call = sipctl_json(a, "dial", "local", f"sip:local@127.0.0.1:{port}")
    incoming = wait_until(lambda: [s for s in sessions(b) if s["direction"] == "incoming"])[0]
    assert incoming["id"] in sipctl(b, "sessions", "list").stdout  # the table names it

    sipctl(b, "answer", incoming["id"])
    wait_until(lambda: sipctl_json(a, "sessions", "get", call["id"])["state"] == "established")
    sipctl(a, "dtmf", call["id"], "12#")
    sipctl(a, "hold", call["id"])
    sipctl(a, "unhold", call["id"])
    sipctl(a, "hangup", call["id"])
    wait_until(lambda: not [s for s in sessions(b) if s["state"] not in ("ended", "failed")])

    failed = sipctl(a, "answer", "no-such-session", check=False)
    assert failed.returncode == 1 and "no-such-session" in failed.stderr


def test_reject_with_a_code(pair):
    a, b = pair
    port = sipctl_json(b, "state")["sip"]["ports"]["udp"]
    call = sipctl_json(a, "dial", "local", f"sip:local@127.0.0.1:{port}")
    incoming = wait_until(lambda: [s for s in sessions(b) if s["direction"] == "incoming"])[0]
    sipctl(b, "reject", incoming["id"], "--code", "486")
    ended = wait_until(lambda: (s := sipctl_json(a, "sessions", "get", call["id"]))["state"]
                     == "failed" and s)
    assert ended.get("code") == 486
