"""The ASGI application hypercorn runs: the page's files, the login-code exchange, the RPC
WebSocket at /rpc, and files to send and received (`POST /uploads`, `GET /received/<id>` and
its one-time links, transfers.py).

Every HTTP answer carries the security headers (http.py). The /rpc WebSocket takes the same
browsers the front door does, plus the page's own origin: a page from this server on a
loopback or IP-literal host, or any host over HTTPS (a host name over plain HTTP could be a
DNS-rebinding page that merely resolves to us). The file endpoints take the same origins and
the same token, as `Authorization: Bearer`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import trio

from .audio import AudioChannels
from .files import PageFiles
from .http import answer, header, read_body, reject
from .login import LoginCodes
from .transfers import FileEndpoints
from .websocket import AsgiWebSocket, Receive, Send

log = logging.getLogger(__name__)

MAX_LOGIN_BODY = 1024

class RpcEndpoint(Protocol):
    """What the front door offers the page's WebSocket (sipd.rpc.server.RpcServer)."""

    def origin_allowed(self, origin: str | None) -> bool: ...

    def token_matches(self, offered: str) -> bool: ...

    async def serve(self, ws: Any, authenticated: bool) -> None: ...


def _host_of(authority: str) -> str:
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


def same_origin(scope: dict[str, Any], origin: str) -> bool:
    """Is `origin` this server as the browser reached it (scheme and Host header)?"""
    host_header = header(scope, b"host")
    if not host_header:
        return False
    secure = scope.get("scheme") in ("https", "wss")
    if origin.rstrip("/") != f"{'https' if secure else 'http'}://{host_header}":
        return False
    if secure:
        return True  # the certificate names the host: no rebinding past it
    host = _host_of(host_header)
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class WebApp:
    def __init__(self, files: PageFiles, codes: LoginCodes, token: str,
                 rpc: RpcEndpoint | None, audio: AudioChannels | None = None,
                 may_accept: Callable[[], bool] = lambda: True,
                 transfers: FileEndpoints | None = None) -> None:
        self.files = files
        self.transfers = transfers
        self.codes = codes
        self._token = token
        self.rpc = rpc
        self.audio = audio
        # The daemon's file descriptor budget (sipd/limits.py): a flood of connections to
        # the page must not take the descriptors SIP, RPC and the workers need.
        self.may_accept = may_accept

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind in ("http", "websocket") and not self.may_accept():
            if kind == "http":
                await answer(send, 503, b"sipd has too many open files; try again later\n")
            else:
                await receive()  # websocket.connect
                await reject(send, 503, "sipd has too many open files; try again later")
            return
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    # -- HTTP -----------------------------------------------------------------------------

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if path == "/login":
            if method != "POST":
                await answer(send, 405, b"use POST\n", extra=[(b"allow", b"POST")])
                return
            await self._login(scope, receive, send)
            return
        if path == "/uploads" or path.startswith("/received/"):
            await self._transfer(scope, receive, send)
            return
        if method not in ("GET", "HEAD"):
            await answer(send, 405, b"the page's files are read with GET\n",
                          extra=[(b"allow", b"GET, HEAD")])
            return
        found = self.files.find(path)
        if found is None:
            await answer(send, 404, b"not found\n")
            return
        file, media_type = found
        try:
            body = await trio.Path(file).read_bytes()
        except OSError:
            await answer(send, 404, b"not found\n")
            return
        await answer(send, 200, b"" if method == "HEAD" else body, media_type,
                      length=len(body))

    async def _login(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """A one-time code (from `sipctl web`'s link) for the token the page logs in with."""
        origin = header(scope, b"origin")
        if origin is not None and not same_origin(scope, origin):
            await answer(send, 403, b"not from this page\n")
            return
        body = await read_body(receive, MAX_LOGIN_BODY)
        code = None
        if body is not None:
            try:
                code = json.loads(body).get("code")
            except (ValueError, AttributeError):
                code = None
        if not isinstance(code, str) or not self.codes.redeem(code, trio.current_time()):
            await answer(send, 403, json.dumps({
                "error": "this login link is used up or expired: run `sipctl web` for a new "
                         "one, or paste the token from rpc.json"}).encode(), "application/json")
            return
        await answer(send, 200, json.dumps({"token": self._token}).encode(),
                      "application/json", extra=[(b"cache-control", b"no-store")])

    async def _transfer(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        uploading = path == "/uploads"
        allowed = ("POST",) if uploading else ("GET", "POST")
        if method not in allowed:
            await answer(send, 405, f"use {' or '.join(allowed)}\n".encode(),
                         extra=[(b"allow", ", ".join(allowed).encode())])
            return
        if self.rpc is None or self.transfers is None:
            await answer(send, 404, b"not found\n")
            return
        origin = header(scope, b"origin")
        if origin is not None and not (same_origin(scope, origin)
                                       or self.rpc.origin_allowed(origin)):
            await answer(send, 403, f"origin {origin} is not allowed\n".encode())
            return
        session = path.removeprefix("/received/")
        if not uploading and method == "GET" and self.transfers.redeem(scope, session):
            await self.transfers.download(send, session)  # a one-time download link
            return
        scheme, _, offered = (header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not self.rpc.token_matches(offered.strip()):
            await answer(send, 401, b"the token is needed (Authorization: Bearer); it is in "
                                    b"rpc.json\n", extra=[(b"www-authenticate", b"Bearer")])
            return
        if uploading:
            await self.transfers.upload(scope, receive, send)
        elif method == "POST":
            await self.transfers.link(send, session)
        else:
            await self.transfers.download(send, session)

    # -- the RPC WebSocket ----------------------------------------------------------------

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        path = scope["path"]
        audio_session = path.removeprefix("/audio/") if path.startswith("/audio/") else None
        if self.rpc is None or (path != "/rpc" and not (audio_session and self.audio)):
            await reject(send, 404, "no WebSocket here; the RPC is at /rpc")
            return
        origin = header(scope, b"origin")
        if origin is not None and not (same_origin(scope, origin)
                                       or self.rpc.origin_allowed(origin)):
            log.warning("refused a WebSocket handshake on the web page's server from origin "
                        "%s (not this page, not in rpc.allowed_origins)", origin)
            await reject(send, 403, f"origin {origin} is not allowed; add it to "
                                     "rpc.allowed_origins")
            return
        authenticated = False
        authorization = header(scope, b"authorization")
        if authorization is not None:
            scheme, _, offered = authorization.partition(" ")
            if scheme.lower() != "bearer" or not self.rpc.token_matches(offered.strip()):
                await reject(send, 401, "wrong token; it is in rpc.json")
                return
            authenticated = True
        await send({"type": "websocket.accept"})
        client = scope.get("client") or ("a client", 0)
        ws = AsgiWebSocket(receive, send, f"{client[0]}:{client[1]}")
        if audio_session and self.audio is not None:
            await self.audio.serve(ws, audio_session, authenticated)
        else:
            await self.rpc.serve(ws, authenticated)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
