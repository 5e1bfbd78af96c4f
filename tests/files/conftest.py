"""`a` and `b`: a fresh RPC connection per test to the daemons a module starts (its own
`daemons` fixture, or the shared one; see tests/harness/fixtures.py)."""

from tests.harness.fixtures import a, b, daemons  # noqa: F401  (fixtures)
