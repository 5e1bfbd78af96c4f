"""A process that adds contacts while the XCAP server is unreachable and then waits to be
killed (tests/xcap/test_kamailio.py): python -m tests.xcap.offline_editor ROOT XUI STATE URI..."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from tests.xcap.conftest import running_manager


async def main(root: str, xui: str, state: str, uris: list[str]) -> None:
    async with running_manager(root, xui, Path(state), retries=0) as manager:
        for uri in uris:
            landed = await manager.add_contact(uri)
            assert landed.uri == uri
        print(f"pending {manager.pending}", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
