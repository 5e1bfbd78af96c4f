"""Generated documents stay in step with the code that generates them."""

from __future__ import annotations

from pathlib import Path

from sipd.rpc.apidoc import render

ROOT = Path(__file__).resolve().parent.parent


def test_api_doc_is_current():
    assert (ROOT / "docs" / "api.md").read_text() == render(), "run `make docs`"


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
