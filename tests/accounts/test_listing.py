"""Many accounts: accounts.list in pages, system.state with counts instead of every account,
and sipctl paging through them all. The accounts are files in the accounts directory written
before the daemon starts, as an admin (or configuration management) would."""

from __future__ import annotations

import json

import pytest

from sipctl.client import RpcCallError, connect
from tests.harness.process import SipdProcess, write_config
from tests.harness.sipctl import sipctl_json

MANY = 620  # more than one of sipctl's pages (500)


@pytest.fixture
def crowded(tmp_path):
    daemon = SipdProcess(tmp_path)
    write_config(daemon.config, daemon.settings)
    directory = daemon.config.parent / "accounts"
    directory.mkdir(mode=0o700)
    for n in range(MANY):
        file = directory / f"user{n:04d}.toml"
        file.write_text(f'aor = "sip:user{n:04d}@example.test"\nregister = false\n'
                        f'password = {json.dumps(f"pw{n}")}\n')
        file.chmod(0o600)
    daemon.start()
    yield daemon
    daemon.stop()


async def test_pages_state_counts_and_sipctl(crowded):
    wanted = ["local", *(f"user{n:04d}" for n in range(MANY))]
    async with connect(crowded.endpoint) as client:
        first = await client.call("accounts.list", {"limit": 100})
        assert [a["id"] for a in first["accounts"]] == wanted[:100]
        assert first["next"] == wanted[99]
        assert first["accounts"][1]["registration"]["state"] == "unregistered"
        seen, after = [a["id"] for a in first["accounts"]], first["next"]
        while after is not None:
            page = await client.call("accounts.list", {"limit": 250, "after": after})
            seen += [a["id"] for a in page["accounts"]]
            after = page["next"]
        assert seen == wanted
        everything = await client.call("accounts.list")
        assert len(everything["accounts"]) == MANY + 1 and everything["next"] is None
        with pytest.raises(RpcCallError) as refused:
            await client.call("accounts.list", {"limit": 0})
        assert refused.value.code == -32602

        state = await client.call("system.state")
        assert state["accounts"] == {"count": MANY + 1, "registration": {
            "registered": 0, "registering": 0, "failed": 0, "unregistered": MANY + 1}}
        assert len(json.dumps(state)) < 20_000
        full = await client.call("system.state", {"accounts": True})
        assert [a["id"] for a in full["accounts"]["list"]] == wanted

    listed = sipctl_json(crowded, "accounts", "list")
    assert [a["id"] for a in listed["accounts"]] == wanted
