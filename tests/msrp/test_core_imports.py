"""The MSRP core stays sans-I/O: importing every core module in a fresh interpreter brings no
trio, no ssl, and no module of ours that opens sockets."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import sipd.msrp

CORE = sorted(f"sipd.msrp.{m.name}" for m in pkgutil.iter_modules(sipd.msrp.__path__)
              if not m.ispkg)
# our own modules that do I/O: the trio sides, the SIP transports and locator
IO_MODULES = ("trio", "ssl", "sipd.msrp.trio", "sipd.sip.trio", "sipd.xcap.trio",
              "sipd.presence.trio", "dns")


def test_core_modules_listed():
    assert {"sipd.msrp.parser", "sipd.msrp.session", "sipd.msrp.relay", "sipd.msrp.sdp",
            "sipd.msrp.uri"} <= set(CORE)


def test_core_imports_no_io():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in CORE)
            + "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).parents[2]).stdout.split()
    offending = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in IO_MODULES)]
    assert offending == []
    # and no module of ours in the list imports socket itself
    ours = [m for m in loaded if m.startswith("sipd.")]
    for name in ours:
        path = Path(__file__).parents[2] / (name.replace(".", "/") + ".py")
        if path.exists():
            text = path.read_text()
            assert "import socket" not in text and "import trio" not in text, name
