"""Two daemons with media workers for the sipctl history test (as tests/cli does)."""

from tests.cli.conftest import pair  # noqa: F401
