"""The page's audio channel: a binary WebSocket (/audio/SESSION on the page's server) relayed
to the call's media worker over UDP on 127.0.0.1.

The channel is authenticated like RPC: its first message is `{"token": ...}` (a browser
cannot set headers; an `Authorization: Bearer` handshake header works too). It is bound to
one session, which must have been started or answered with `audio_device: "web"`, and a
session has one channel at a time. Then both ways carry binary messages of 640 bytes: 16-bit
little-endian mono PCM at 16 kHz, 20 ms each (protocol.py, web_audio). Anything else from the
page is dropped. The daemon never queues audio: a frame the page is too slow to take is
dropped, as a late frame would be useless anyway.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed

from .websocket import AsgiWebSocket

log = logging.getLogger(__name__)

FRAME_BYTES = 640
LOGIN_TIMEOUT = 10.0
QUEUED_FRAMES = 5  # toward the page: 100 ms, then frames are dropped
CLOSE_POLICY = 1008
CLOSE_GONE = 4404  # no such session (a private code: WebSocket 4000-4999)
CLOSE_REFUSED = 4409  # the session cannot take a web audio channel now


class AudioChannels:
    def __init__(self, find_session: Callable[[str], Any],
                 token_matches: Callable[[str], bool]) -> None:
        self._find_session = find_session
        self._token_matches = token_matches
        self._busy: set[str] = set()

    async def serve(self, ws: AsgiWebSocket, session_id: str, authenticated: bool) -> None:
        if not authenticated and not await self._login(ws):
            return
        try:
            session = self._find_session(session_id)
        except Exception:  # noqa: BLE001 - whatever the lookup raises: no such session
            await ws.aclose(CLOSE_GONE, f"no session {session_id}")
            return
        if session_id in self._busy:
            await ws.aclose(CLOSE_REFUSED, "this session already has a web audio channel")
            return
        self._busy.add(session_id)
        try:
            await self._relay(ws, session)
        finally:
            self._busy.discard(session_id)

    async def _login(self, ws: AsgiWebSocket) -> bool:
        with trio.move_on_after(LOGIN_TIMEOUT):
            try:
                first = await ws.get_message()
            except ConnectionClosed:
                return False
            try:
                token = json.loads(first).get("token") if isinstance(first, str) else None
            except (ValueError, AttributeError):
                token = None
            if isinstance(token, str) and self._token_matches(token):
                return True
            log.warning("web audio channel from %s: wrong token", ws.remote)
            await ws.aclose(CLOSE_POLICY, "wrong token")
            return False
        await ws.aclose(CLOSE_POLICY, f"not authenticated within {LOGIN_TIMEOUT:g} s")
        return False

    async def _relay(self, ws: AsgiWebSocket, session: Any) -> None:
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            await sock.bind(("127.0.0.1", 0))
            ours = sock.getsockname()[1]
            try:
                worker_port = await session.web_audio(f"127.0.0.1:{ours}")
            except Exception as exc:  # noqa: BLE001 - the session says why, the page hears it
                await ws.aclose(CLOSE_REFUSED, str(exc)[:120])
                return
            await sock.connect(("127.0.0.1", worker_port))
            log.info("session %s: web audio channel open (%s)", session.id, ws.remote)
            await ws.send_message(json.dumps({"ready": True, "rate": 16000,
                                              "frame_bytes": FRAME_BYTES}))
            try:
                async with trio.open_nursery() as nursery:
                    outgoing, pending = trio.open_memory_channel[bytes](QUEUED_FRAMES)
                    nursery.start_soon(self._from_page, ws, sock, nursery.cancel_scope)
                    nursery.start_soon(self._from_worker, sock, outgoing)
                    nursery.start_soon(self._to_page, ws, pending, nursery.cancel_scope)
                    nursery.start_soon(self._until_ended, session, nursery.cancel_scope)
            finally:
                with trio.move_on_after(2) as cleanup:
                    cleanup.shield = True
                    try:
                        await session.stop_web_audio()
                    except Exception as exc:  # noqa: BLE001 - the call may be gone: fine
                        log.debug("session %s: stop_web_audio: %s", session.id, exc)
                    await ws.aclose(1000, "the call ended" if session.terminated else "")
                log.info("session %s: web audio channel closed", session.id)

    @staticmethod
    async def _from_page(ws: AsgiWebSocket, sock: Any, scope: trio.CancelScope) -> None:
        try:
            while True:
                message = await ws.get_message()
                if isinstance(message, bytes) and len(message) == FRAME_BYTES:
                    try:
                        await sock.send(message)
                    except OSError:
                        pass  # the worker is not listening (yet, or any more)
        except ConnectionClosed:
            scope.cancel()

    @staticmethod
    async def _from_worker(sock: Any, outgoing: trio.MemorySendChannel[bytes]) -> None:
        while True:
            try:
                data = await sock.recv(4096)
            except OSError:
                await trio.sleep(0.02)  # ECONNREFUSED after a send the worker missed
                continue
            if len(data) == FRAME_BYTES:
                try:
                    outgoing.send_nowait(data)
                except trio.WouldBlock:
                    pass  # the page is behind: this frame is dropped

    @staticmethod
    async def _to_page(ws: AsgiWebSocket, pending: trio.MemoryReceiveChannel[bytes],
                       scope: trio.CancelScope) -> None:
        try:
            async for frame in pending:
                await ws.send_message(frame)
        except ConnectionClosed:
            scope.cancel()

    @staticmethod
    async def _until_ended(session: Any, scope: trio.CancelScope) -> None:
        await session.wait_terminated()
        scope.cancel()
