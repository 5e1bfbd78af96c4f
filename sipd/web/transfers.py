"""Files through the page's server: `POST /uploads` (a file for files.send, which takes a
daemon-side path or such an upload's id) and `GET /received/<session-id>` (a file an incoming
transfer saved). The app has checked the Origin and the token (`Authorization: Bearer`) first.

    POST /uploads?name=report.pdf      body: the file's bytes
    201 {"upload": "<id>", "name": "report.pdf", "size": 1234}
    413 past web.max_upload_bytes (nothing kept), 507 when the disk refuses, 503 when the
    uploads folder could not be set up

    GET /received/<session-id>
    200 the bytes, application/octet-stream, Content-Disposition: attachment with the offered
    name made safe; 404 when that session received no file (or it is gone from the disk)

    POST /received/<session-id>
    200 {"url": "/received/<session-id>?code=...", "expires_in": 60}: a link good once, for a
    minute, for that file only, that needs no token: a browser follows it as a plain download
    and streams the file to disk (a fetch with the token would hold it all in memory first)
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, quote

import trio

from ..files.trio.uploads import UploadStore, UploadTooLarge
from ..history.database import HistoryUnavailable
from .http import SECURITY_HEADERS, answer, header
from .login import LoginCodes
from .received import ReceivedFile, ReceivedFiles
from .websocket import Receive, Send

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
JSON = "application/json"
LINK_LIFETIME = 60.0
MAX_LINKS = 32
# Before a 413 found while the body streams, the rest of the body is read and dropped, at most
# this much and this long: the server closes the connection after that answer, and a close
# while the client still sends makes the kernel reset the connection, so the client would
# lose the 413 (it sees "server disconnected").
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 5.0
CLOSE = (b"connection", b"close")


class ClientGone(Exception):
    """The request's body stopped coming: the client went away."""


def _error(text: str) -> bytes:
    return json.dumps({"error": text}).encode()


def content_disposition(name: str) -> bytes:
    """attachment, with an ASCII fallback and the UTF-8 name (RFC 6266, RFC 8187)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}" \
        .encode("ascii")


class FileEndpoints:
    def __init__(self, uploads: UploadStore | None, received: ReceivedFiles | None,
                 max_upload: Callable[[], int]) -> None:
        self.uploads = uploads
        self.received = received
        self.max_upload = max_upload
        self.links = LoginCodes(LINK_LIFETIME, MAX_LINKS)

    async def upload(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if self.uploads is None:
            await answer(send, 503, _error("uploads are off: their folder in the state "
                                           "directory cannot be used (see sipd's log)"), JSON)
            return
        limit = self.max_upload()
        too_large = _error(f"the file is larger than web.max_upload_bytes ({limit} bytes)")
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            # The body is left unread, so the server closes the connection after the answer:
            # say so, or a client would send its next request on a closing connection.
            await answer(send, 413, too_large, JSON, extra=[CLOSE])
            return
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        name = query.get("name", [None])[0]
        body = Body(receive)
        try:
            upload = await self.uploads.receive(body.chunks(), name, limit)
        except UploadTooLarge:
            await body.drain(DRAIN_BYTES, DRAIN_SECONDS)
            await answer(send, 413, too_large, JSON, extra=[] if body.ended else [CLOSE])
            return
        except ClientGone:
            return
        except OSError as exc:
            log.warning("an upload could not be stored: %s", exc)
            await answer(send, 507, _error(f"sipd cannot store the file: "
                                           f"{exc.strerror or exc}"), JSON)
            return
        await answer(send, 201, json.dumps({"upload": upload.id, "name": upload.name,
                                            "size": upload.size}).encode(), JSON,
                     extra=[(b"cache-control", b"no-store")])

    def redeem(self, scope: dict[str, Any], session_id: str) -> bool:
        """Does the request carry a download link's code for this session (spent now)?"""
        query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        code = query.get("code", [""])[0]
        return bool(code) and self.links.redeem(code, trio.current_time(), session_id)

    async def _find(self, send: Send, session_id: str) -> ReceivedFile | None:
        """The file received in the session, or None once the error is answered."""
        try:
            found = await self.received.find(session_id) if self.received else None
        except HistoryUnavailable as exc:
            await answer(send, 503, _error(f"the history is unavailable: {exc}"), JSON)
            return None
        if found is None:
            await answer(send, 404, _error(f"no file was received in session {session_id}"),
                         JSON)
        return found

    async def link(self, send: Send, session_id: str) -> None:
        if await self._find(send, session_id) is None:
            return
        code = self.links.issue(trio.current_time(), session_id)
        url = f"/received/{quote(session_id, safe='')}?code={code}"
        await answer(send, 200, json.dumps({"url": url, "expires_in": LINK_LIFETIME}).encode(),
                     JSON, extra=[(b"cache-control", b"no-store")])

    async def download(self, send: Send, session_id: str) -> None:
        found = await self._find(send, session_id)
        if found is None:
            return
        try:
            fd = await trio.to_thread.run_sync(os.open, found.path,
                                               os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            await answer(send, 404, _error(f"the file received in session {session_id} is "
                                           f"gone: {exc.strerror or exc}"), JSON)
            return
        with os.fdopen(fd, "rb", buffering=0) as file:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                await answer(send, 404, _error("not a regular file"), JSON)
                return
            headers = [(b"content-type", b"application/octet-stream"),
                       (b"content-length", str(info.st_size).encode()),
                       (b"content-disposition", content_disposition(found.name))]
            headers += [h for h in SECURITY_HEADERS if h[0] != b"cache-control"]
            headers.append((b"cache-control", b"no-store"))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            left = info.st_size
            while left > 0:
                chunk = await trio.to_thread.run_sync(file.read, min(CHUNK, left))
                if not chunk:  # it shrank: the promised length cannot be kept; cut it
                    raise OSError(f"{found.path} shrank while it was served")
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk,
                            "more_body": left > 0})
            if info.st_size == 0:
                await send({"type": "http.response.body", "body": b""})


class Body:
    """A request's body as it comes, and whether all of it came."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.ended = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.ended:
            message = await self.receive()
            if message["type"] != "http.request":
                self.ended = True
                raise ClientGone("the client went away during the upload")
            self.ended = not message.get("more_body")
            yield bytes(message.get("body", b""))

    async def drain(self, max_bytes: int, max_seconds: float) -> None:
        """Read and drop what is left of the body, within the bounds."""
        dropped = 0
        with trio.move_on_after(max_seconds):
            while not self.ended and dropped <= max_bytes:
                message = await self.receive()
                self.ended = message["type"] != "http.request" or not message.get("more_body")
                dropped += len(message.get("body", b""))
