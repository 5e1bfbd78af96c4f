"""`sipctl history calls|messages` against two real daemons."""

from __future__ import annotations

import json
import time

from tests.harness.sipctl import sipctl, sipctl_json
from tests.harness.waits import wait_until as wait_for


def test_history_calls_and_messages(pair):
    a, b = pair
    port = sipctl_json(b, "state")["sip"]["ports"]["udp"]
    remote = f"sip:local@127.0.0.1:{port}"
    sipctl(a, "message", "send", "local", remote, "Zürich calling, over")
    sipctl(a, "message", "send", "local", remote, "second thought")

    call = sipctl_json(a, "dial", "local", remote)
    wait_for(lambda: sipctl_json(b, "sessions", "list")["sessions"])
    wait_for(lambda: sipctl_json(a, "sessions", "get", call["id"])["state"] == "ringing")
    sipctl(a, "hangup", call["id"])
    wait_for(lambda: sipctl_json(a, "sessions", "get", call["id"])["state"] == "failed")

    shown = sipctl(a, "history", "messages", "--remote", remote, "--search", "zur").stdout
    lines = shown.splitlines()
    assert lines[0].split() == ["WHEN", "DIRECTION", "REMOTE", "STATUS", "CONTENT"]
    assert len(lines) == 2 and "Zürich calling, over" in lines[1] and "delivered" in lines[1]
    assert time.strftime("%Y-%m-%d") in lines[1]  # a readable time, not a Unix number

    found = json.loads(sipctl(a, "--json", "history", "messages", "--limit", "1").stdout)
    assert [m["content"] for m in found["messages"]] == ["second thought"]
    assert found["next"] is not None

    calls = sipctl(a, "history", "calls", "--remote", remote).stdout.splitlines()
    assert calls[0].split()[:4] == ["WHEN", "DIRECTION", "REMOTE", "RESULT"]
    assert "outgoing" in calls[1] and "cancelled" in calls[1]
    theirs = sipctl(b, "history", "calls").stdout
    assert "incoming" in theirs and "missed" in theirs

    refused = sipctl(a, "history", "messages", "--search", "!!", check=False)
    assert refused.returncode == 1 and "no words" in refused.stderr
