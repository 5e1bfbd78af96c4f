"""Files a client uploaded (the web page's `POST /uploads`) for `files.send` to offer: a browser
has no path on the daemon's host to give it.

    uploads = UploadStore(state_dir / "uploads", keep=lambda: 3600)
    await uploads.start()                                 # a former run's uploads are gone
    upload = await uploads.receive(body_chunks, "report.pdf", limit=512 * 1024 * 1024)
    upload = uploads.take(upload.id)                      # UnknownUpload when it is not there
    uploads.bind(upload.id, session_id)  # or uploads.release(upload.id) when the send failed
    uploads.session_state(event)                          # the bus: the session ended -> deleted

An upload is written to `<id>.part` (created exclusively, mode 0600) and renamed to `<id>` once
whole, so a half-written file is never offered; the id is random (16 bytes) and the original
name (made safe by naming.safe_name) is kept in memory beside it. One upload is one send: taken
by files.send, it is deleted when that session ends; an upload nobody sent is deleted after
`keep()` seconds (the sweep runs on each new upload and from `sweep_loop`). A restart forgets
the ids, so `start` empties the folder.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..naming import safe_name

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
SWEEP_INTERVAL = 60.0


class UnknownUpload(Exception):
    """No upload with this id (never made, already sent, or expired)."""


class UploadTooLarge(Exception):
    """The upload passed the size limit; nothing of it is kept."""


@dataclass
class Upload:
    id: str
    name: str                   # the original name, made safe
    size: int
    path: Path
    created: float              # time.monotonic()
    taken: bool = False         # by a files.send
    session: str | None = None  # the session that sends it


class UploadStore:
    def __init__(self, folder: Path, keep: Callable[[], float],
                 live: Callable[[str], bool] = lambda _session: False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = Path(folder)
        self._keep = keep
        self._live = live        # is this session still going (a backstop to the bus)
        self._clock = clock
        self._uploads: dict[str, Upload] = {}

    async def start(self) -> None:
        await trio.to_thread.run_sync(self._reset_folder)

    def _reset_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for entry in self.folder.iterdir():
            try:
                entry.unlink()
            except OSError as exc:
                log.warning("cannot remove the old upload %s: %s", entry, exc)

    def state(self) -> dict[str, Any]:
        return {"count": len(self._uploads),
                "bytes": sum(upload.size for upload in self._uploads.values())}

    # -- receiving ------------------------------------------------------------------------

    async def receive(self, chunks: AsyncIterable[bytes], name: str | None,
                      limit: int) -> Upload:
        """Write `chunks` to a new upload; UploadTooLarge past `limit` bytes, OSError when the
        disk refuses. Nothing is left behind when it fails or is cancelled."""
        self.sweep()
        upload_id = secrets.token_urlsafe(16)
        part = self.folder / (upload_id + PART_SUFFIX)
        final = self.folder / upload_id
        size = 0
        fd = await trio.to_thread.run_sync(
            os.open, part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb", buffering=0) as file:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise UploadTooLarge(f"the file is larger than {limit} bytes "
                                             "(web.max_upload_bytes)")
                    if chunk:
                        await trio.to_thread.run_sync(file.write, chunk)
            await trio.to_thread.run_sync(os.replace, part, final)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_remove, part)
            raise
        upload = Upload(upload_id, safe_name(name), size, final, self._clock())
        self._uploads[upload_id] = upload
        log.info("upload %s: %d bytes (%s)", upload_id, size, upload.name)
        return upload

    # -- sending --------------------------------------------------------------------------

    def take(self, upload_id: str) -> Upload:
        """The upload for one send; UnknownUpload when there is none to take."""
        upload = self._uploads.get(upload_id)
        if upload is None or upload.taken:
            raise UnknownUpload(f"no upload {upload_id!r}: it was never made, was sent "
                                "already, or expired; upload the file again")
        upload.taken = True
        return upload

    def release(self, upload_id: str) -> None:
        """The send that took it did not start: it may be sent again (until it expires)."""
        upload = self._uploads.get(upload_id)
        if upload is not None and upload.session is None:
            upload.taken = False
            upload.created = self._clock()

    def bind(self, upload_id: str, session_id: str) -> None:
        """The session that sends it: the upload goes when that session ends."""
        upload = self._uploads.get(upload_id)
        if upload is not None:
            upload.session = session_id

    def session_state(self, event: Any) -> None:
        """A bus subscriber (topic sessions): a session.state that ends a sending session
        deletes its upload."""
        if event.name != "session.state" or event.data.get("state") not in ("ended", "failed"):
            return
        session = event.data.get("id")
        for upload in list(self._uploads.values()):
            if upload.session is not None and upload.session == session:
                self._delete(upload)

    # -- forgetting -----------------------------------------------------------------------

    def sweep(self) -> None:
        """Delete the uploads nobody sent within keep() seconds, and those whose session is
        gone (its end event was missed)."""
        now = self._clock()
        for upload in list(self._uploads.values()):
            if upload.session is not None:
                if not self._live(upload.session):
                    self._delete(upload)
            elif not upload.taken and now - upload.created > self._keep():
                self._delete(upload)

    async def sweep_loop(self) -> None:
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            self.sweep()

    def _delete(self, upload: Upload) -> None:
        self._uploads.pop(upload.id, None)
        _remove(upload.path)
        log.info("upload %s deleted", upload.id)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove the upload %s: %s", path, exc)
