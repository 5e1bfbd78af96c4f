"""kill -9 loses no account whose accounts.add (or update, or remove) was answered: the daemon
is killed right after the replies, and a new daemon on the same directories has them all."""

from __future__ import annotations

import os
import signal

import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess

ADDS = 40


async def test_kill_9_right_after_acknowledged_changes_loses_none(tmp_path):
    daemon = SipdProcess(tmp_path)
    daemon.start()
    try:
        async with connect(daemon.endpoint) as client:
            results: list[dict] = []

            async def add(n: int) -> None:
                results.append(await client.call("accounts.add", {
                    "aor": f"sip:user{n}@example.test", "password": f"pw{n}",
                    "register": False}))

            async with trio.open_nursery() as nursery:  # concurrent adds, as clients do
                for n in range(ADDS):
                    nursery.start_soon(add, n)
            changed = await client.call("accounts.update", {"id": results[0]["id"],
                                                            "changes": {"expires": 1200}})
            removed = await client.call("accounts.remove", {"id": results[1]["id"]})
            assert changed["expires"] == 1200 and removed["id"] == results[1]["id"]
            os.kill(daemon.proc.pid, signal.SIGKILL)  # nothing else said or waited for
        assert daemon.wait() == -signal.SIGKILL
    finally:
        daemon.stop()
    daemon.start()
    try:
        async with connect(daemon.endpoint) as client:
            listed = {a["id"]: a for a in (await client.call("accounts.list"))["accounts"]}
    finally:
        daemon.stop()
    wanted = {r["id"] for r in results} - {results[1]["id"]}
    assert set(listed) == wanted | {"local"}
    assert listed[results[0]["id"]]["expires"] == 1200
    assert all(listed[i]["password_set"] for i in wanted)
