"""A chat conversation (sipd/chat/conversation.py) run over one MSRP connection: the user's
messages go out, the connection's events come in, composing timers fire, and what the user
should know is published as chat.* events through `publish`.

    channel = ChatChannel(connection, conversation, publish, session_id="s1")
    await nursery.start(connection.run)
    await nursery.start(channel.run)       # until the connection closes
    message_id = channel.send(b"hi", "text/plain")

`run` returns the reason the connection ended; the messages not yet delivered were told
`failed` with it before that.
"""

from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Callable
from typing import Any

import trio

from ...msrp.trio.connection import ConnectionClosed, MsrpConnection, RelayPathChanged
from ...msrp.uri import MsrpUri
from ..conversation import (
    Arrived,
    ChatConversation,
    ComposingChanged,
    Delivery,
    Output,
    Send,
    Unreadable,
)

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], None]


def _wall() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ChatChannel:
    def __init__(self, connection: MsrpConnection, conversation: ChatConversation,
                 publish: Publish, *, session_id: str, remote: str,
                 on_relay_path: Callable[[list[MsrpUri]], None] | None = None) -> None:
        self.connection = connection
        self.conversation = conversation
        self.publish = publish
        self.session_id = session_id
        self.remote = remote  # the session's remote party: the sender of plain messages
        # Our relay gave us a new path (a refresh): the peer must hear it (a re-INVITE).
        self.on_relay_path = on_relay_path
        self._timer_changed = trio.Event()
        self.ended: str | None = None

    # -- the user ---------------------------------------------------------------------------

    def send(self, content: bytes, content_type: str) -> str:
        """Queues a message; its id. ChatPayloadError when the peer cannot take the type,
        RuntimeError when the stream has ended."""
        self._check_open()
        send = self.conversation.send(content, content_type, now=trio.current_time(),
                                      wall=_wall())
        self._queue(send)
        return send.message_id

    def composing(self, state: str) -> None:
        self._check_open()
        self._handle([o for o in [self.conversation.composing(
            state, now=trio.current_time(), wall=_wall())] if o is not None])

    def displayed(self, message_ids: list[str]) -> None:
        self._check_open()
        self._handle(list(self.conversation.displayed(message_ids, wall=_wall())))

    def _check_open(self) -> None:
        if self.ended is not None:
            raise RuntimeError(f"the chat stream has ended: {self.ended}")

    # -- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timers)
            task_status.started()
            reason = "the chat connection ended"
            async for event in self.connection.events:
                if isinstance(event, ConnectionClosed):
                    reason = event.reason
                    continue
                if isinstance(event, RelayPathChanged):
                    if self.on_relay_path is not None:
                        self.on_relay_path(event.local_path)
                    continue
                self._handle(self.conversation.on_msrp(event, now=trio.current_time(),
                                                       wall=_wall()))
            self.ended = reason
            nursery.cancel_scope.cancel()
        return reason

    async def _timers(self) -> None:
        while True:
            deadline = self.conversation.next_deadline()
            with trio.move_on_at(deadline if deadline is not None else float("inf")):
                await self._timer_changed.wait()
                self._timer_changed = trio.Event()
                continue
            self._handle(self.conversation.tick(trio.current_time(), _wall()))

    def _handle(self, outputs: list[Output]) -> None:
        for item in outputs:
            if isinstance(item, Send):
                self._queue(item)
            elif isinstance(item, Arrived):
                text = item.text
                content, encoding = readable(text.content, text.content_type)
                message = {"session": self.session_id, "message_id": text.message_id,
                           "from": text.sender or self.remote,
                           "content_type": text.content_type, "content": content,
                           "time": (text.time or _wall()).isoformat()}
                if encoding:
                    message["encoding"] = encoding
                self.publish("chat.message", message)
            elif isinstance(item, ComposingChanged):
                self.publish("chat.composing", {"session": self.session_id,
                                                "from": item.sender or self.remote,
                                                "state": item.state})
            elif isinstance(item, Delivery):
                data: dict[str, Any] = {"session": self.session_id,
                                        "message_id": item.message_id, "status": item.status}
                if item.code is not None:
                    data["code"] = item.code
                if item.reason:
                    data["reason"] = item.reason
                self.publish("chat.delivery", data)
            elif isinstance(item, Unreadable):
                log.warning("chat %s: unreadable message %s: %s", self.session_id,
                            item.message_id, item.reason)
        self._timer_changed.set()

    def _queue(self, send: Send) -> None:
        self.connection.send_message(send.payload.body, send.payload.content_type,
                                     message_id=send.message_id,
                                     failure_report="yes" if send.report else "no")


def readable(body: bytes, content_type: str) -> tuple[str, str | None]:
    """Text as text (in its charset, else UTF-8 with replacement); anything else in base64,
    which the second item says."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith("text/") or media.endswith("+xml") or media == "application/json":
        charset = "utf-8"
        for param in content_type.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip('"') or "utf-8"
        try:
            return body.decode(charset, errors="replace"), None
        except LookupError:
            return body.decode("utf-8", errors="replace"), None
    return base64.b64encode(body).decode("ascii"), "base64"
