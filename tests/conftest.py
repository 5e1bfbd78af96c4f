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


# ---------------------------------------------------------------------------------------------
# Test kinds: `daemon`, `peer` and `pjsua2` markers, set automatically; `make unit` runs the
# tests that have none of them (-m "not daemon and not peer and not pjsua2").
#
# A test gets a marker when its function, or a fixture it uses, reaches one of STARTERS: the
# names a function refers to are followed through the helpers, fixtures and classes defined
# under tests/ (not into sipd). A test marked `interop` is a `peer` test. Explicit markers
# (`@pytest.mark.daemon`, `pytestmark = pytest.mark.peer`) are for what this cannot see.
#
# The markers are checked while the tests run: a test without a marker that starts a sipd
# daemon, a peer program or a media worker, or imports pjsua2, fails and says which marker it
# lacks. So `make unit` cannot quietly run a daemon test, and the full run keeps the markers
# honest. Only what this process starts is seen: a driver script that starts a daemon in a
# child of its own needs an explicit marker (tests/sip/test_rfc4475_daemon.py).

import builtins
import inspect
import os
import subprocess
import sys
import types
from collections.abc import Iterator, Sequence
from typing import Any

#: What starts a daemon, a peer or pjsua2: "module.qualname" of a class or function, or a
#: module name.
STARTERS = {
    "tests.harness.process.SipdProcess": "daemon",
    "tests.harness.process.running": "daemon",
    "tests.peers.kamailio.Kamailio": "peer",
    "tests.peers.baresip.Baresip": "peer",
    "tests.peers.linphonec.Linphonec": "peer",
    "tests.peers.sipp.Sipp": "peer",
    "tests.peers.dnsmasq.Dnsmasq": "peer",
    "tests.peers.coturn.Coturn": "peer",
    "sipd.media.process.WorkerProcess": "pjsua2",
    "sipd.media.supervisor.MediaSupervisor": "pjsua2",
    "sipd.media.supervisor.open_media_supervisor": "pjsua2",
    "pjsua2": "pjsua2",
    "sipd.media.engine": "pjsua2",
    "sipd.media.call_leg": "pjsua2",
    "sipd.media.worker": "pjsua2",
}

#: Programs the run-time check recognises (any word of the command line, by base name).
PEER_PROGRAMS = {"kamailio", "kamcmd", "baresip", "linphonec", "sipp", "dnsmasq", "turnserver",
                 "Xvfb", "x11vnc", "vncdo"}


def _code_names(code: types.CodeType) -> Iterator[str]:
    """Every global or attribute name a code object and the code nested in it refer to."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def _ours(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "tests"


class _Reach:
    """The test kinds a function reaches, memoised per function object."""

    def __init__(self) -> None:
        self.memo: dict[int, set[str]] = {}

    def function(self, func: Any) -> set[str]:
        func = inspect.unwrap(func)
        inner = getattr(getattr(func, "hypothesis", None), "inner_test", None)
        if inner is not None:
            func = inspect.unwrap(inner)
        code = getattr(func, "__code__", None)
        if code is None:
            return set()
        key = id(func)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = kinds = set()  # a cycle reaches nothing more
        namespace = getattr(func, "__globals__", {})
        names = set(_code_names(code))
        modules = [obj for obj in namespace.values() if isinstance(obj, types.ModuleType)]
        for name in names:
            if name in namespace:
                kinds |= self.object(namespace[name])
            elif not hasattr(builtins, name):  # module.attribute: `daemon.SipdProcess`
                for module in modules:
                    if hasattr(module, name):
                        kinds |= self.object(getattr(module, name))
        return kinds

    def object(self, obj: Any) -> set[str]:
        if isinstance(obj, types.ModuleType):
            kind = STARTERS.get(obj.__name__)
            return {kind} if kind else set()
        for klass in obj.__mro__ if isinstance(obj, type) else (obj,):  # a SipdProcess subclass
            qualified = f"{getattr(klass, '__module__', '')}.{getattr(klass, '__qualname__', '')}"
            if qualified in STARTERS:
                return {STARTERS[qualified]}
        if not _ours(obj):
            return set()
        if isinstance(obj, type):
            kinds: set[str] = set()
            for klass in obj.__mro__:
                if _ours(klass):
                    for member in vars(klass).values():
                        for func in (member, getattr(member, "__func__", None),
                                     getattr(member, "fget", None)):
                            if callable(func) and hasattr(inspect.unwrap(func), "__code__"):
                                kinds |= self.function(func)
            return kinds
        if callable(obj):
            return self.function(obj)
        return set()


def _fixture_functions(item: pytest.Item) -> Iterator[Any]:
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        for fixturedef in (info.name2fixturedefs.get(name, ()) if info else ()):
            yield fixturedef.func


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reach = _Reach()
    for item in items:
        kinds: set[str] = set()
        if item.get_closest_marker("interop"):
            kinds.add("peer")
        if isinstance(item, pytest.Function):
            kinds |= reach.function(item.function)
        for func in _fixture_functions(item):
            if _ours(func):
                kinds |= reach.function(func)
        for kind in sorted(kinds):
            if not item.get_closest_marker(kind):
                item.add_marker(kind)


_running: pytest.Item | None = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    global _running
    _running = item
    try:
        yield
    finally:
        _running = None


class UnmarkedTestKind(RuntimeError):
    pass


def _check(kind: str, what: str) -> None:
    item = _running
    if item is not None and item.get_closest_marker(kind) is None:
        raise UnmarkedTestKind(
            f"{item.nodeid} {what} but is not marked `{kind}`: mark it @pytest.mark.{kind}, or "
            f"teach STARTERS in tests/conftest.py what starts it (`make unit` would run it)")


def _command_kind(args: Any) -> str | None:
    words = [os.fsdecode(a) for a in ([args] if isinstance(args, (str, bytes)) else args)]
    if isinstance(args, (str, bytes)):
        words = words[0].split()
    names = [os.path.basename(w) for w in words]
    if PEER_PROGRAMS.intersection(names):
        return "peer"
    if "sipd.media.worker" in words:
        return "pjsua2"
    if "sipd" in names or "sipd.daemon" in words:
        return "daemon"
    return None


_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]


def _checked_execute_child(self: subprocess.Popen[Any], args: Sequence[Any] | str | bytes,
                           *rest: Any, **kwargs: Any) -> Any:
    kind = _command_kind(args)
    if kind is not None:
        _check(kind, f"runs {args!r}")
    return _execute_child(self, args, *rest, **kwargs)


class _Pjsua2Import:
    """A meta path finder that only looks: importing pjsua2 needs the `pjsua2` marker."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pjsua2":
            _check("pjsua2", "imports pjsua2")
        return None


def pytest_configure(config: pytest.Config) -> None:
    subprocess.Popen._execute_child = _checked_execute_child  # type: ignore[attr-defined]
    sys.meta_path.insert(0, _Pjsua2Import())
