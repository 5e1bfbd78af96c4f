"""The baseline: a bare trio-websocket server, in its own process, doing as little as it can.

    python -m bench.echo_server [--host 127.0.0.1] [--port 0]

It prints `PORT <n>` on stdout once it listens, then serves until it is terminated. What a
connection gets depends on the path it opens:

  /          echo: every message is sent straight back, unchanged
  /listen    broadcast receiver: gets every message sent on a /trigger connection
  /trigger   broadcast sender: each message's params.time is set to the server's time.time(),
             the frame is sent to every /listen connection, then "ok" goes back to the trigger

The client code in bench/ is the same for this server and for sipd, so the ratio of the two
shows what sipd's JSON-RPC layer costs on top of trio and trio-websocket.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket


class EchoServer:
    def __init__(self) -> None:
        self.listeners: set[WebSocketConnection] = set()

    async def handle(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        path = (ws.path or "").split("?", 1)[0]
        try:
            if path == "/listen":
                await self._listen(ws)
            elif path == "/trigger":
                await self._trigger(ws)
            else:
                await self._echo(ws)
        except ConnectionClosed:
            pass

    async def _echo(self, ws: WebSocketConnection) -> None:
        while True:
            await ws.send_message(await ws.get_message())

    async def _listen(self, ws: WebSocketConnection) -> None:
        self.listeners.add(ws)
        try:
            while True:  # only to notice the close; listeners send nothing
                await ws.get_message()
        finally:
            self.listeners.discard(ws)

    async def _trigger(self, ws: WebSocketConnection) -> None:
        while True:
            message = json.loads(await ws.get_message())
            message["params"]["time"] = time.time()
            frame = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
            for listener in list(self.listeners):
                try:
                    await listener.send_message(frame)
                except ConnectionClosed:
                    self.listeners.discard(listener)
            await ws.send_message("ok")


async def serve(host: str, port: int) -> None:
    server = EchoServer()
    async with trio.open_nursery() as nursery:
        ws_server = await nursery.start(serve_websocket, server.handle, host, port, None)
        print(f"PORT {ws_server.port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.host, args.port)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
