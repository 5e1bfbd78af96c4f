"""pytest fixtures for the real peers (registered in tests/conftest.py via pytest_plugins).

    def test_x(kamailio, baresip_factory, linphonec_factory):
        bob = baresip_factory("bob", outbound=kamailio.proxy_uri("tcp"))   # user of PEER_USERS
        carol = linphonec_factory("carol")                                  # registers over UDP
        ...

- `kamailio`: a started Kamailio (TLS on) with the users of PEER_USERS; `kamailio_factory(**kw)`
  starts more or differently configured ones (e.g. features={"presence"}).
- `baresip_factory(user, **kw)` / `linphonec_factory(user, **kw)`: started user agents for
  user@kamailio.domain with the password of PEER_USERS, registered through `kamailio` unless
  told otherwise (register=False, outbound=/proxy=, or account=/password= explicitly).
- `sipp`: a Sipp runner writing under the test's tmp dir.
- `dnsmasq_factory(naptr=, srv=, a=)`, `coturn`.

Everything a fixture started is stopped when the test ends, in reverse order; a test that
fails gets the tail of every peer's log in its report; a peer process (tests/peers/proc.py)
still running after the test, even one the test started itself, is stopped and is an error of
the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import proc
from .baresip import Baresip
from .coturn import Coturn
from .dnsmasq import Dnsmasq
from .kamailio import Kamailio
from .linphonec import Linphonec
from .sipp import Sipp

#: Users every `kamailio` fixture knows: name -> password.
PEER_USERS = {
    "alice": "alice-secret",
    "bob": "bob-secret",
    "carol": "carol-secret",
    "dave": "dave-secret",
}


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"peers_report_{report.when}", report)


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"peers_report_{when}", None), "failed", False)
               for when in ("setup", "call"))


class PeerSet:
    """The peers one test started; stops them in reverse order and reports their logs."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.peers: list[Any] = []
        self.first_process = len(proc.STARTED)

    def add(self, peer: Any) -> Any:
        self.peers.append(peer)
        return peer

    def close(self) -> None:
        errors = []
        for peer in reversed(self.peers):
            try:
                peer.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others, then report
                errors.append(f"stopping {type(peer).__name__}: {exc!r}")
        started = proc.STARTED[self.first_process:]
        for process in started:
            if process in proc.RUNNING:  # started by the test itself and not stopped
                process.stop()
                errors.append(f"{process.name} was still running after the test; stopped it")
        left = [p for p in started if not p.group_gone()]
        for process in left:
            errors.append(f"{process.name} (pid {process.pid}) left processes behind")
            process.stop()
        if _failed(self.request) or errors:
            for process in started:
                print(process.log_tail(6000))
        if errors:
            pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture(autouse=True)
def peers(request: pytest.FixtureRequest) -> Iterator[PeerSet]:
    """Autouse, so that a peer process a test started by hand is never left running."""
    peer_set = PeerSet(request)
    try:
        yield peer_set
    finally:
        peer_set.close()


@pytest.fixture
def kamailio_factory(peers: PeerSet, tmp_path: Path) -> Callable[..., Kamailio]:
    def start(**kwargs: Any) -> Kamailio:
        kwargs.setdefault("users", dict(PEER_USERS))
        kamailio = Kamailio(tmp_path, **kwargs)
        peers.add(kamailio)
        return kamailio.start()

    return start


@pytest.fixture
def kamailio(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(tls=True)


@pytest.fixture
def baresip_factory(peers: PeerSet, tmp_path: Path,
                    request: pytest.FixtureRequest) -> Callable[..., Baresip]:
    def start(user: str | None = None, **kwargs: Any) -> Baresip:
        kamailio = (_kamailio_for(request, kwargs) if user is not None
                    else kwargs.pop("kamailio", None))
        if user is not None:
            domain = kamailio.domain if kamailio else "example.test"
            kwargs.setdefault("account", f"sip:{user}@{domain}")
            kwargs.setdefault("password", PEER_USERS.get(user))
            if kamailio is not None:
                kwargs.setdefault("outbound", kamailio.proxy_uri("udp"))
                if kamailio.ca_cert_path:
                    kwargs.setdefault("ca_file", kamailio.ca_cert_path)
        baresip = Baresip(tmp_path, **kwargs)
        peers.add(baresip)
        return baresip.start()

    return start


@pytest.fixture
def linphonec_factory(peers: PeerSet, tmp_path: Path,
                      request: pytest.FixtureRequest) -> Callable[..., Linphonec]:
    def start(user: str | None = None, **kwargs: Any) -> Linphonec:
        kamailio = (_kamailio_for(request, kwargs) if user is not None
                    else kwargs.pop("kamailio", None))
        if user is not None:
            domain = kamailio.domain if kamailio else "example.test"
            kwargs.setdefault("account", f"sip:{user}@{domain}")
            kwargs.setdefault("password", PEER_USERS.get(user))
            if kamailio is not None:
                kwargs.setdefault("proxy", kamailio.proxy_uri("udp"))
        linphonec = Linphonec(tmp_path, **kwargs)
        peers.add(linphonec)
        return linphonec.start()

    return start


def _kamailio_for(request: pytest.FixtureRequest, kwargs: dict[str, Any]) -> Kamailio | None:
    """The Kamailio a user agent registers with: kwargs["kamailio"], else the fixture."""
    if "kamailio" in kwargs:
        return kwargs.pop("kamailio")
    if kwargs.get("register") is False:
        return None
    return request.getfixturevalue("kamailio")


@pytest.fixture
def sipp(tmp_path: Path, peers: PeerSet) -> Sipp:
    return Sipp(tmp_path)


@pytest.fixture
def dnsmasq_factory(peers: PeerSet, tmp_path: Path) -> Callable[..., Dnsmasq]:
    def start(**kwargs: Any) -> Dnsmasq:
        dnsmasq = Dnsmasq(tmp_path, **kwargs)
        peers.add(dnsmasq)
        return dnsmasq.start()

    return start


@pytest.fixture
def coturn(peers: PeerSet, tmp_path: Path) -> Coturn:
    turn = Coturn(tmp_path)
    peers.add(turn)
    return turn.start()
