"""Which file of the page's folder a URL path names, and with which media type.

Only files under the folder, with a known extension, are ever served: no dot files, no
symbolic link out of the folder, no directory listings.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


def default_root() -> Path:
    """The page's files: package data of sipd.web (sipd/web/page, which the source tree also
    shows as clients/web), there in an editable install and in an installed wheel alike."""
    return Path(__file__).resolve().parent / "page"


class PageFiles:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def find(self, url_path: str) -> tuple[Path, str] | None:
        """The file and media type for a decoded URL path, or None (answer 404)."""
        if "\\" in url_path or "\0" in url_path or not url_path.startswith("/"):
            return None
        relative = PurePosixPath(url_path.lstrip("/"))
        if url_path.endswith("/"):
            relative = relative / "index.html"
        if any(part.startswith(".") for part in relative.parts):
            return None  # "..", ".git", ".env": never
        media_type = MEDIA_TYPES.get(relative.suffix.lower())
        if media_type is None:
            return None
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        return path, media_type
