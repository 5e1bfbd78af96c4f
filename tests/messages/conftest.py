"""Two daemons per module and a connection to each per test, for the modules that ask for
`a` and `b` (see tests/harness/fixtures.py)."""

from tests.harness.fixtures import a, b, daemons  # noqa: F401  (fixtures)
