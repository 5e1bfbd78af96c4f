"""Which files the page's server serves, and the one-time login codes (no daemon)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sipd.web.files import MEDIA_TYPES, PageFiles, default_root
from sipd.web.login import LoginCodes


@pytest.fixture
def root(tmp_path: Path) -> Path:
    page = tmp_path / "page"
    (page / "js").mkdir(parents=True)
    (page / "index.html").write_text("<!doctype html>")
    (page / "js" / "app.js").write_text("export {}")
    (page / ".secret.js").write_text("no")
    (page / "notes.md").write_text("unknown type")
    (tmp_path / "outside.js").write_text("outside")
    (page / "link.js").symlink_to(tmp_path / "outside.js")
    return page


def test_files_under_the_root_with_known_types(root: Path) -> None:
    files = PageFiles(root)
    assert files.find("/") == (root.resolve() / "index.html", "text/html; charset=utf-8")
    assert files.find("/js/app.js") == (root.resolve() / "js" / "app.js",
                                        "text/javascript; charset=utf-8")


@pytest.mark.parametrize("path", [
    "/../outside.js", "/js/../../outside.js", "/.secret.js", "/notes.md", "/link.js",
    "/js/", "/missing.js", "js/app.js", "/js\\..\\..\\outside.js", "/js/app.js\0",
])
def test_nothing_else(root: Path, path: str) -> None:
    assert PageFiles(root).find(path) is None


def test_the_page_is_package_data_and_ships_in_full() -> None:
    """Every file the server may serve is in the package data an installed sipd carries
    (pyproject.toml), and the source tree's clients/web is the same folder."""
    root = default_root()
    assert PageFiles(root).find("/") is not None
    assert (Path(__file__).resolve().parents[2] / "clients" / "web").resolve() == root
    with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as file:
        shipped = tomllib.load(file)["tool"]["setuptools"]["package-data"]["sipd.web"]
    suffixes = {pattern.removeprefix("page/**/*") for pattern in shipped}
    assert all(pattern.startswith("page/**/*.") for pattern in shipped)
    assert suffixes == set(MEDIA_TYPES)
    files = [path for path in root.rglob("*") if path.is_file()]
    assert files and all(path.suffix in suffixes for path in files)


def test_a_code_works_once_and_not_after_it_expires() -> None:
    codes = LoginCodes(lifetime=60)
    first, second = codes.issue(now=0), codes.issue(now=0)
    assert first != second
    assert codes.redeem(first, now=59.9)
    assert not codes.redeem(first, now=59.9)
    assert not codes.redeem(second, now=60.0)
    assert not codes.redeem("", now=0) and not codes.redeem("ÿ" * 5, now=0)


def test_pending_codes_are_bounded() -> None:
    codes = LoginCodes(lifetime=60, max_pending=2)
    oldest = codes.issue(now=0)
    kept = [codes.issue(now=1), codes.issue(now=2)]
    assert not codes.redeem(oldest, now=3)
    assert all(codes.redeem(code, now=3) for code in kept)


def test_a_code_for_one_subject_opens_nothing_else() -> None:
    codes = LoginCodes(lifetime=60)
    code = codes.issue(now=0, subject="session-1")
    assert not codes.redeem(code, now=1)                       # a login code it is not
    other = codes.issue(now=0, subject="session-1")
    assert not codes.redeem(other, now=1, subject="session-2")  # nor another file's
    assert not codes.redeem(other, now=1, subject="session-1")  # spent by the wrong try
    third = codes.issue(now=0, subject="session-1")
    assert codes.redeem(third, now=1, subject="session-1")
