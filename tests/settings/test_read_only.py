"""A settings file an admin made read-only (no owner write bit) stays as the admin left it:
changes over RPC are refused with the reason, the file keeps its mode and its bytes."""

from __future__ import annotations

import os
import stat

import pytest

from sipctl.client import RpcCallError, connect
from tests.harness.process import SipdProcess


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def read_only_daemon(tmp_path):
    daemon = SipdProcess(tmp_path)
    daemon.start()
    os.chmod(daemon.config, 0o400)
    yield daemon
    daemon.stop()


async def test_settings_set_on_a_0400_file_is_refused_and_keeps_the_file(read_only_daemon):
    daemon = read_only_daemon
    before = daemon.config.read_bytes()
    async with connect(daemon.endpoint) as client:
        with pytest.raises(RpcCallError) as refused:
            await client.call("settings.set", {"key": "log.level", "value": "warning"})
        assert refused.value.code == -32004
        assert "read-only" in refused.value.data["reason"]
        assert "0400" in refused.value.data["reason"]
        # nothing changed, in memory either
        assert (await client.call("settings.get", {"key": "log.level"}))["value"] == "debug"
        with pytest.raises(RpcCallError) as refused:
            await client.call("accounts.add", {"aor": "sip:ro@example.test", "register": False})
        assert refused.value.code == -32004
    assert mode_of(daemon.config) == 0o400
    assert daemon.config.read_bytes() == before
    assert "read-only" in daemon.log()


async def test_a_0440_file_loses_the_group_bit_but_stays_read_only(tmp_path):
    daemon = SipdProcess(tmp_path)
    daemon.base.mkdir(parents=True)
    from tests.harness.process import write_config
    write_config(daemon.config, daemon.settings)
    os.chmod(daemon.config, 0o440)
    daemon.start()
    try:
        assert mode_of(daemon.config) == 0o400
    finally:
        daemon.stop()


async def test_writable_again_after_chmod(read_only_daemon):
    daemon = read_only_daemon
    async with connect(daemon.endpoint) as client:
        with pytest.raises(RpcCallError):
            await client.call("settings.set", {"key": "log.level", "value": "warning"})
        os.chmod(daemon.config, 0o600)
        await client.call("settings.set", {"key": "log.level", "value": "warning"})
    assert 'level = "warning"' in daemon.config.read_text()
    assert mode_of(daemon.config) == 0o600
