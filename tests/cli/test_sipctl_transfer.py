"""`sipctl transfer` against two real daemons: A calls B, then sends B back to A itself
(blind transfer to A's own address), and the errors of a bad transfer."""

from __future__ import annotations

import pytest

from tests.harness.sipctl import sessions, sipctl, sipctl_json
from tests.harness.waits import wait_until

pytestmark = pytest.mark.interop  # real pjsua2 media workers


def test_transfer_blind_and_its_errors(pair):
    a, b = pair
    a_port = sipctl_json(a, "state")["sip"]["ports"]["udp"]
    b_port = sipctl_json(b, "state")["sip"]["ports"]["udp"]
    call = sipctl_json(a, "dial", "local", f"sip:local@127.0.0.1:{b_port}")
    incoming = wait_until(lambda: [s for s in sessions(b) if s["direction"] == "incoming"])[0]
    sipctl(b, "answer", incoming["id"])
    wait_until(lambda: sipctl_json(a, "sessions", "get", call["id"])["state"] == "established")

    itself = sipctl(a, "transfer", call["id"], "--replaces", call["id"], check=False)
    assert itself.returncode == 1 and "another" in itself.stderr
    neither = sipctl(a, "transfer", call["id"], check=False)
    assert neither.returncode == 1 and "either" in neither.stderr

    result = sipctl_json(a, "transfer", call["id"], f"sip:local@127.0.0.1:{a_port}")
    assert result == {"id": call["id"], "state": "requested"}
    # B calls A; A answers that call, and its first one ends as transferred.
    back = wait_until(lambda: [s for s in sessions(a) if s["direction"] == "incoming"])[0]
    sipctl(a, "answer", back["id"])
    ended = wait_until(lambda: (s := sipctl_json(a, "sessions", "get", call["id"]))["state"]
                     == "ended" and s)
    assert ended["reason"] == "transferred" and ended["transfer"]["state"] == "completed"
    sipctl(a, "hangup", back["id"])
    wait_until(lambda: not [s for s in sessions(b) if s["state"] not in ("ended", "failed")])
