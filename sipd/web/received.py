"""Which file `GET /received/<session-id>` may serve: the one an incoming transfer of that
session saved and verified, as the history recorded it (direction incoming, result completed,
the path it was saved at). Nothing else is ever served: no path comes from the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files.naming import safe_name
from ..history.queries import Filter

MAX_SESSION_ID = 256
ROWS = 20  # transfers of one session looked at (a session carries one file; resumes add rows)


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    name: str   # for Content-Disposition: the offered name, made safe
    size: int | None
    type: str | None


class ReceivedFiles:
    def __init__(self, history: Callable[[], Any]) -> None:
        self._history = history  # the daemon's History (sipd.history.trio), or None

    async def find(self, session_id: str) -> ReceivedFile | None:
        """The file received in `session_id`, or None. HistoryUnavailable when the history
        cannot be read (nothing to say which files were received)."""
        if not session_id or len(session_id) > MAX_SESSION_ID or "/" in session_id:
            return None
        history = self._history()
        if history is None:
            return None
        page = await history.files(Filter(session=session_id), ROWS)
        for row in page["files"]:
            if row["direction"] == "incoming" and row["result"] == "completed" and row["path"]:
                path = Path(row["path"])
                return ReceivedFile(path, safe_name(row["name"] or path.name), row["size"],
                                    row["type"])
        return None
