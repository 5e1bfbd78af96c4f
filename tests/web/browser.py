"""Debian's chromium, headless, driven by Playwright for Python: never a downloaded browser.

`open_browser()` skips the test when chromium or Playwright is missing (fails it with CI=true:
tests/install-deps.sh installs chromium, `make install` Playwright). Pages record their
console errors and uncaught exceptions; `Shots` saves screenshots under the test's tmp dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.peers.proc import require_binary

SIZES = {"wide": (1280, 800), "phone": (390, 844)}
AXE = Path(__file__).with_name("data") / "axe.min.js"
TIMEOUT_MS = 20_000


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "Playwright for Python is not installed (make install adds it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return sync_playwright


@contextmanager
def open_playwright() -> Iterator[Any]:
    """Playwright, for `launch`; chromium and Playwright checked first."""
    require_binary("chromium")
    sync_playwright = _playwright()
    with sync_playwright() as playwright:
        yield playwright


def launch(playwright: Any, microphone: Path | None = None) -> Any:
    """Debian's chromium with a fake microphone (a beep, or the WAV file `microphone`), no
    prompt for it, and audio allowed to start without a gesture."""
    args = ["--no-sandbox", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
    if microphone is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone}")
    return playwright.chromium.launch(executable_path=require_binary("chromium"),
                                      headless=True, args=args)


@contextmanager
def open_browser(microphone: Path | None = None) -> Iterator[Any]:
    with open_playwright() as playwright:
        browser = launch(playwright, microphone)
        try:
            yield browser
        finally:
            browser.close()


class Page:
    """A page in a fresh browser context, with its console errors kept."""

    def __init__(self, browser: Any, size: str = "wide", **context: Any) -> None:
        width, height = SIZES[size]
        self.context = browser.new_context(viewport={"width": width, "height": height},
                                           **context)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"exception: {error}"))
        self.page.on("console", lambda message: self.errors.append(f"console: {message.text}")
                     if message.type == "error" else None)

    def close(self) -> None:
        self.context.close()

    def resize(self, size: str) -> None:
        width, height = SIZES[size]
        self.page.set_viewport_size({"width": width, "height": height})

    def serious_violations(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical findings on the page as it is shown now, at each
        size (a layout can hide or squeeze things at one size only)."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text())
        found = []
        for size in SIZES:
            self.resize(size)
            result = self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            found += [{"size": size, "id": v["id"], "impact": v["impact"], "help": v["help"],
                       "nodes": [n["target"] for n in v["nodes"]][:5]}
                      for v in result["violations"] if v["impact"] in ("serious", "critical")]
        self.resize("wide")
        return found


class Shots:
    """Screenshots of the main views, named view-size.png, in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def take(self, page: Page, view: str) -> None:
        for size in SIZES:
            page.resize(size)
            path = self.folder / f"{view}-{size}.png"
            page.page.screenshot(path=str(path))
            self.taken.append(path)
        page.resize("wide")
