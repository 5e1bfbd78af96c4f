"""The daemons the call tests share (see tests/harness/fixtures.py): `daemons` once per module
(DAEMON_NAMES, default a and b), `a`, `b`, `c` a fresh RPC connection to each per test;
`daemon` (T1 = 50 ms) and `peer` for the tests against scripted peers."""

from tests.harness.fixtures import a, b, c, daemon, daemons, peer  # noqa: F401  (fixtures)
