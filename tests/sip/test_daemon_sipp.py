"""sipp against the daemon: malformed requests get 400 and the daemon keeps serving."""

from __future__ import annotations

import pytest

from sipctl.client import connect
from tests.harness.waits import off_loop

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_malformed_requests_get_400_and_the_daemon_serves_on(sipd, client, sipp,
                                                                   transport):
    ports = (await client.call("system.state"))["sip"]["ports"]
    result = await off_loop(sipp.run, "malformed_uac.xml", ("127.0.0.1", ports[transport]),
                            rows=[["tester", "127.0.0.1"]], transport=transport)
    assert result.ok, result.report()
    async with connect(sipd.endpoint) as again:
        assert (await again.call("system.version"))["name"] == "sipd"
    assert "Traceback" not in sipd.log()
