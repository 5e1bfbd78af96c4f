"""Hostile frames at the front door: deep nesting, lone surrogates, huge batches, login
guessing inside batches. Each gets a clear JSON-RPC error; nothing is half written."""

from __future__ import annotations

import json
import socket

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from sipctl.client import connect
from tests.harness.process import SipdProcess
from tests.harness.waits import eventually


async def raw(ws, frame, timeout=10):
    await ws.send_message(frame if isinstance(frame, str) else json.dumps(frame))
    with trio.fail_after(timeout):
        return json.loads(await ws.get_message())


def request(method, params=None, ident=1):
    message = {"jsonrpc": "2.0", "method": method, "id": ident}
    if params is not None:
        message["params"] = params
    return message


@pytest.fixture
async def ws(sipd):
    headers = [("Authorization", f"Bearer {sipd.endpoint.token}")]
    async with open_websocket_url(sipd.endpoint.url, extra_headers=headers,
                                  max_message_size=64 * 1024 * 1024) as ws:
        yield ws


async def still_serves(ws):
    reply = await raw(ws, request("system.version", ident="alive"))
    assert reply["id"] == "alive" and reply["result"]["name"] == "sipd"


@pytest.mark.parametrize("depth", [5000, 200])
async def test_deep_nesting_is_refused_with_the_reason(sipd, ws, depth):
    frame = ('{"jsonrpc": "2.0", "method": "settings.set", "id": 1, "params": '
             '{"key": "rpc.allowed_origins", "value": ' + "[" * depth + "]" * depth + "}}")
    reply = await raw(ws, frame)
    assert reply["error"]["code"] in (-32700, -32600)
    assert "nest" in reply["error"]["data"]["reason"]
    await still_serves(ws)
    assert "Traceback" not in sipd.log()


async def test_lone_surrogate_in_the_id(sipd, ws):
    reply = await raw(ws, '{"jsonrpc": "2.0", "method": "system.version", "id": "\\ud800"}')
    assert reply["error"]["code"] == -32602 and reply["id"] is None
    assert reply["error"]["data"]["field"] == "id"
    await still_serves(ws)
    assert "Traceback" not in sipd.log()


async def test_lone_surrogate_in_a_setting_writes_nothing(sipd, ws):
    before = sipd.config.read_bytes()
    frame = ('{"jsonrpc": "2.0", "method": "settings.set", "id": 2, '
             '"params": {"key": "nat.turn.username", "value": "a\\udfffb"}}')
    reply = await raw(ws, frame)
    assert reply["id"] == 2 and reply["error"]["code"] == -32602
    assert reply["error"]["data"]["field"] == "params.value"
    assert sipd.config.read_bytes() == before
    reply = await raw(ws, request("settings.get", {"key": "nat.turn.username"}))
    assert reply["result"]["value"] == ""
    assert "Traceback" not in sipd.log()


async def test_lone_surrogate_in_an_account_field_adds_nothing(sipd, ws):
    before = sipd.config.read_bytes()
    frame = ('{"jsonrpc": "2.0", "method": "accounts.add", "id": 3, "params": '
             '{"aor": "sip:eve@example.test", "display_name": "Eve \\ud83d", "register": false}}')
    reply = await raw(ws, frame)
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"]["field"] == "params.display_name"
    assert sipd.config.read_bytes() == before
    listed = await raw(ws, request("accounts.list"))
    assert [a["id"] for a in listed["result"]["accounts"]] == ["local"]


async def test_lone_surrogate_in_a_login_counts_as_a_wrong_token(sipd):
    async with open_websocket_url(sipd.endpoint.url) as ws:
        for attempt in range(3):
            reply = await raw(ws, '{"jsonrpc": "2.0", "method": "auth.login", "id": %d, '  # noqa: UP031
                                  '"params": {"token": "\\ud800"}}' % attempt)
            assert reply["error"]["code"] == -32602
            assert reply["error"]["data"]["field"] == "params.token"
        await eventually(lambda: ws.closed, timeout=5, what="ws.closed")
        assert ws.closed.code == 1008
    assert "Traceback" not in sipd.log()


async def test_batch_length_is_capped(sipd, ws):
    batch = [request("settings.get", ident=i) for i in range(10000)]
    frame = json.dumps(batch)
    reply = await raw(ws, frame)
    assert isinstance(reply, dict) and reply["error"]["code"] == -32600
    assert "rpc.max_batch" in reply["error"]["data"]["reason"]
    await still_serves(ws)
    # the cap is a setting
    settings = await raw(ws, request("settings.get", {"key": "rpc.max_batch"}))
    cap = settings["result"]["value"]
    reply = await raw(ws, [request("system.version", ident=i) for i in range(cap)])
    assert len(reply) == cap


async def test_wrong_logins_in_a_batch_stop_at_the_limit(sipd):
    async with open_websocket_url(sipd.endpoint.url) as ws:
        batch = [request("auth.login", {"token": f"guess-{i}"}, ident=i) for i in range(50)]
        await ws.send_message(json.dumps(batch))
        with trio.fail_after(10):
            reply = json.loads(await ws.get_message())
        wrong = [r for r in reply if r.get("error", {}).get("code") == -32001]
        assert len(wrong) == 3
        assert all(r["error"]["code"] != -32001 or "wrong token" in r["error"]["data"]["reason"]
                   for r in reply)
        await eventually(lambda: ws.closed, timeout=5, what="ws.closed")
        assert ws.closed.code == 1008
    # and guessing on the next frames after the close is not evaluated either
    assert sipd.log().count("wrong token, attempt") == 3


async def test_pipelined_wrong_logins_stop_at_the_limit(sipd):
    async with open_websocket_url(sipd.endpoint.url) as ws:
        for i in range(40):
            await ws.send_message(json.dumps(request("auth.login", {"token": f"g{i}"}, i)))
        answers = []
        with trio.fail_after(5):
            try:
                while True:
                    answers.append(json.loads(await ws.get_message()))
            except ConnectionClosed as closed:
                assert closed.reason.code == 1008
    evaluated = [a for a in answers if a.get("error", {}).get("code") == -32001
                 and a["error"]["data"]["reason"].startswith("wrong token")]
    assert len(evaluated) == 3
    assert sipd.log().count("wrong token, attempt") == 3


async def test_batch_members_count_against_the_in_flight_limit(tmp_path):
    # MESSAGEs to a UDP port that never answers: each messages.send waits for its timeout.
    daemon = SipdProcess(tmp_path, {"sip.t1": 50})
    daemon.start()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    target = f"sip:nobody@127.0.0.1:{silent.getsockname()[1]}"
    try:
        async with connect(daemon.endpoint) as watcher, connect(daemon.endpoint) as sender:
            cap = await watcher.call("settings.get", {"key": "rpc.max_batch"})
            batch = [request("messages.send", {"account": "local", "to": target,
                                               "content": f"m{i}"}, ident=i)
                     for i in range(cap["value"])]
            seen = []
            async with trio.open_nursery() as nursery:
                async def send_batch():
                    await sender.ws.send_message(json.dumps(batch))
                nursery.start_soon(send_batch)
                with trio.move_on_after(3):
                    while True:
                        state = await watcher.call("system.state")
                        seen.append(state["rpc"]["in_flight"])
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
            assert max(seen) > 1  # the batch did run concurrently
            assert max(seen) <= state["rpc"]["max_in_flight"] + 1  # +1: the watcher's own call
    finally:
        silent.close()
        daemon.stop()
