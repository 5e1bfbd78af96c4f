"""linphonec publishes its status at Kamailio (its proxy's `publish` on); sipd, watching it
there, sees it online. (linphonec 5 has no command that sets another status, and it does
not remove its publication when it quits: away and offline are not something it can be made
to publish here.)"""

from __future__ import annotations

import pytest

from tests.harness.process import SipdProcess
from tests.harness.waits import off_loop
from tests.peers.fixtures import PEER_USERS
from tests.peers.kamailio import Kamailio
from tests.peers.linphonec import Linphonec

from .rpc_peer import open_peer

pytestmark = pytest.mark.interop


class PublishingLinphonec(Linphonec):
    def _rc_text(self) -> str:
        return super()._rc_text().replace("publish=0", "publish=1")


@pytest.fixture(scope="module")
def kam(tmp_path_factory):
    with Kamailio(tmp_path_factory.mktemp("kamailio-presence"), users=dict(PEER_USERS),
                  tls=False, features={"presence"}) as kamailio:
        yield kamailio


@pytest.fixture
def sipd(tmp_path):
    daemon = SipdProcess(tmp_path, name="sipd").start()
    try:
        yield daemon
    finally:
        daemon.stop()


async def test_sipd_sees_linphonec_online(kam, sipd, tmp_path):
    alice = {"aor": kam.aor("alice"), "password": PEER_USERS["alice"],
             "registrar": kam.proxy_uri("udp").replace(";transport=udp", "")}
    async with open_peer(sipd, accounts=(alice,)) as peer:
        carol = PublishingLinphonec(tmp_path, kam.aor("carol"), PEER_USERS["carol"],
                                    proxy=kam.proxy_uri("udp"))
        carol.start()
        try:
            await off_loop(carol.wait_registered)
            carol_aor = kam.aor("carol")
            await peer.call("presence.subscribe", to=carol_aor)
            await peer.event("presence.subscription", to=carol_aor, state="active")
            online = await peer.event("presence.state", contact=carol_aor, basic="open",
                                      timeout=15)
            assert online["status"] == "open" and online["devices"]
            assert online["devices"][0]["contact"] == carol_aor
        finally:
            await off_loop(carol.stop)
