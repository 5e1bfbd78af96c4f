"""The protocol cores stay sans-I/O: every core module, imported in a fresh interpreter, brings
no trio, no socket or ssl, no dnspython, and no module of ours that does I/O (a `trio/` side,
or any module that imports trio, socket or ssl itself). The line is a folder (docs/design.md):
a core that needs the network gets it from its trio side, never the other way round."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

# The cores: every module of these folders (not their trio/ subfolders).
CORE_FOLDERS = ("sipd/sip", "sipd/sessions/invite", "sipd/sessions/sdp", "sipd/msrp",
                "sipd/presence", "sipd/xcap", "sipd/files", "sipd/screen")
# Modules of the standard library and dependencies that do I/O.
FORBIDDEN = ("trio", "socket", "_socket", "ssl", "_ssl", "dns", "asyncio", "selectors",
             "pjsua2", "websockets", "httpx", "h11")
# A module of ours that imports one of these does I/O too.
IO_IMPORT_MARKS = ("import trio", "import socket", "import ssl", "from trio", "from socket",
                   "from ssl", "import dns", "from dns")


def core_modules() -> list[str]:
    modules = []
    for folder in CORE_FOLDERS:
        for path in sorted((ROOT / folder).glob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def is_io_module(name: str) -> bool:
    if any(name == f or name.startswith(f + ".") for f in FORBIDDEN):
        return True
    if not name.startswith("sipd."):
        return False
    if "trio" in name.split("."):
        return True
    base = ROOT / name.replace(".", "/")
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    text = path.read_text() if path.exists() else ""
    return any(line.lstrip().startswith(IO_IMPORT_MARKS) for line in text.splitlines())


# Imports each core module in turn and says which modules each brought in first.
PROBE = """
import json, sys
brought = {}
for name in sys.argv[1:]:
    before = set(sys.modules)
    __import__(name)
    brought[name] = sorted(set(sys.modules) - before)
print(json.dumps(brought))
"""


def test_the_core_list_covers_the_folders():
    modules = core_modules()
    assert {"sipd.sip.transaction_layer", "sipd.sip.builder", "sipd.sessions.sdp.parse",
            "sipd.sessions.invite.session", "sipd.msrp.session", "sipd.presence.subscriber",
            "sipd.xcap.documents"} <= set(modules)
    assert not [m for m in modules if "trio" in m.split(".")]


def test_core_modules_import_no_io():
    modules = core_modules()
    result = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    brought = json.loads(result.stdout)
    offending = {core: [m for m in loaded if is_io_module(m)]
                 for core, loaded in brought.items()}
    assert {core: found for core, found in offending.items() if found} == {}


def test_core_modules_do_not_import_io_themselves():
    """Also what a core imports lazily, inside a function: it would do I/O when called."""
    for name in core_modules():
        base = ROOT / name.replace(".", "/")
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        lines = [line.strip() for line in path.read_text().splitlines()]
        assert not [line for line in lines if line.startswith(IO_IMPORT_MARKS)
                    or (line.startswith(("from ", "import ")) and ".trio" in line)], name
