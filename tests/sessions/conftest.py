"""The daemons the call tests share: `daemons` starts them once per module (start-up is much of
what these tests take) and `a`, `b`, `c` are a fresh RPC connection to each, per test.

A module names its daemons in DAEMON_NAMES (default two: a and b); each gets the settings of
`tests.sessions.test_calls.daemon_settings`. Modules that talk to scripted peers (sipp) use
`daemon`, one daemon with a short T1, and `peer`, a connection to it."""

from __future__ import annotations

import pytest

from tests.daemon import SipdProcess, running
from tests.sessions.test_calls import daemon_settings, open_peer


@pytest.fixture(scope="module")
def daemons(request, tmp_path_factory):
    names = getattr(request.module, "DAEMON_NAMES", ("a", "b"))
    base = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with running(base, daemon_settings(), names=names) as started:
        yield started


@pytest.fixture
async def a(daemons):
    async with open_peer(daemons[0]) as peer:
        yield peer


@pytest.fixture
async def b(daemons):
    async with open_peer(daemons[1]) as peer:
        yield peer


@pytest.fixture
async def c(daemons):
    async with open_peer(daemons[2]) as peer:
        yield peer


@pytest.fixture(scope="module")
def daemon(request, tmp_path_factory):
    """T1 = 50 ms: a scripted peer that stops answering times out within seconds."""
    base = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    started = SipdProcess(base, {**daemon_settings(), "sip.t1": 50}, name="sipd")
    try:
        started.start()
        yield started
    finally:
        started.stop()


@pytest.fixture
async def peer(daemon):
    async with open_peer(daemon) as opened:
        yield opened
