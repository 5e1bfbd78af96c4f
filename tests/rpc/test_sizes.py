"""Bounded sizes: setting values and account fields have caps, and a client that does not read
is bounded in bytes as well as in events."""

from __future__ import annotations

import json
import socket

import pytest
import trio
from trio_websocket import wrap_client_stream

from sipctl.client import RpcCallError
from tests.harness.process import host_port

HUGE = "x" * 300_000


@pytest.mark.parametrize("key, value", [
    ("nat.turn.username", HUGE),
    ("nat.turn.password", HUGE),
    ("tls.ca_list", "/" + HUGE),
    ("rpc.allowed_origins", [f"http://host-{i}.example.test:8080" for i in range(10000)]),
])
async def test_an_oversized_setting_value_is_refused(sipd, client, key, value):
    before = sipd.config.read_bytes()
    with pytest.raises(RpcCallError) as refused:
        await client.call("settings.set", {"key": key, "value": value})
    assert refused.value.code == -32602
    assert refused.value.data["key"] == key
    assert len(refused.value.data["reason"]) < 1000  # the value is not echoed back whole
    assert sipd.config.read_bytes() == before
    assert HUGE not in sipd.log()


@pytest.mark.parametrize("field", ["display_name", "password", "username", "registrar"])
async def test_an_oversized_account_field_is_refused(sipd, client, field):
    value = ("sip:" + HUGE + ".example.test") if field == "registrar" else HUGE
    before = sipd.config.read_bytes()
    with pytest.raises(RpcCallError) as refused:
        await client.call("accounts.add", {"aor": "sip:big@example.test", field: value,
                                           "register": False})
    assert refused.value.code == -32602
    assert refused.value.data["field"] == field
    assert len(refused.value.data["reason"]) < 1000
    assert sipd.config.read_bytes() == before
    assert [a["id"] for a in (await client.call("accounts.list"))["accounts"]] == ["local"]


async def test_a_client_that_never_reads_is_bounded_in_bytes(sipd, client):
    await client.call("settings.set", {"key": "rpc.client_queue_bytes", "value": 256 * 1024})
    host, port = host_port(sipd.endpoint.url)
    headers = [("Authorization", f"Bearer {sipd.endpoint.token}")]
    # events of about 15 kB each: the count bound (1000 events) alone would allow ~15 MB
    origins = [f"http://host-{i:05d}.example.test:8080" for i in range(350)]
    async with trio.open_nursery() as nursery:
        stream = await trio.open_tcp_stream(host, port)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy = await wrap_client_stream(nursery, stream, host, "/", extra_headers=headers,
                                        message_queue_size=1)
        await lazy.send_message(json.dumps({"jsonrpc": "2.0", "method": "events.subscribe",
                                            "params": {"topics": ["settings"]}, "id": 1}))
        sent = 0
        with trio.fail_after(120):
            while "did not read" not in sipd.log() and sent < 350:
                origins[0] = f"http://changed-{sent}.example.test:1"
                await client.call("settings.set", {"key": "rpc.allowed_origins",
                                                   "value": origins})
                sent += 1
        nursery.cancel_scope.cancel()
    assert "did not read" in sipd.log()
    # kernel buffers hold some 600 kB; the queue 256 kB more: far fewer than 1000 events
    assert sent < 150
    assert (await client.call("system.version"))["name"] == "sipd"
