"""Changes made by another device reach a running sipd through its xcap-diff subscription
(RFC 5875), with Kamailio as the notifier.

Kamailio 5.6 serves the xcap-diff event package (presence_xml adds it to the presence server,
unless disable_xcapdiff) but its xcap_server writes no xcap-diff document of its own: the
package's state is what is PUBLISHed for it. So the "other device" here does what a server
side hook would: a PUT of alice's contacts straight to xcap_server, then an RFC 5874 document
PUBLISHed as alice (tests/presence/udp_client.py), which Kamailio NOTIFYs to sipd's
subscription."""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio

from sipctl.client import connect
from sipd.presence.events import PublicationState
from sipd.presence.publisher import Publisher, PublishTarget
from sipd.sip.header_values import parse_address
from sipd.xcap.operations import ContactSet
from sipd.xcap.trio.client import XcapClient, XcapResponse
from sipd.xcap.uri import XcapUri
from sipd.xcap.usages import MIME_DIFF
from sipd.xcap.xmldoc import parse_document, serialize
from tests.harness.process import SipdProcess
from tests.peers.fixtures import PEER_USERS
from tests.peers.kamailio import Kamailio
from tests.presence.udp_client import UdpClient
from tests.xcap.conftest import xcap_root, xui

pytestmark = pytest.mark.interop


@pytest.fixture
def kam(kamailio_factory: Any) -> Kamailio:
    return kamailio_factory(tls=False, features={"presence", "xcap"})


def settings(kam: Kamailio) -> dict[str, Any]:
    return {
        "accounts.alice.aor": kam.aor("alice"),
        "accounts.alice.password": PEER_USERS["alice"],
        "accounts.alice.registrar": kam.proxy_uri("udp").replace(";transport=udp", ""),
        "accounts.alice.xcap.root": xcap_root(kam),
        "xcap.retries": 1,
        "xcap.timeout": 5,
    }


async def put_contact(kam: Kamailio, uri: str, name: str) -> str:
    """Another device adds a contact: GET, edit, PUT with If-Match; the new ETag."""
    root, me = xcap_root(kam), xui(kam)
    document = XcapUri(root, "resource-lists", "index", me)
    async with XcapClient(root, username="alice", password=PEER_USERS["alice"]) as client:
        current = await client.get(document)
        assert isinstance(current, XcapResponse)
        edited = ContactSet("resource-lists", "index", uri=uri, name=name).apply(
            parse_document(current.content))
        etag = await client.put(document, serialize(edited), "application/resource-lists+xml",
                                if_match=current.etag)
    assert etag is not None
    return etag


def xcap_diff(kam: Kamailio, etag: str, previous: str | None = None) -> bytes:
    before = f' previous-etag="{previous}"' if previous else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" '
            f'xcap-root="{xcap_root(kam)}/">'
            f'<document sel="resource-lists/users/{xui(kam)}/index"{before} new-etag="{etag}"/>'
            f"</xcap-diff>").encode()


class DiffPublisher:
    """Alice's "server side hook": PUBLISHes xcap-diff documents to Kamailio."""

    def __init__(self, kam: Kamailio) -> None:
        self.client = UdpClient("alice", PEER_USERS["alice"], ("127.0.0.1", kam.udp_port))
        me = parse_address(f"<{kam.aor('alice')}>")
        self.publisher = Publisher(PublishTarget(me.uri, from_=me), event="xcap-diff",
                                   content_type=MIME_DIFF, expires=600)
        self.count = 0

    def publish(self, body: bytes) -> None:
        pub = self.publisher
        self.count += 1
        wanted = self.count
        self.client.carry_out(pub, pub.publish(body, time.monotonic()))
        self.client.pump(lambda: pub.state is PublicationState.PUBLISHED
                         and sum(r.status == 200 for r in self.client.responses) >= wanted,
                         what="the PUBLISH's 200")

    def close(self) -> None:
        self.client.close()


