"""Daemons for the sipctl tests that make calls."""

from tests.harness.fixtures import pair  # noqa: F401  (a fixture)
