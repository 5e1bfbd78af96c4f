"""Fixtures of the web page tests: one headless chromium per module, screenshots per test,
and the harness's two daemons (`a`, `b`) for the audio channel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness.fixtures import a, b, daemons  # noqa: F401  (fixtures)
from tests.web.browser import Shots, open_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with open_browser() as opened:
        yield opened


@pytest.fixture
def shots(tmp_path: Any) -> Iterator[Shots]:
    taken = Shots(tmp_path / "screenshots")
    yield taken
    if taken.taken:
        print(f"screenshots in {taken.folder}")
