"""The chat kind: instant messages in a session, over MSRP (RFC 4975), m=message lines.

Its conversation (sipd.chat: CPIM wrapping by the peer's accept-types, is-composing, IMDN) runs
over the stream's connection in a ChatChannel, which publishes chat.message, chat.composing and
chat.delivery. What the user does goes through the stream:

    stream.send(b"hi", "text/plain")   # -> message id; ChatUnavailable, ChatRefused
    stream.composing("active")
    stream.displayed(["id1"])

`send` called while the connection is still being made (just after the session is up) waits
for it, a little.
"""

from __future__ import annotations


from typing import Any

import trio

from ...chat.conversation import ChatConversation
from ...chat.payload import (
    ISCOMPOSING_CONTENT_TYPE,
    LOCAL_ACCEPT_TYPES,
    LOCAL_ACCEPT_WRAPPED_TYPES,
    ChatPayloadError,
    ChatPayloads,
)
from ...chat.trio.channel import ChatChannel, readable
from ...messages.cpim import CPIM_CONTENT_TYPE, CPIMIdentity
from ...msrp.sdp import MsrpMedia
from ...msrp.trio.connection import MsrpConnection
from ..errors import InvalidSessionParam, SessionStateError
from .base import Stream, StreamContext, StreamState
from .msrp import MsrpKind, MsrpStream

CHAT = "chat"
CONNECT_WAIT = 10.0  # seconds a message waits for a connection under way
COMPOSING_STATES = ("active", "idle")


class ChatUnavailable(SessionStateError):
    """The session's chat cannot carry a message now (not connected yet, or over)."""


class ChatRefused(InvalidSessionParam):
    """The peer cannot take this message (its type), or a notification nobody asked for."""


def chat_of(session: Any) -> ChatStream:
    """The chat stream of a session (sipd.sessions.session.Session); ChatUnavailable when it
    has none, or none yet (an incoming session makes its streams when it is answered)."""
    for stream in session.lines.values():
        if isinstance(stream, ChatStream):
            return stream
    if CHAT in session.streams:
        raise ChatUnavailable(f"the chat is not connected yet: session {session.id} is "
                              f"{session.state.value}")
    raise ChatUnavailable(f"session {session.id} has no chat stream (its streams: "
                          f"{', '.join(session.streams) or 'none'})")


class ChatKind(MsrpKind):
    name = CHAT
    media_type = "message"
    accept_types = LOCAL_ACCEPT_TYPES
    accept_wrapped_types = LOCAL_ACCEPT_WRAPPED_TYPES
    sends = (CPIM_CONTENT_TYPE, "text/plain")

    def new_stream(self, context: StreamContext, index: int) -> Stream:
        return ChatStream(self, context, index)


class ChatStream(MsrpStream):
    def __init__(self, kind: ChatKind, context: StreamContext, index: int) -> None:
        super().__init__(kind, context, index)
        self.channel: ChatChannel | None = None

    async def converse(self, connection: MsrpConnection, theirs: MsrpMedia) -> str:
        payloads = ChatPayloads(CPIMIdentity(self.context.local), CPIMIdentity(self.context.remote),
                                accept_types=theirs.accept_types,
                                accept_wrapped_types=theirs.accept_wrapped_types)
        self.channel = ChatChannel(connection, ChatConversation(payloads), self.context.publish,
                                   session_id=self.context.session_id,
                                   remote=self.context.remote,
                                   on_relay_path=self.relay_path_changed)
        self.connected.set()
        return await self.channel.run()

    # -- the user ------------------------------------------------------------------------------
    async def _open_channel(self) -> ChatChannel:
        if self.state is StreamState.NEW:
            raise ChatUnavailable("the chat is not connected yet: the session is not "
                                  "established")
        if self.channel is None and self.state is not StreamState.ENDED:
            with trio.move_on_after(CONNECT_WAIT):  # it is connecting: the session is up
                await self.connected.wait()
        channel = self.channel
        if channel is None or channel.ended is not None or self.state is StreamState.ENDED:
            why = self.failure or self.ending or (channel.ended if channel else None)
            if self.state is not StreamState.ENDED and channel is None and why is None:
                raise ChatUnavailable("the chat is not connected yet (the MSRP connection is "
                                      "still being made)")
            raise ChatUnavailable(f"the chat has ended{': ' + why if why else ''}")
        return channel

    async def send(self, content: bytes, content_type: str) -> str:
        channel = await self._open_channel()
        if content_type.split(";", 1)[0].strip().lower() == ISCOMPOSING_CONTENT_TYPE:
            raise ChatRefused("content_type", "use chat.composing for is-composing indications")
        try:
            message_id = channel.send(content, content_type)
        except ChatPayloadError as exc:
            raise ChatRefused("content_type", str(exc)) from None
        except RuntimeError as exc:
            raise ChatUnavailable(str(exc)) from None
        text, encoding = readable(content, content_type)
        sending = {"session": self.context.session_id, "message_id": message_id,
                   "to": self.context.remote, "content_type": content_type, "content": text}
        if encoding:
            sending["encoding"] = encoding
        self.context.publish("chat.sending", sending)
        return message_id

    async def composing(self, state: str) -> None:
        if state not in COMPOSING_STATES:
            raise InvalidSessionParam("state", f"state is active or idle, not {state!r}")
        channel = await self._open_channel()
        try:
            channel.composing(state)
        except RuntimeError as exc:
            raise ChatUnavailable(str(exc)) from None

    async def displayed(self, message_ids: list[str]) -> None:
        channel = await self._open_channel()
        try:
            channel.displayed(message_ids)
        except ChatPayloadError as exc:
            raise ChatRefused("message_ids", str(exc)) from None
        except RuntimeError as exc:
            raise ChatUnavailable(str(exc)) from None
