from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from sipd.xcap.trio.client import XcapClient
from sipd.xcap.trio.manager import XcapDocumentManager
from tests.peers.fixtures import PEER_USERS
from tests.peers.kamailio import Kamailio


@pytest.fixture
def xcap_kamailio(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    """Kamailio with xcap_server (HTTP digest against its users), no TLS."""
    return kamailio_factory(tls=False, features={"xcap"})


def xcap_root(kamailio: Kamailio) -> str:
    return f"http://127.0.0.1:{kamailio.xcap_port}/xcap-root"


def xui(kamailio: Kamailio, user: str = "alice") -> str:
    return f"sip:{user}@{kamailio.domain}"


@asynccontextmanager
async def running_manager(root: str, xui: str, state_dir: Path, *, user: str = "alice",
                          events: list[tuple[str, dict[str, Any]]] | None = None,
                          **kwargs: Any) -> AsyncIterator[XcapDocumentManager]:
    """A document manager started (cache, 304s, journal) and running in a nursery."""
    sink = events if events is not None else []
    async with XcapClient(root, username=user, password=PEER_USERS.get(user, "x"),
                          retries=kwargs.pop("retries", 1), backoff=0.05, timeout=5) as client:
        manager = XcapDocumentManager(client, xui=xui, state_dir=state_dir,
                                      on_event=lambda name, data: sink.append((name, data)),
                                      retry_delays=(0.1, 0.5), **kwargs)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            yield manager
            nursery.cancel_scope.cancel()
