"""The daemon fixtures, in one place: n daemons per module, a fresh `DaemonPeer` to each per
test (`peer_fixture` makes one for any index). A conftest imports what its tests use:

    from tests.harness.fixtures import a, b, c, daemons  # noqa: F401  (fixtures)

`daemons` starts the daemons a module names in DAEMON_NAMES (default two: a and b) once per
module (start-up is much of what call tests take), with the module's DAEMON_SETTINGS (default
`daemon_settings()`: media workers on loopback); `a`, `b`, `c` are RPC connections to the
first three, subscribed to the module's PEER_TOPICS (default sessions, media, messages).
`daemon` is one daemon with T1 = 50 ms, for scripted peers (sipp), and `peer` a connection to
it. `pair` is two daemons of a test's own, for tests that drive them from outside (sipctl).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.peer import CALL_TOPICS, DaemonPeer, daemon_settings, open_peer
from tests.harness.process import SipdProcess, running


def module_base(request: Any, tmp_path_factory: Any) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def daemons(request: Any, tmp_path_factory: Any) -> Iterator[list[SipdProcess]]:
    names = getattr(request.module, "DAEMON_NAMES", ("a", "b"))
    settings = getattr(request.module, "DAEMON_SETTINGS", None)
    with running(module_base(request, tmp_path_factory),
                 daemon_settings() if settings is None else settings, names=names) as started:
        yield started


def peer_fixture(index: int, name: str) -> Any:
    """A fixture: a fresh RPC connection, per test, to the `index`-th of `daemons`."""
    async def connected(request: Any, daemons: list[SipdProcess]) -> AsyncIterator[DaemonPeer]:
        topics = getattr(request.module, "PEER_TOPICS", CALL_TOPICS)
        async with open_peer(daemons[index], topics) as peer:
            yield peer

    connected.__doc__ = f"A connection to daemons[{index}], per test."
    return pytest.fixture(connected, name=name)


a = peer_fixture(0, "a")
b = peer_fixture(1, "b")
c = peer_fixture(2, "c")


@pytest.fixture(scope="module")
def daemon(request: Any, tmp_path_factory: Any) -> Iterator[SipdProcess]:
    """T1 = 50 ms: a scripted peer that stops answering times out within seconds."""
    started = SipdProcess(module_base(request, tmp_path_factory),
                          {**daemon_settings(), "sip.t1": 50}, name="sipd")
    try:
        started.start()
        yield started
    finally:
        started.stop()


@pytest.fixture
async def peer(daemon: SipdProcess) -> AsyncIterator[DaemonPeer]:
    async with open_peer(daemon) as opened:
        yield opened


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[SipdProcess]]:
    """Two daemons with media workers; their logs are printed when the test ends."""
    with running(tmp_path, daemon_settings()) as started:
        try:
            yield started
        finally:
            for one in started:
                print(one.log()[-4000:])
