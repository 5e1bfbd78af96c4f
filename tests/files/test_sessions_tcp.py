"""Files between two real sipd daemons over plain MSRP TCP (msrp.transport tcp): 1 B and a
200 MB file, each arriving whole with its hash checked at both ends."""

from __future__ import annotations

import pytest

from tests.harness.files import FILE_TOPICS, make_file, push
from tests.harness.peer import daemon_settings

PEER_TOPICS = FILE_TOPICS
DAEMON_SETTINGS = {**daemon_settings(), "msrp.transport": "tcp"}


@pytest.mark.parametrize("size", [1, 200 * 1024 * 1024], ids=["1B", "200MB"])
async def test_a_file_over_msrp_tcp(a, b, tmp_path, size):
    source = make_file(tmp_path / "over tcp.bin", size)
    a_id, _, _ = await push(a, b, source)
    (line,) = (await a.call("sessions.get", id=a_id))["lines"]
    assert all(uri.startswith("msrp://") for uri in line["local_path"])  # not msrps