async def test_another_devices_change_reaches_sipd_as_xcap_changed(kam, tmp_path) -> None:
    bob, carol = f"sip:bob@{kam.domain}", f"sip:carol@{kam.domain}"
    daemon = SipdProcess(tmp_path, settings(kam)).start()
    hook = DiffPublisher(kam)
    try:
        async with connect(daemon.endpoint) as rpc:
            await rpc.call("events.subscribe", {"topics": ["contacts", "xcap"]})
            await rpc.call("contacts.add", {"account": "alice", "uri": bob, "name": "Bob"})

            # another device adds carol; the server's notifier says resource-lists changed
            etag = await put_contact(kam, carol, "Carol")
            await trio.to_thread.run_sync(hook.publish, xcap_diff(kam, etag))
            changed = await rpc.next_event(
                "xcap.changed", timeout=30,
                where=lambda e: e["data"]["auid"] == "resource-lists")
            assert changed["topic"] == "xcap"
            assert changed["data"] == {"account": "alice", "auid": "resource-lists",
                                       "document": "index", "etag": etag}
            added = await rpc.next_event("contact.added",
                                         where=lambda e: e["data"]["contact"]["uri"] == carol)
            assert added["data"]["contact"]["name"] == "Carol"
            listing = await rpc.call("contacts.list", {"account": "alice"})
            assert {c["uri"] for c in listing["contacts"]} == {bob, carol}

            # a hostile document from the notifier is refused with the reason; the
            # subscription lives on and the next change still arrives
            await trio.to_thread.run_sync(hook.publish, (
                b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
                b'<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" xcap-root="x">&a;'
                b"</xcap-diff>"))
            refused = await rpc.next_event("xcap.refused", timeout=30)
            assert refused["data"]["account"] == "alice"
            assert "xcap-diff NOTIFY refused" in refused["data"]["error"]
            dave = f"sip:dave@{kam.domain}"
            newer = await put_contact(kam, dave, "Dave")
            await trio.to_thread.run_sync(hook.publish, xcap_diff(kam, newer, etag))
            changed = await rpc.next_event("xcap.changed", timeout=30)
            assert changed["data"]["etag"] == newer
            listing = await rpc.call("contacts.list", {"account": "alice"})
            assert {c["uri"] for c in listing["contacts"]} == {bob, carol, dave}

            # our own edits come back in NOTIFYs too: same ETag as ours, nothing read again
            await rpc.call("contacts.remove", {"account": "alice", "uri": dave})
            raw = await rpc.call("xcap.get", {"account": "alice", "auid": "resource-lists"})
            await trio.to_thread.run_sync(hook.publish, xcap_diff(kam, raw["etag"], newer))
            with trio.move_on_after(3):
                extra = await rpc.next_event("xcap.changed", timeout=3)
                raise AssertionError(f"our own change was read again: {extra}")
    finally:
        hook.close()
        daemon.stop()
    assert "xcap-diff subscription active" in daemon.log()


async def test_an_account_that_gains_a_sip_server_starts_following(kam, tmp_path) -> None:
    """No registrar, no proxy: nobody to subscribe at. Once the account has a registrar
    (accounts.update, XCAP settings untouched) the subscription starts."""
    carol = f"sip:carol@{kam.domain}"
    config = settings(kam)
    registrar = config.pop("accounts.alice.registrar")
    config["accounts.alice.register"] = False
    daemon = SipdProcess(tmp_path, config).start()
    hook = DiffPublisher(kam)
    try:
        async with connect(daemon.endpoint) as rpc:
            await rpc.call("events.subscribe", {"topics": ["xcap"]})
            bob = f"sip:bob@{kam.domain}"
            added = await rpc.call("contacts.add", {"account": "alice", "uri": bob})
            assert added["store"] == "xcap" and added["pending"] == 0
            assert "xcap-diff" not in daemon.log()

            await rpc.call("accounts.update", {"id": "alice", "changes": {
                "registrar": registrar, "register": True}})
            with trio.fail_after(30):
                while "xcap-diff subscription active" not in daemon.log():
                    await trio.sleep(0.2)
            etag = await put_contact(kam, carol, "Carol")
            await trio.to_thread.run_sync(hook.publish, xcap_diff(kam, etag))
            changed = await rpc.next_event("xcap.changed", timeout=30)
            assert changed["data"]["etag"] == etag
            listing = await rpc.call("contacts.list", {"account": "alice"})
            assert {c["uri"] for c in listing["contacts"]} == {bob, carol}

            # Another change of the account: the subscription is replaced, the old one ended
            # at the server (unsubscribed), not left to expire.
            await rpc.call("accounts.update", {"id": "alice", "changes": {
                "display_name": "Alice"}})
            with trio.fail_after(30):
                while daemon.log().count("xcap-diff subscription active") < 2 \
                        or "xcap-diff subscription ended (unsubscribed)" not in daemon.log():
                    await trio.sleep(0.2)
    finally:
        hook.close()
        daemon.stop()
