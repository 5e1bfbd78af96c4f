from __future__ import annotations

import pytest

from sipctl.client import connect
from tests.daemon import SipdProcess


@pytest.fixture
def sipd(tmp_path):
    daemon = SipdProcess(tmp_path)
    daemon.start()
    yield daemon
    daemon.stop()
    print(daemon.log())  # pytest shows it only when the test failed


@pytest.fixture
async def client(sipd):
    async with connect(sipd.endpoint) as rpc:
        yield rpc
