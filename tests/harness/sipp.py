"""Reading what a sipp scenario sent and received (its -trace_msg log), for the tests that
drive sipd against scripted peers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.harness.waits import off_loop
from tests.peers.sipp import SippResult, SippRun

_TRACE_ENTRY = re.compile(r"-{20,} [^\n]*\n(?P<what>[^\n]*)\n\n(?P<message>.*?)(?=-{20,} \d|\Z)",
                          re.DOTALL)


async def finish(run: SippRun) -> SippResult:
    """The scenario's result once sipp exits; it must have passed."""
    result = await off_loop(run.wait)
    assert result.ok, result.report()
    return result


def messages(result: SippResult, direction: str) -> list[str]:
    """The SIP messages sipp logged as 'sent' or 'received', each from its first line."""
    found = []
    for chunk in re.split(r"^-{10,}.*$", result.messages, flags=re.M):
        head, _, rest = chunk.partition("\n")
        while not head.strip() and rest:
            head, _, rest = rest.partition("\n")
        if f"message {direction}" in head:
            found.append(rest.strip())
    return found


def starting(texts: list[str], first_line: str) -> list[str]:
    return [t for t in texts if t.startswith(first_line)]


def _received(trace: str, method: str) -> list[str]:
    return [entry["message"].strip() for entry in _TRACE_ENTRY.finditer(trace)
            if " message received " in entry["what"]
            and entry["message"].startswith(f"{method} ")]


def received_requests(result: SippResult, method: str = "REGISTER") -> list[str]:
    """The requests sipp received, as text, in order (from its -trace_msg log)."""
    return _received(result.messages, method)


def received_so_far(run: Any, method: str = "REGISTER") -> list[str]:
    """The requests a sipp still running has received."""
    path: Path = run.files["messages"]
    return _received(path.read_text(errors="replace") if path.exists() else "", method)


def header(message: str, name: str) -> str | None:
    match = re.search(rf"^{name}:\s*(.*?)\s*$", message, re.MULTILINE | re.IGNORECASE)
    return match.group(1) if match else None


def branch(message: str) -> str:
    via = header(message, "Via") or ""
    match = re.search(r"branch=([^;,\s]+)", via)
    assert match, message
    return match.group(1)
