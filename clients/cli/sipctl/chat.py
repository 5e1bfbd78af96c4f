"""`sipctl chat`: a chat in the terminal, and one message for scripts.

    sipctl chat ACCOUNT URI      opens a chat session to URI from ACCOUNT, sends each line typed
                                 (or piped in), prints what arrives and who is typing; the end
                                 of input (Ctrl-D) ends the session
    sipctl chat send ID TEXT     sends TEXT in the chat of session ID and prints its message id

Exits 0 when the chat ends normally, 1 when the session cannot be set up or fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio

SEND_WORD = "send"


class ChatUsageError(Exception):
    pass


def add_parser(sub: Any, run: Any) -> None:
    chat = sub.add_parser(
        "chat", help="chat ACCOUNT URI: a terminal chat (Ctrl-D ends it); "
                     "chat send ID TEXT: one message in session ID's chat",
        usage="sipctl chat ACCOUNT URI | sipctl chat send ID TEXT [--content-type TYPE]")
    chat.add_argument("words", nargs="+", metavar="ARG",
                      help="ACCOUNT URI, or send ID TEXT")
    chat.add_argument("--content-type", default="text/plain",
                      help="the MIME type of what is sent (default text/plain)")
    chat.set_defaults(run=run)


async def run_chat(client: Any, args: argparse.Namespace) -> int:
    words = args.words
    if words[0] == SEND_WORD and len(words) == 3:
        result = await client.call("chat.send", {"session": words[1], "content": words[2],
                                                 "content_type": args.content_type},
                                   timeout=args.timeout)
        print(json.dumps(result) if args.json else result["message_id"])
        return 0
    if len(words) != 2:
        raise ChatUsageError("usage: sipctl chat ACCOUNT URI, or sipctl chat send ID TEXT")
    return await TerminalChat(client, args).run(words[0], words[1])


def _say(text: str) -> None:
    print(text, flush=True)


class TerminalChat:
    def __init__(self, client: Any, args: argparse.Namespace) -> None:
        self.client = client
        self.args = args
        self.session: str | None = None
        self.established = trio.Event()
        self.over = trio.Event()
        self.failed: str | None = None

    async def run(self, account: str, uri: str) -> int:
        await self.client.call("events.subscribe", {"topics": ["sessions", "chat"]},
                               timeout=self.args.timeout)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._events)
            started = await self.client.call(
                "sessions.start", {"account": account, "to": uri, "streams": ["chat"]},
                timeout=self.args.timeout)
            self.session = started["id"]
            _say(f"# chat with {started['remote']} (session {self.session}); "
                 f"Ctrl-D ends it")
            with trio.CancelScope() as waiting:
                nursery.start_soon(self._cancel_when_over, waiting)
                await self.established.wait()
            if not self.over.is_set():
                await self._type_lines()
            nursery.cancel_scope.cancel()
        return 1 if self.failed else 0

    async def _cancel_when_over(self, scope: trio.CancelScope) -> None:
        await self.over.wait()
        scope.cancel()

    async def _type_lines(self) -> None:
        """Each line read goes out; the end of input ends the session."""
        with trio.CancelScope() as reading:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._cancel_when_over, reading)
                while True:
                    line = await trio.to_thread.run_sync(sys.stdin.readline,
                                                         abandon_on_cancel=True)
                    if not line:
                        break
                    text = line.rstrip("\r\n")
                    if text:
                        await self.client.call(
                            "chat.send", {"session": self.session, "content": text,
                                          "content_type": self.args.content_type},
                            timeout=self.args.timeout)
                nursery.cancel_scope.cancel()
        if not self.over.is_set():
            await self.client.call("sessions.end", {"id": self.session},
                                   timeout=self.args.timeout)
            with trio.move_on_after(self.args.timeout):
                await self.over.wait()

    async def _events(self) -> None:
        async for message in self.client.events:
            if message.get("method") != "event":
                continue
            params = message.get("params") or {}
            self._show(params.get("name", ""), params.get("data") or {})

    def _show(self, name: str, data: dict[str, Any]) -> None:
        if self.args.json and (data.get("session") or data.get("id")) == self.session:
            _say(json.dumps({"name": name, "data": data}, ensure_ascii=False))
        if name == "session.state" and data.get("id") == self.session:
            self._state(data)
            return
        if data.get("session") != self.session or self.args.json:
            return
        if name == "chat.message":
            content = data.get("content", "")
            if data.get("encoding") == "base64":
                content = f"[{data.get('content_type')}, {len(content) * 3 // 4} bytes]"
            _say(f"{data.get('from')}: {content}")
        elif name == "chat.composing":
            _say(f"# {data.get('from')} is typing" if data.get("state") == "active"
                 else f"# {data.get('from')} stopped typing")
        elif name == "chat.delivery" and data.get("status") == "failed":
            _say(f"# message {data.get('message_id')} not delivered: "
                 f"{data.get('reason') or data.get('code')}")

    def _state(self, data: dict[str, Any]) -> None:
        state = data.get("state")
        detail = " ".join(str(data[k]) for k in ("code", "reason") if data.get(k) is not None)
        if state == "established":
            if not self.args.json:
                _say("# connected: type a line and Enter to send it")
            self.established.set()
        elif state in ("ringing", "ending") and not self.args.json:
            _say(f"# {state}")
        elif state in ("ended", "failed"):
            if state == "failed":
                self.failed = detail or "failed"
            if not self.args.json:
                _say(f"# {state}{': ' + detail if detail else ''}")
            self.over.set()
