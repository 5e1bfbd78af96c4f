"""The documents and ETags of one account's XCAP server, kept on disk between runs.

One file per document in the account's cache directory: a JSON header line (ETag, content type,
or `absent` for a document the server said it does not have, and the SHA-256 of the bytes) and
the document's bytes. Files are replaced atomically (temp file, rename), so a crash leaves the
old copy or the new one. They are not fsynced: this is a cache, the server has the real
document. A file a power cut left empty, cut short or damaged does not match its digest and is
dropped when read, so the next start reads the document in full (with no If-None-Match: a
damaged copy is never confirmed by a 304).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import quote

from sipd.xcap.documents import DocumentKey, StoredDocument

log = logging.getLogger(__name__)

_SUFFIX = ".xcapdoc"


class DocumentCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, key: DocumentKey) -> Path:
        name = quote(f"{key.auid}/{key.document}", safe="") + _SUFFIX
        return self.directory / name

    def load(self, key: DocumentKey) -> tuple[bool, StoredDocument | None]:
        """(found, document): (False, None) when nothing is cached, (True, None) when the
        server had no such document when we last asked."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False, None
        except OSError as exc:
            log.warning("cannot read cached XCAP document %s: %s", path, exc.strerror)
            return False, None
        header, newline, content = data.partition(b"\n")
        try:
            meta = json.loads(header)
            if not newline or not isinstance(meta, dict):
                raise ValueError("no header")
            if meta.get("absent"):
                return True, None
            etag = meta.get("etag")
            content_type = meta.get("content_type") or "application/xml"
            if not isinstance(etag, (str, type(None))) or not isinstance(content_type, str):
                raise ValueError("bad header")
            if meta.get("sha256") != hashlib.sha256(content).hexdigest():
                raise ValueError("the content does not match its digest")
        except ValueError:
            log.warning("dropping damaged cached XCAP document %s", path)
            self._unlink(path)
            return False, None
        return True, StoredDocument(content, etag, content_type)

    def save(self, key: DocumentKey, document: StoredDocument | None) -> None:
        header: dict[str, object]
        if document is None:
            header = {"absent": True}
            content = b""
        else:
            content = document.content
            header = {"etag": document.etag, "content_type": document.content_type,
                      "sha256": hashlib.sha256(content).hexdigest()}
        data = json.dumps(header).encode() + b"\n" + content
        self._write_atomically(self.path(key), data)

    def forget(self, key: DocumentKey) -> None:
        self._unlink(self.path(key))

    def _write_atomically(self, target: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(temp, target)
        except BaseException:
            self._unlink(temp)
            raise

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass
