"""`sipctl presence …` between two daemons and no server: a subscribes to b's presence, b
allows the watcher and publishes, a's `sipctl watch presence` shows b's note."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.harness.process import running

from .test_sipctl import sipctl


@pytest.fixture
def daemons(tmp_path):
    with running(tmp_path) as started:
        yield started


def ports(daemon) -> dict[str, int]:
    state = json.loads(sipctl("--json", "state", runtime_dir=daemon.runtime_dir).stdout)
    return state["sip"]["ports"]


def test_presence_commands_between_two_daemons(daemons):
    a, b = daemons
    a_uri = f"sip:local@127.0.0.1:{ports(a)['udp']}"
    b_uri = f"sip:local@127.0.0.1:{ports(b)['udp']}"
    watch = subprocess.Popen(
        [sys.executable, "-m", "sipctl", "--runtime-dir", str(a.runtime_dir), "--json",
         "watch", "presence"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        subscribed = json.loads(sipctl("--json", "presence", "subscribe", "local", b_uri,
                                       runtime_dir=a.runtime_dir).stdout)
        assert subscribed["to"] == b_uri and subscribed["event"] == "presence"

        deadline = time.monotonic() + 10
        while True:  # b's watcher list shows a, pending, in a table
            table = sipctl("presence", "watchers", "local", runtime_dir=b.runtime_dir).stdout
            if a_uri in table and "pending" in table:
                break
            assert time.monotonic() < deadline, table
            time.sleep(0.1)

        allowed = json.loads(sipctl("--json", "presence", "authorize", "local", a_uri,
                                    runtime_dir=b.runtime_dir).stdout)
        assert allowed["allow"] is True and allowed["subscriptions"] == 1
        published = json.loads(sipctl("--json", "presence", "publish", "local", "open",
                                      "--note", "from the shell", "--activity", "meeting",
                                      runtime_dir=b.runtime_dir).stdout)
        assert published["watchers"] == 1

        seen = []
        deadline = time.monotonic() + 15
        while not any(e["name"] == "presence.state" and e["data"].get("note")
                      == "from the shell" for e in seen):
            assert time.monotonic() < deadline, seen
            line = watch.stdout.readline()
            assert line, watch.stderr.read()
            seen.append(json.loads(line)["params"])
        state = [e["data"] for e in seen if e["name"] == "presence.state"][-1]
        assert (state["contact"], state["status"], state["activities"]) == \
            (b_uri, "busy", ["meeting"])

        sipctl("presence", "unsubscribe", "local", b_uri, runtime_dir=a.runtime_dir)
        refused = sipctl("presence", "unsubscribe", "local", "sip:nobody@127.0.0.1",
                         runtime_dir=a.runtime_dir, check=False)
        assert refused.returncode == 1 and "no presence subscription" in refused.stderr
    finally:
        watch.kill()
        watch.communicate()
