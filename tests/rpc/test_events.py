"""Events: subscriptions by topic, replay after a reconnect, gap markers, slow clients."""

from __future__ import annotations

import json
import socket

import pytest
import trio
from trio_websocket import open_websocket_url, wrap_client_stream

from sipctl.client import RpcCallError, connect
from tests.harness.process import host_port


async def set_setting(client, key, value):
    return await client.call("settings.set", {"key": key, "value": value})


async def test_subscriber_gets_settings_changed_with_all_fields(sipd, client):
    sub = await client.call("events.subscribe", {"topics": ["settings"]})
    async with connect(sipd.endpoint) as other:
        await set_setting(other, "media.max_workers", 3)
    event = await client.next_event("settings.changed")
    assert event["topic"] == "settings" and event["subscription"] == sub["subscription"]
    assert event["data"] == {"key": "media.max_workers", "value": 3, "restart_required": True}
    assert event["seq"] == sub["seq"] + 1 and isinstance(event["time"], float)


async def test_topics_filter(sipd, client):
    await client.call("events.subscribe", {"topics": ["media"]})
    await client.call("events.subscribe", {"topics": ["system"]})
    await set_setting(client, "media.max_workers", 2)
    await client.call("system.shutdown")
    event = await client.next_event()
    assert event["name"] == "system.stopping"  # the settings event never came


async def test_unknown_topic_is_invalid(client):
    with pytest.raises(RpcCallError) as error:
        await client.call("events.subscribe", {"topics": ["calls"]})
    assert error.value.code == -32602 and "sessions" in str(error.value.data)


async def test_resume_with_since_replays_in_order_then_goes_live(sipd, client):
    start = (await client.call("system.state"))["seq"]
    for workers in (2, 3, 4):
        await set_setting(client, "media.max_workers", workers)
    async with connect(sipd.endpoint) as late:
        sub = await late.call("events.subscribe", {"topics": ["settings"], "since": start})
        assert sub["replayed"] == 3 and sub["gap"] is None
        await set_setting(client, "media.max_workers", 5)
        values = [(await late.next_event("settings.changed"))["data"]["value"]
                  for _ in range(4)]
        assert values == [2, 3, 4, 5]


async def test_gap_marker_when_replay_buffer_is_too_short(sipd, client):
    await set_setting(client, "rpc.event_replay", 2)
    start = (await client.call("system.state"))["seq"]
    for workers in (2, 3, 4, 5, 6):
        await set_setting(client, "media.max_workers", workers)
    async with connect(sipd.endpoint) as late:
        sub = await late.call("events.subscribe", {"since": start})
        assert sub["replayed"] == 2
        assert sub["gap"] == {"first": start + 1, "last": start + 3}
        with trio.fail_after(10):
            marker = await late.events.receive()
        assert marker["method"] == "events.gap"
        assert (marker["params"]["first"], marker["params"]["last"]) == (start + 1, start + 3)
        values = [(await late.next_event())["data"]["value"] for _ in range(2)]
        assert values == [5, 6]


async def test_client_that_never_reads_is_dropped_others_unharmed(sipd, client):
    await set_setting(client, "rpc.client_queue", 10)
    host, port = host_port(sipd.endpoint.url)
    headers = [("Authorization", f"Bearer {sipd.endpoint.token}")]
    async with trio.open_nursery() as nursery:
        stream = await trio.open_tcp_stream(host, port)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # message_queue_size=1: once we stop calling get_message, the socket is not read.
        lazy = await wrap_client_stream(nursery, stream, host, "/", extra_headers=headers,
                                        message_queue_size=1)
        await lazy.send_message(json.dumps({"jsonrpc": "2.0", "method": "events.subscribe",
                                            "id": 1}))
        origins = [f"http://host-{i:05d}.example.test:8080" for i in range(200)]
        with trio.fail_after(120):
            for sent in range(2000):
                origins[0] = f"http://host-{sent}.example.test:1"
                await set_setting(client, "rpc.allowed_origins", origins)
                # the one who reads keeps being served meanwhile
                assert (await client.call("system.version"))["name"] == "sipd"
                if "did not read" in sipd.log():
                    break
        assert "did not read 10 events (" in sipd.log() and "disconnecting it" in sipd.log()
        nursery.cancel_scope.cancel()
    assert (await client.call("system.version"))["name"] == "sipd"


async def test_hundred_clients_at_once(sipd):
    results = []

    async def one(i):
        async with connect(sipd.endpoint) as c:
            sub = await c.call("events.subscribe", {"topics": ["settings"]})
            results.append(((await c.call("system.version"))["name"], sub["subscription"]))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(one, i)
    assert len(results) == 100 and {name for name, _ in results} == {"sipd"}
    assert len({sub for _, sub in results}) == 100


async def test_client_vanishing_mid_call(sipd, client):
    for _ in range(20):
        stream = await trio.open_tcp_stream(*host_port(sipd.endpoint.url))
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\n"
                              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              b"Sec-WebSocket-Version: 13\r\n\r\n")
        await stream.aclose()
    headers = [("Authorization", f"Bearer {sipd.endpoint.token}")]
    for _ in range(20):
        async with open_websocket_url(sipd.endpoint.url, extra_headers=headers) as ws:
            await ws.send_message(json.dumps({"jsonrpc": "2.0", "method": "system.state",
                                              "id": 1}))
            await ws.send_message(json.dumps([{"jsonrpc": "2.0", "method": "rpc.discover",
                                               "id": i} for i in range(50)]))
        # left without reading the replies
    assert (await client.call("system.version"))["name"] == "sipd"
    assert "Traceback" not in sipd.log()
