"""Resuming an event stream: any `since` works with any replay and queue sizes, and a `since`
from another run of the daemon is an explicit gap, never silence."""

from __future__ import annotations

import json

import pytest
import trio

from sipctl.client import connect
from tests.harness.process import SipdProcess


async def make_events(client, count, key="media.max_workers"):
    """`count` settings.changed events (the value alternates so each set is a change)."""
    for index in range(count):
        await client.call("settings.set", {"key": key, "value": 2 + index % 2})


async def replayed_values(client, count, timeout=30):
    """The next `count` notifications (events and gap markers) as they arrive."""
    received = []
    with trio.fail_after(timeout):
        while len(received) < count:
            received.append(await client.events.receive())
    return received


@pytest.mark.parametrize("replay, queue", [(200, 10), (1000, 10)])
async def test_resume_longer_than_the_client_queue_is_paced_not_dropped(tmp_path, replay, queue):
    daemon = SipdProcess(tmp_path, {"rpc.event_replay": replay, "rpc.client_queue": queue})
    daemon.start()
    try:
        async with connect(daemon.endpoint) as admin:
            start = (await admin.call("system.state"))["seq"]
            await make_events(admin, 150)
            for _ in range(2):  # the same since works every time: no loop of disconnects
                async with connect(daemon.endpoint) as late:
                    sub = await late.call("events.subscribe",
                                          {"topics": ["settings"], "since": start})
                    count = sub["seq"] - start
                    assert count >= 150 and sub["replayed"] == count and sub["gap"] is None
                    frames = await replayed_values(late, count)
                    assert [f["method"] for f in frames] == ["event"] * count
                    seqs = [f["params"]["seq"] for f in frames]
                    assert seqs == list(range(start + 1, sub["seq"] + 1))
                    # and it is live afterwards, on the same subscription
                    await admin.call("settings.set", {"key": "media.max_workers", "value": 7})
                    event = await late.next_event("settings.changed")
                    assert event["data"]["value"] == 7 and event["seq"] == seqs[-1] + 1
                    assert not late.ws.closed
                await admin.call("settings.set", {"key": "media.max_workers", "value": 2})
            assert "disconnecting" not in daemon.log()
    finally:
        daemon.stop()


async def test_since_older_than_the_buffer_gives_a_gap_then_the_whole_buffer(tmp_path):
    daemon = SipdProcess(tmp_path, {"rpc.event_replay": 100, "rpc.client_queue": 10})
    daemon.start()
    try:
        async with connect(daemon.endpoint) as admin:
            start = (await admin.call("system.state"))["seq"]
            await make_events(admin, 130)
            async with connect(daemon.endpoint) as late:
                sub = await late.call("events.subscribe", {"since": start})
                assert sub["replayed"] == 100
                assert sub["gap"]["first"] == start + 1 and sub["gap"]["last"] == start + 30
                frames = await replayed_values(late, 101)
                assert frames[0]["method"] == "events.gap"
                assert frames[0]["params"]["first"] == start + 1
                assert [f["params"]["seq"] for f in frames[1:]] == list(
                    range(start + 31, start + 131))
    finally:
        daemon.stop()


async def test_a_since_from_before_a_restart_is_an_explicit_gap(tmp_path):
    daemon = SipdProcess(tmp_path)
    daemon.start()
    try:
        async with connect(daemon.endpoint) as client:
            sub = await client.call("events.subscribe", {"topics": ["settings"]})
            first_boot = sub["boot"]
            assert first_boot == json.loads(daemon.rpc_file.read_text())["boot"]
            assert (await client.call("system.state"))["boot"] == first_boot
            await make_events(client, 5)
            last_seen = [(await client.next_event())["seq"] for _ in range(5)][-1]
        daemon.stop()
        daemon.start()
        async with connect(daemon.endpoint) as admin:
            for workers in (5, 6):  # happened while the client was away
                await admin.call("settings.set", {"key": "media.max_workers", "value": workers})
            state = await admin.call("system.state")
            assert state["boot"] != first_boot
            async with connect(daemon.endpoint) as resumed:
                sub = await resumed.call("events.subscribe",
                                         {"topics": ["settings"], "since": last_seen})
                assert sub["boot"] == state["boot"]
                assert sub["gap"] is not None and sub["gap"]["first"] == last_seen + 1
                frames = await replayed_values(resumed, 3)
                assert frames[0]["method"] == "events.gap"
                assert [f["params"]["name"] for f in frames[1:]] == ["settings.changed"] * 2
                # naming the run explicitly gives the same answer
                sub = await resumed.call("events.subscribe", {
                    "topics": ["settings"], "since": last_seen, "boot": first_boot})
                assert sub["gap"] is not None
    finally:
        daemon.stop()


async def test_a_since_ahead_of_this_run_is_a_gap(sipd, client):
    seq = (await client.call("system.state"))["seq"]
    sub = await client.call("events.subscribe", {"since": seq + 1000})
    assert sub["gap"] is not None and sub["gap"]["last"] <= seq
    marker = await replayed_values(client, 1)
    assert marker[0]["method"] == "events.gap"


async def test_a_since_of_another_run_named_by_boot_is_a_gap(sipd, client):
    seq = (await client.call("system.state"))["seq"]
    sub = await client.call("events.subscribe", {"since": seq, "boot": "not-this-run"})
    assert sub["gap"] is not None
    same = await client.call("events.subscribe", {"since": seq, "boot": sub["boot"]})
    assert same["gap"] is None and same["replayed"] == 0
