from __future__ import annotations

import pytest

from sipctl.client import connect
from tests.harness.process import SipdProcess

pytest_plugins = ["tests.peers.fixtures"]


@pytest.fixture
def sipd(tmp_path):
    """A running sipd with its own directories, listening on 127.0.0.1 and a free port."""
    daemon = SipdProcess(tmp_path)
    daemon.start()
    yield daemon
    daemon.stop()
    print(daemon.log())  # pytest shows it only when the test failed


@pytest.fixture
async def client(sipd):
    """An authenticated RPC connection to the `sipd` fixture."""
    async with connect(sipd.endpoint) as rpc:
        yield rpc
