"""The screen sharing kind: RFB (VNC) over MSRP as python-sipsimple and Blink carry it,
m=application lines with a=accept-types:application/x-rfb and a=rfbsetup (sipd.screen.sdp).

The side that shares is the RFB server: its stream bridges the MSRP connection to a local VNC
server (the "vnc" option, default 127.0.0.1:5900). The side that views opens a loopback port
for a VNC viewer and reports it (sessions.get's line `screen.viewer`, and a `session.screen`
event {id, role, viewer}), or bridges to the "vnc" address given (a listening viewer).

What the user asked goes in the session's stream options under "screen-sharing":
    {"role": "share" | "view", "vnc": "HOST:PORT"}
An offer of ours without a role asks to view; an answer takes the other half of the offer.
When the local VNC side (server or viewer) leaves, the screen stream leaves the session: its
line is removed by a re-INVITE (port 0) and the other streams (a chat, audio) live on; a
session with nothing else ends with that reason.
"""

from __future__ import annotations

from typing import Any


from ...msrp.sdp import MsrpMedia
from ...msrp.trio.connection import MsrpConnection
from ...screen.sdp import (ACCEPT_TYPES, MEDIA, Rfbsetup, ScreenRole, ScreenSetupError,
                           answer_role, attributes, check_answer, parse_rfbsetup)
from ...screen.trio.bridge import VncConnectError, ViewerPort, bridge, connect_vnc_server
from ..sdp import MediaDescription, SessionDescription
from .base import Stream, StreamContext, StreamRefused
from .file_transfer import MAX_CHUNK_BYTES
from .msrp import MsrpKind, MsrpStream

SCREEN = "screen-sharing"
DEFAULT_VNC = ("127.0.0.1", 5900)


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` ([v6]:PORT too); ValueError saying what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


class ScreenKind(MsrpKind):
    name = SCREEN
    media_type = MEDIA
    accept_types = ACCEPT_TYPES
    sends = ACCEPT_TYPES

    def recognises(self, media: MediaDescription) -> bool:
        return super().recognises(media) and any(
            t.lower() in ACCEPT_TYPES for t in media.accept_types)

    def line_refusal(self, theirs: MsrpMedia, media: MediaDescription) -> str | None:
        try:
            parse_rfbsetup(media.attribute("rfbsetup"))
        except ScreenSetupError as exc:
            return str(exc)
        return None

    def announce(self, media: MediaDescription) -> dict[str, Any]:
        try:
            theirs = parse_rfbsetup(media.attribute("rfbsetup"))
        except ScreenSetupError:
            return {}
        return {"screen": {"role": str(answer_role(theirs))}}  # what we would do

    def new_stream(self, context: StreamContext, index: int) -> Stream:
        return ScreenStream(self, context, index)


class ScreenStream(MsrpStream):
    kind: ScreenKind

    def __init__(self, kind: ScreenKind, context: StreamContext, index: int) -> None:
        super().__init__(kind, context, index)
        self.options: dict[str, Any] = context.options.get(SCREEN, {})
        self.role = ScreenRole(self.options.get("role") or ScreenRole.VIEW)
        self.viewer: str | None = None  # host:port a local VNC viewer connects to
        self._remote_line: MediaDescription | None = None

    def view(self) -> dict[str, Any]:
        view = super().view()
        view["screen"] = {"role": str(self.role), "viewer": self.viewer,
                          "vnc": self.options.get("vnc")}
        return view

    async def answer(self, offer: SessionDescription,
                     offered: MediaDescription) -> MediaDescription:
        try:
            self.role = answer_role(parse_rfbsetup(offered.attribute("rfbsetup")))
        except ScreenSetupError as exc:
            raise StreamRefused(str(exc)) from None
        return await super().answer(offer, offered)

    def extra_attributes(self) -> list[tuple[str, str | None]]:
        return attributes(self.role)

    def connect_options(self) -> dict[str, Any]:
        # RFB is one byte stream each way: chunks are handed on as they come
        return {"accept_types": ACCEPT_TYPES, "max_message_size": None,
                "deliver_chunks": True, "max_chunk_bytes": MAX_CHUNK_BYTES}

    async def start(self, local: MediaDescription, remote: MediaDescription) -> None:
        self._remote_line = remote
        await super().start(local, remote)

    def _vnc_address(self) -> tuple[str, int] | None:
        text = self.options.get("vnc")
        return parse_address(text) if text else None

    async def converse(self, connection: MsrpConnection, theirs: MsrpMedia) -> str:
        if self._remote_line is not None and self._we_offered:
            try:
                answered = self._remote_line.attribute("rfbsetup")
                check_answer(Rfbsetup.PASSIVE if self.role is ScreenRole.SHARE
                             else Rfbsetup.ACTIVE,
                             parse_rfbsetup(answered) if answered is not None else None)
            except ScreenSetupError as exc:
                self.connected.set()
                return str(exc)
        address = self._vnc_address()
        try:
            if self.role is ScreenRole.SHARE:
                host, port = address or DEFAULT_VNC
                vnc = await connect_vnc_server(host, port)
            elif address is not None:
                vnc = await connect_vnc_server(*address)  # a viewer that listens
            else:
                async with ViewerPort() as listening:
                    self.viewer = f"{listening.host}:{listening.port}"
                    self.context.publish("session.screen", {
                        "id": self.context.session_id, "role": str(self.role),
                        "viewer": self.viewer})
                    self.connected.set()
                    vnc = await listening.accept()
        except VncConnectError as exc:
            self.connected.set()
            return str(exc)
        self.connected.set()
        end = await bridge(connection, vnc)
        if end.vnc_side:
            # our VNC server or viewer left: the screen stream goes (the session's other
            # streams live on), or the session when it had nothing else
            self.context.leave(self.index, end.reason)
            await self._ended.wait()
        return end.reason  # else the peer closed: its BYE or re-INVITE follows (MsrpStream)

