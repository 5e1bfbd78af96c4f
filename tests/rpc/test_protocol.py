"""JSON-RPC 2.0 over the WebSocket, against a running daemon: the whole spec and bad input."""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from sipctl.client import RpcCallError, connect


async def raw(ws, frame):
    await ws.send_message(frame if isinstance(frame, str) else json.dumps(frame))
    with trio.fail_after(10):
        return json.loads(await ws.get_message())


@pytest.fixture
async def ws(sipd):
    headers = [("Authorization", f"Bearer {sipd.endpoint.token}")]
    async with open_websocket_url(sipd.endpoint.url, extra_headers=headers) as ws:
        yield ws


async def test_call_by_name_and_by_position(ws):
    reply = await raw(ws, {"jsonrpc": "2.0", "method": "settings.get",
                           "params": {"key": "rpc.client_queue"}, "id": 1})
    assert reply == {"jsonrpc": "2.0", "id": 1, "result": {
        "key": "rpc.client_queue", "value": 1000, "is_default": True, "secret": False}}
    reply = await raw(ws, {"jsonrpc": "2.0", "method": "settings.get",
                           "params": ["rpc.client_queue"], "id": "two"})
    assert reply["id"] == "two" and reply["result"]["value"] == 1000


async def test_parse_error(ws):
    reply = await raw(ws, '{"jsonrpc": "2.0", "method": "system.version", "id": 1')
    assert reply["id"] is None and reply["error"]["code"] == -32700
    assert reply["error"]["data"]["reason"]


@pytest.mark.parametrize("request_, why", [
    ({"method": "system.version", "id": 1}, "jsonrpc"),
    ({"jsonrpc": "1.0", "method": "system.version", "id": 1}, "jsonrpc"),
    ({"jsonrpc": "2.0", "method": 5, "id": 1}, "method"),
    ({"jsonrpc": "2.0", "method": "system.version", "params": "x", "id": 1}, "params"),
    ({"jsonrpc": "2.0", "method": "system.version", "id": [1]}, "id"),
    ({"jsonrpc": "2.0", "method": "system.version", "id": 1, "extra": 1}, "unknown"),
    ("42", "object"),
])
async def test_invalid_requests(ws, request_, why):
    reply = await raw(ws, request_)
    assert reply["error"]["code"] == -32600
    assert why in reply["error"]["data"]["reason"]


async def test_method_not_found_suggests(ws):
    reply = await raw(ws, {"jsonrpc": "2.0", "method": "system.versoin", "id": 7})
    assert reply["id"] == 7 and reply["error"]["code"] == -32601
    assert "system.version" in reply["error"]["data"]["did_you_mean"]


@pytest.mark.parametrize("params, fragment", [
    ({"key": 5}, "params.key: string"),
    ({}, "missing param 'key'"),
    ({"key": "rpc.listen", "colour": "red"}, "unknown param"),
    (["a", "b", "c"], "at most"),
])
async def test_invalid_params_say_what_to_fix(ws, params, fragment):
    reply = await raw(ws, {"jsonrpc": "2.0", "method": "settings.reset", "params": params,
                           "id": 3})
    assert reply["error"]["code"] == -32602
    assert fragment in reply["error"]["data"]["reason"]


async def test_bad_setting_value_changes_nothing(ws, sipd):
    before = sipd.config.read_bytes()
    reply = await raw(ws, {"jsonrpc": "2.0", "method": "settings.set",
                           "params": {"key": "sip.local_udp_port", "value": 70000}, "id": 1})
    assert reply["error"]["code"] == -32602
    assert "sip.local_udp_port" in reply["error"]["data"]["reason"]
    assert sipd.config.read_bytes() == before
    reply = await raw(ws, {"jsonrpc": "2.0", "method": "settings.get",
                           "params": {"key": "sip.local_udp_port"}, "id": 2})
    assert reply["result"]["value"] == 0


async def test_notifications_get_no_reply(ws):
    await ws.send_message(json.dumps({"jsonrpc": "2.0", "method": "system.version"}))
    await ws.send_message(json.dumps({"jsonrpc": "2.0", "method": "no.such.method"}))
    reply = await raw(ws, {"jsonrpc": "2.0", "method": "system.version", "id": "after"})
    assert reply["id"] == "after"  # the first frame we get answers the request, not the two


async def test_batch(ws):
    reply = await raw(ws, [
        {"jsonrpc": "2.0", "method": "system.version", "id": 1},
        {"jsonrpc": "2.0", "method": "system.version"},
        {"jsonrpc": "2.0", "method": "nope", "id": 2},
        {"jsonrpc": "2.0", "method": "settings.get", "params": {"key": 1}, "id": 3},
        7,
    ])
    assert isinstance(reply, list) and len(reply) == 4
    by_id = {r["id"]: r for r in reply if r["id"] is not None}
    assert by_id[1]["result"]["name"] == "sipd"
    assert by_id[2]["error"]["code"] == -32601
    assert by_id[3]["error"]["code"] == -32602
    assert [r["error"]["code"] for r in reply if r["id"] is None] == [-32600]


async def test_empty_batch_and_batch_of_notifications(ws):
    reply = await raw(ws, [])
    assert reply["error"]["code"] == -32600
    await ws.send_message(json.dumps([{"jsonrpc": "2.0", "method": "system.version"}] * 3))
    reply = await raw(ws, {"jsonrpc": "2.0", "method": "system.version", "id": "x"})
    assert reply["id"] == "x"


async def test_batch_members_run_concurrently(ws):
    # Each member subscribes; with concurrent execution each reply still comes back whole and
    # the subscription ids are all distinct.
    batch = [{"jsonrpc": "2.0", "method": "events.subscribe", "params": {"topics": ["media"]},
              "id": i} for i in range(20)]
    reply = await raw(ws, batch)
    assert sorted(r["id"] for r in reply) == list(range(20))
    assert len({r["result"]["subscription"] for r in reply}) == 20


async def test_oversized_frame_is_refused_not_parsed(sipd, ws):
    limit = 1048576
    with pytest.raises(ConnectionClosed) as closed:
        await ws.send_message("[" + " " * limit + "]")
        with trio.fail_after(10):
            await ws.get_message()
    assert closed.value.reason.code == 1009
    # and the daemon still serves others
    async with connect(sipd.endpoint) as other:
        assert (await other.call("system.version"))["name"] == "sipd"


async def test_rpc_discover_describes_every_method(client):
    doc = await client.call("rpc.discover")
    names = {m["name"] for m in doc["methods"]}
    assert {"system.version", "system.state", "system.shutdown", "rpc.discover",
            "events.subscribe", "events.unsubscribe", "settings.get", "settings.set",
            "settings.reset", "settings.schema", "auth.login"} <= names
    subscribe = next(m for m in doc["methods"] if m["name"] == "events.subscribe")
    since = next(p for p in subscribe["params"] if p["name"] == "since")
    assert since["required"] is False and since["description"]
    assert doc["components"]["errors"]["-32001"]["code"] == -32001


async def test_unknown_subscription_is_not_found(client):
    with pytest.raises(RpcCallError) as error:
        await client.call("events.unsubscribe", {"subscription": 999})
    assert error.value.code == -32002


async def test_set_says_whether_a_restart_is_needed(client):
    live = await client.call("settings.set", {"key": "rpc.client_queue", "value": 500})
    assert live["restart_required"] is False
    later = await client.call("settings.set", {"key": "sip.max_message_bytes", "value": 4096})
    assert later["restart_required"] is True
