"""What file transfer streams need of the daemon: the download and share folders from the
settings, the kept parts of cut transfers (for resuming, also after a restart), and whether a
remote party is one of an account's contacts (files.accept_files_from_contacts).

    files = FilesService(settings.get, state_dir, contacts=lambda: service.contacts)
    await files.start()                        # reads the kept parts, forgets old ones
    files.download_dir()                       # files.download_dir, or the default folder
    await files.is_contact("alice", "sip:bob@example.com")
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sipd.settings.paths import default_download_dir

from .parts import PartStore

log = logging.getLogger(__name__)


class FilesService:
    def __init__(self, get: Callable[[str], Any], state_dir: Path, *,
                 contacts: Callable[[], Any] = lambda: None) -> None:
        self._get = get
        self.state_dir = Path(state_dir)
        self.parts = PartStore(self.state_dir / "files" / "parts.json")
        self._contacts = contacts

    async def start(self) -> None:
        await self.parts.load()
        try:
            await self.parts.expire()
        except OSError as exc:  # an old part that cannot be removed stays; nothing else
            log.warning("cannot forget old parts: %s", exc)

    def download_dir(self) -> str:
        configured = self._get("files.download_dir")
        return str(configured) if configured else str(default_download_dir(self.state_dir))

    def share_dir(self) -> str:
        configured = self._get("files.share_dir")
        return str(configured) if configured else ""

    async def is_contact(self, account_id: str, uri: str) -> bool:
        """Whether `uri` is in the account's contacts (False when they cannot be read)."""
        contacts = self._contacts()
        if contacts is None:
            return False
        try:
            book = await contacts.book(account_id)
            return book.contact(uri) is not None
        except Exception as exc:  # noqa: BLE001 - no contacts: not one of them
            log.info("contacts of %s unreadable for a file offer: %s", account_id, exc)
            return False
