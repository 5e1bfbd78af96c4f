"""The table of sipctl subcommands: each maps command-line words onto one RPC method.

Later features add rows here; `sipctl call METHOD JSON` reaches anything not listed.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Arg:
    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.options.get("dest") or self.flags[-1].lstrip("-").replace("-", "_")


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


def json_or_text(text: str) -> Any:
    """A value on the command line: JSON when it parses (5060, true, ["udp"]), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Command:
    words: str
    method: str
    help: str
    args: tuple[Arg, ...] = ()
    show: str | None = None  # the key of a list in the result to print as a table
    columns: tuple[str, ...] = ()  # and its columns (default: all)
    build: Callable[[argparse.Namespace], Any] | None = None

    def params(self, ns: argparse.Namespace) -> dict[str, Any]:
        if self.build:
            return self.build(ns)
        values = {a.dest: getattr(ns, a.dest) for a in self.args}
        return {k: v for k, v in values.items() if v is not None and v != []}


COMMANDS: list[Command] = [
    Command("version", "system.version", "the daemon's version"),
    Command("state", "system.state", "a snapshot of everything live"),
    Command("shutdown", "system.shutdown", "stop the daemon"),
    Command("discover", "rpc.discover", "the OpenRPC description of the API"),
    Command("settings get", "settings.get", "show one setting or all",
            (arg("key", nargs="?"),), show="settings", columns=("key", "value", "is_default")),
    Command("settings set", "settings.set", "change a setting (VALUE is JSON or text)",
            (arg("key"), arg("value", type=json_or_text))),
    Command("settings reset", "settings.reset", "put a setting back to its default",
            (arg("key"),)),
    Command("settings schema", "settings.schema", "every setting with its type and help",
            show="settings", columns=("key", "type", "default", "help")),
]
