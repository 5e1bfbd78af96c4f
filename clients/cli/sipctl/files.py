"""`sipctl send-file` and `sipctl get-file`: one file transfer, followed to its end with a
progress bar (rich) on a terminal, plain lines otherwise.

    sipctl send-file ACCOUNT URI PATH          pushes PATH (a file on the daemon's host)
    sipctl get-file ACCOUNT URI NAME [--to P]  asks URI for its shared file NAME (a pull)

Exits 0 once the file is delivered (the session ends "completed"), 1 when it is refused or
fails (the reason is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

END_STATES = ("ended", "failed")


def add_parsers(sub: Any) -> None:
    send = sub.add_parser("send-file", help="send-file ACCOUNT URI PATH: send a file and "
                                            "follow it to its end")
    send.add_argument("account", metavar="ACCOUNT", help='the sending account ("local": direct)')
    send.add_argument("to", metavar="URI", help="whom to send it to")
    send.add_argument("path", metavar="PATH", type=os.path.abspath,
                      help="the file (on the daemon's host)")
    send.set_defaults(run=run_send)
    get = sub.add_parser("get-file", help="get-file ACCOUNT URI NAME: ask URI for a file it "
                                          "shares, and follow it to its end")
    get.add_argument("account", metavar="ACCOUNT", help='the asking account ("local": direct)')
    get.add_argument("to", metavar="URI", help="whom to ask")
    get.add_argument("name", metavar="NAME", help="the file's name")
    get.add_argument("--save", metavar="PATH", type=os.path.abspath,
                     help="where to save it: a folder or a file (default the daemon's "
                          "download folder)")
    get.set_defaults(run=run_get)


async def run_send(client: Any, args: argparse.Namespace) -> int:
    params = {"account": args.account, "to": args.to, "path": args.path}
    return await follow(client, args, "files.send", params)


async def run_get(client: Any, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"account": args.account, "to": args.to, "name": args.name}
    if args.save:
        params["path"] = args.save
    return await follow(client, args, "files.request", params)


async def follow(client: Any, args: argparse.Namespace, method: str,
                 params: dict[str, Any]) -> int:
    await client.call("events.subscribe", {"topics": ["sessions", "files"]},
                      timeout=args.timeout)
    started = await client.call(method, params, timeout=args.timeout)
    session = started["id"]
    display = Display(args.json)
    try:
        async for message in client.events:
            if message.get("method") != "event":
                continue
            event = message["params"]
            data = event.get("data") or {}
            if data.get("session", data.get("id")) != session:
                continue
            if args.json:
                print(json.dumps(event), flush=True)
            name = event.get("name")
            if name == "file.progress":
                display.progress(data)
            elif name == "file.transfer" and data.get("state") == "completed":
                display.done(data)
            elif name == "session.state" and data.get("state") in END_STATES:
                display.close()
                reason = data.get("reason") or data.get("state")
                if data["state"] == "ended" and reason == "completed":
                    return 0
                print(f"sipctl: the transfer did not complete: {reason}", file=sys.stderr)
                return 1
    finally:
        display.close()
    return 1


class Display:
    """A rich progress bar on a terminal; a line per report otherwise (or none with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Progress | None = None
        self.task: Any = None
        if not quiet and sys.stdout.isatty():
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            self.bar.start()

    def progress(self, data: dict[str, Any]) -> None:
        if self.quiet:
            return
        size, done = data.get("size"), data.get("transferred", 0)
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task(str(data.get("name")), total=size)
            self.bar.update(self.task, completed=done)
            return
        percent = f" ({100 * done // size} %)" if size else ""
        print(f"{data.get('name')}: {done} of {size} bytes{percent}, "
              f"{int(data.get('rate') or 0)} B/s", flush=True)

    def done(self, data: dict[str, Any]) -> None:
        self.close()
        if not self.quiet:
            print(f"{data.get('name')}: {data.get('direction')} complete"
                  f"{', saved as ' + data['path'] if data.get('path') else ''}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
