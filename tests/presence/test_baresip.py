"""baresip's presence module and sipd: baresip watches sipd's local account directly (no
server) and sees its status change; baresip publishes at Kamailio and sipd, watching it
there, sees it go offline and online.

baresip 1.0's presence module subscribes to the contacts marked `;presence=p2p` (its status
of each shows in its `contacts` listing), publishes when its account has a `pubint` (only for
accounts that exist when the module loads: it is loaded with `insmod` after `uanew`), and
changes its status with the stdio UI's keys `[` (online) and `]` (offline). (Its notifier
ends a direct subscription to it at once, reason deactivated, and answers the next one 404:
sipd watching baresip directly is not something baresip 1.0 keeps up.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.harness.process import SipdProcess
from tests.harness.waits import off_loop
from tests.peers.baresip import Baresip
from tests.peers.fixtures import PEER_USERS
from tests.peers.kamailio import Kamailio

from .rpc_peer import open_peer

pytestmark = pytest.mark.interop


class PresenceBaresip(Baresip):
    """baresip with its presence module, watching `watched` (p2p), publishing its own
    status every `pubint` seconds when it has a server (0: never)."""

    def __init__(self, tmpdir: Path, account: str, watched: list[str], *, pubint: int = 0,
                 **kwargs) -> None:
        kwargs.setdefault("register", False)
        super().__init__(tmpdir, account, record=False, **kwargs)
        self.watched = watched
        self.pubint = pubint

    def account_line(self) -> str:
        return super().account_line().replace("pubint=0", f"pubint={self.pubint}")

    def _write_config(self) -> None:
        super()._write_config()
        if not self.pubint:  # a publisher needs its account first: loaded after (insmod)
            with (self.config_dir / "config").open("a") as config:
                config.write("module_app presence.so\n")
        (self.config_dir / "contacts").write_text(
            "".join(f'"watched" <{uri}>;presence=p2p\n' for uri in self.watched))

    def contacts_text(self) -> str:
        return str(self.command("contacts").get("data", ""))

    def wait_contacts(self, predicate, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.contacts_text()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"baresip's contacts never matched:\n{text}\n"
                                     f"{self.log_text()[-3000:]}")
            time.sleep(0.2)


@pytest.fixture
def sipd(tmp_path):
    daemon = SipdProcess(tmp_path, name="sipd").start()
    try:
        yield daemon
    finally:
        daemon.stop()


async def test_baresip_watches_sipd_directly(sipd, tmp_path):
    async with open_peer(sipd) as peer:
        bob = PresenceBaresip(tmp_path, "sip:bob@127.0.0.1", [peer.uri()])
        bob.start()
        try:
            # baresip subscribes to sipd, which holds the new watcher pending
            pending = await peer.event("presence.watcher", status="pending", timeout=15)
            watcher = pending["watcher"]
            assert watcher == "sip:bob@127.0.0.1"
            assert "Online" not in await off_loop(bob.contacts_text)
            await peer.call("presence.authorize", watcher=watcher, allow=True)
            await peer.call("presence.publish", status="open", note="here")
            await off_loop(bob.wait_contacts, lambda text: "Online" in text)
            await peer.call("presence.publish", status="closed")
            await off_loop(bob.wait_contacts, lambda text: "Offline" in text)
            await peer.call("presence.publish", status="open", activities=["busy"])
            await off_loop(bob.wait_contacts, lambda text: "Busy" in text)
        finally:
            bob.stop()


@pytest.fixture(scope="module")
def kam(tmp_path_factory):
    with Kamailio(tmp_path_factory.mktemp("kamailio-presence"), users=dict(PEER_USERS),
                  tls=False, features={"presence"}) as kamailio:
        yield kamailio


async def test_sipd_sees_baresip_publish_at_kamailio(kam, sipd, tmp_path):
    """baresip publishes its status at Kamailio (PUBLISH, refreshed every pubint seconds);
    sipd's alice watches bob there and sees him online, offline, online."""
    alice = {"aor": kam.aor("alice"), "password": PEER_USERS["alice"],
             "registrar": kam.proxy_uri("udp").replace(";transport=udp", "")}
    async with open_peer(sipd, accounts=(alice,)) as peer:
        bob = PresenceBaresip(tmp_path, kam.aor("bob"), [], pubint=60,
                              password=PEER_USERS["bob"], register=True,
                              outbound=kam.proxy_uri("udp"))
        bob.start()
        try:
            await off_loop(bob.wait_event, "REGISTER_OK")
            await off_loop(bob.command, "insmod", "presence")
            bob_aor = kam.aor("bob")
            await peer.call("presence.subscribe", to=bob_aor)
            # its first document (its status before any key is pressed; baresip 1.0 says
            # "unkown" there, which is no basic status at all)
            first = await peer.event("presence.state", contact=bob_aor, timeout=15)
            assert first["devices"][0]["contact"] == bob_aor
            bob.process.write("]")  # the stdio UI's key for "offline"
            offline = await peer.event("presence.state", contact=bob_aor, basic="closed")
            assert offline["status"] == "closed"
            bob.process.write("[")  # online
            online = await peer.event("presence.state", contact=bob_aor, basic="open")
            assert online["status"] == "open"
            await peer.call("presence.unsubscribe", to=bob_aor)
            await peer.event("presence.subscription", to=bob_aor, state="terminated")
        finally:
            bob.stop()
