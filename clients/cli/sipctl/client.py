"""A small trio JSON-RPC client for sipd: find the daemon, call methods, receive events.

Used by sipctl, the benchmarks and the tests, so every test drives the daemon the way a user
does.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url


class RpcCallError(Exception):
    """The daemon answered with a JSON-RPC error."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.code = error.get("code")
        self.message = error.get("message", "")
        self.data = error.get("data")
        reason = self.data.get("reason") if isinstance(self.data, dict) else self.data
        super().__init__(f"{self.message}: {reason}" if reason else self.message)


class DaemonNotFound(Exception):
    pass


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str | None


def default_runtime_dirs() -> list[Path]:
    from sipd.settings.paths import default_paths
    dirs = []
    if os.environ.get("SIPD_RUNTIME_DIR"):
        dirs.append(Path(os.environ["SIPD_RUNTIME_DIR"]))
    dirs += [default_paths().runtime_dir, Path("/run/sipd")]
    return dirs


def find_endpoint(runtime_dir: Path | None = None, url: str | None = None,
                  token: str | None = None) -> Endpoint:
    """--url/--token win; otherwise rpc.json from --runtime-dir or the usual places."""
    if url and token:
        return Endpoint(url, token)
    candidates = [runtime_dir] if runtime_dir else default_runtime_dirs()
    for directory in candidates:
        path = directory / "rpc.json"
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except PermissionError:
            raise DaemonNotFound(f"{path} is not readable by this user (it is the daemon's "
                                 "secret); run as the daemon's user or pass --token") from None
        except ValueError as exc:
            raise DaemonNotFound(f"{path} is not valid JSON: {exc}") from None
        return Endpoint(url or info["url"], token or info.get("token"))
    where = ", ".join(str(d / "rpc.json") for d in candidates)
    raise DaemonNotFound(f"sipd does not seem to run: no {where}; start it with `sipd` or "
                         "pass --runtime-dir/--url")


class Client:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[Any, trio.MemorySendChannel[dict[str, Any]]] = {}
        self._events_send, self.events = trio.open_memory_channel[dict[str, Any]](100000)

    async def call(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        ident = next(self._ids)
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": ident}
        if params is not None:
            request["params"] = params
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._pending[ident] = send
        try:
            await self.ws.send_message(json.dumps(request))
            with trio.fail_after(timeout):
                try:
                    reply = await receive.receive()
                except trio.EndOfChannel:
                    raise ConnectionError("the daemon closed the connection before "
                                          "replying") from None
        finally:
            self._pending.pop(ident, None)
        if "error" in reply:
            raise RpcCallError(reply["error"])
        return reply.get("result")

    async def notify(self, method: str, params: Any = None) -> None:
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            request["params"] = params
        await self.ws.send_message(json.dumps(request))

    async def next_event(self, name: str | None = None, timeout: float = 10,
                         where: Any = None) -> dict[str, Any]:
        """The next `event` notification's params (optionally of one name / matching where)."""
        with trio.fail_after(timeout):
            async for message in self.events:
                if message.get("method") != "event":
                    continue
                params = message["params"]
                if (name is None or params["name"] == name) and (where is None or where(params)):
                    return params
        raise ConnectionError("connection closed")

    async def _reader(self) -> None:
        try:
            while True:
                message = json.loads(await self.ws.get_message())
                for item in message if isinstance(message, list) else [message]:
                    channel = self._pending.get(item.get("id")) if "id" in item else None
                    if channel is not None:
                        channel.send_nowait(item)
                    elif "method" in item:
                        self._events_send.send_nowait(item)
        finally:
            self._events_send.close()
            for channel in self._pending.values():  # wake every caller: no reply will come
                channel.close()


@asynccontextmanager
async def connect(endpoint: Endpoint, *, login: bool = False,
                  extra_headers: list[tuple[str, str]] | None = None) -> AsyncIterator[Client]:
    """Open a connection; the token goes on the handshake unless login=True (then auth.login)."""
    headers = list(extra_headers or [])
    if endpoint.token and not login:
        headers.append(("Authorization", f"Bearer {endpoint.token}"))
    encoded = [(name.encode(), value.encode()) for name, value in headers]
    async with open_websocket_url(endpoint.url, extra_headers=encoded,
                                  max_message_size=64 * 1024 * 1024) as ws:
        client = Client(ws)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_read_quietly, client)
                if login and endpoint.token:
                    await client.call("auth.login", {"token": endpoint.token})
                yield client
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # callers want the error, not trio's wrapping
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise


async def _read_quietly(client: Client) -> None:
    from trio_websocket import ConnectionClosed
    try:
        await client._reader()
    except ConnectionClosed:
        pass
