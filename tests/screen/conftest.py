"""`vnc_server` (Xvfb painted a known colour, served by x11vnc), and `a`, `b`: RPC connections
to two daemons (tests/harness/fixtures.py)."""

from tests.harness.fixtures import a, b, daemons  # noqa: F401  (fixtures)
from tests.screen.test_bridge import vnc_server  # noqa: F401  (fixture)
