"""The machine a benchmark ran on, and its section of docs/performance.md.

Each benchmark owns the part of docs/performance.md between `<!-- NAME:start -->` and
`<!-- NAME:end -->` and rewrites only that, so several benchmarks share the file.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TypeVar

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"

Opts = TypeVar("Opts")
Res = TypeVar("Res")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def machine() -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{now}; CPU: {cpu_model()}, {usable_cores()} usable cores "
            f"({os.cpu_count()} online); Linux {platform.release()}; "
            f"Python {platform.python_version()}, trio {_version('trio')}, "
            f"trio-websocket {_version('trio-websocket')}, sipd {_version('sipd')}")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=False))
        return "| " + " | ".join(padded) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(row) for row in rows)])


def write_section(name: str, body: str, doc: Path = DOC) -> Path:
    """Replace the section between the markers of `name` (append it when it is missing)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = doc.read_text() if doc.exists() else "# Performance\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _match: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc.with_name(doc.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(doc)
    return doc


def publish(name: str, summary: str, text: str, write: bool) -> str:
    """Prints a benchmark's summary and, with `write`, puts its section `text` into
    docs/performance.md; returns the section."""
    print(summary)
    if write:
        print(f"\nwrote the {name} section of {write_section(name, text)}")
    return text


def measured(seconds: float) -> str:
    """The line a section ends with: when and where it was measured, and how long it took."""
    return f"Measured {machine()}; the benchmark took {seconds:.0f} s."


def run_section(name: str, measure: Callable[[Opts], Res], summary: Callable[[Res, Opts], str],
                section: Callable[[Res, Opts], str], options: Opts, write: bool) -> str:
    """A benchmark made of `measure` (the runs), `summary` (printed) and `section` (its part
    of docs/performance.md): measures, then publishes."""
    results = measure(options)
    return publish(name, summary(results, options), section(results, options), write)
