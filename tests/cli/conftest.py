"""Daemons for the sipctl tests that make calls."""

from __future__ import annotations

import pytest

from tests.daemon import running
from tests.sessions.test_calls import daemon_settings


@pytest.fixture
def pair(tmp_path):
    """Two daemons with media workers; their logs are printed when the test ends."""
    with running(tmp_path, daemon_settings()) as started:
        try:
            yield started
        finally:
            for daemon in started:
                print(daemon.log()[-4000:])
