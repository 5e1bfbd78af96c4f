"""The XCAP client and document manager against Kamailio's xcap_server (HTTP digest auth)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from sipd.xcap.commonpolicy import parse_ruleset
from sipd.xcap.contacts import Contact
from sipd.xcap.errors import XcapHTTPError, XcapNotFoundError, XcapPreconditionFailed
from sipd.xcap.pidfmanip import parse_offline_status
from sipd.xcap.presrules import effective_action
from sipd.xcap.resourcelists import parse_resource_lists
from sipd.xcap.rlsservices import parse_rls_services
from sipd.xcap.trio.client import NOT_MODIFIED, XcapClient, XcapResponse
from sipd.xcap.uri import XcapUri
from tests.peers.fixtures import PEER_USERS
from tests.xcap.conftest import running_manager, xcap_root, xui

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]


def _uris(contacts: list[Contact]) -> set[str]:
    return {contact.uri for contact in contacts}


async def test_documents_round_trip(xcap_kamailio, tmp_path) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    service = f"sip:alice-buddies@{kam.domain}"
    events: list = []
    async with running_manager(root, me, tmp_path / "a", events=events,
                               presence_service_uri=service) as manager:
        assert manager.online and manager.contacts() == []
        bob = await manager.add_contact(f"sip:bob@{kam.domain}", name="Bob Example",
                                        groups=["Friends", "Work"], presence=True)
        assert bob == Contact(f"sip:bob@{kam.domain}", "Bob Example", ("Friends", "Work"), True)
        await manager.add_contact(f"sip:carol@{kam.domain}")
        await manager.update_contact(f"sip:carol@{kam.domain}", name="Carol", groups=["Work"])
        await manager.set_policy(f"sip:bob@{kam.domain}", "allow")
        await manager.set_policy("spam.example", "block", domain=True)
        await manager.set_policy(f"sip:eve@{kam.domain}", "polite-block")
        await manager.set_offline_status("closed", "Gone fishing")
        assert manager.pending == 0
        assert ("xcap.journal", {"pending": 0}) in events

    # What the server holds, read with a bare client (another device).
    async with XcapClient(root, username="alice", password=PEER_USERS["alice"]) as client:
        lists = await client.get(XcapUri(root, "resource-lists", "index", me))
        assert isinstance(lists, XcapResponse)
        assert lists.content_type == "application/resource-lists+xml"
        parsed = parse_resource_lists(lists.content)
        assert {item.display_name or item.name for item in parsed.lists} >= {"Friends", "Work"}
        rules = parse_ruleset((await client.get(XcapUri(root, "pres-rules", "index", me))).content)
        assert effective_action(rules, f"sip:bob@{kam.domain}") == "allow"
        assert effective_action(rules, "sip:x@spam.example") == "block"
        assert effective_action(rules, f"sip:eve@{kam.domain}") == "polite-block"
        rls = parse_rls_services(
            (await client.get(XcapUri(root, "rls-services", "index", me))).content)
        assert rls.service(service) is not None
        assert rls.service(service).packages == ("presence",)
        assert "oma_buddylist" in rls.service(service).resource_list
        pidf = await client.get(XcapUri(root, "pidf-manipulation", "index", me))
        assert parse_offline_status(pidf.content).note == "Gone fishing"
        # an element by node selector, and a 304 for an unchanged document
        entry = await client.get(XcapUri(root, "resource-lists", "index", me).with_node(
            f'resource-lists/list[@name="oma_buddylist"]/entry[@uri="sip:bob@{kam.domain}"]'))
        assert b"Bob Example" in entry.content
        assert await client.get(XcapUri(root, "resource-lists", "index", me),
                                etag=lists.etag) is NOT_MODIFIED
        # Kamailio keeps users to their own documents
        with pytest.raises(XcapHTTPError) as refused:
            await client.get(XcapUri(root, "resource-lists", "index", xui(kam, "bob")))
        assert refused.value.status == 403

    # A second device with its own cache sees the same contacts; the first, restarted,
    # revalidates its cache with 304s.
    async with running_manager(root, me, tmp_path / "b") as other:
        assert {(c.uri, c.name, c.groups, c.presence) for c in other.contacts()} == {
            (f"sip:bob@{kam.domain}", "Bob Example", ("Friends", "Work"), True),
            (f"sip:carol@{kam.domain}", "Carol", ("Work",), False),
        }
        await other.remove_contact(f"sip:carol@{kam.domain}")
    events.clear()
    async with running_manager(root, me, tmp_path / "a", events=events) as manager:
        assert _uris(manager.contacts()) == {f"sip:bob@{kam.domain}"}
        changed = [data for name, data in events if name == "xcap.changed"]
        assert [(c["auid"], c["document"]) for c in changed] == [("resource-lists", "index")]


async def test_conditional_writes(xcap_kamailio) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    uri = XcapUri(root, "resource-lists", "index", me)
    body = b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>'
    async with XcapClient(root, username="alice", password=PEER_USERS["alice"]) as client:
        with pytest.raises(XcapNotFoundError):
            await client.get(uri)
        etag = await client.put(uri, body, "application/resource-lists+xml", if_none_match="*")
        assert etag
        with pytest.raises(XcapPreconditionFailed):  # it exists now
            await client.put(uri, body, "application/resource-lists+xml", if_none_match="*")
        with pytest.raises(XcapPreconditionFailed):
            await client.put(uri, body, "application/resource-lists+xml", if_match="stale")
        etag2 = await client.put(uri, body, "application/resource-lists+xml", if_match=etag)
        assert etag2 != etag
        with pytest.raises(XcapPreconditionFailed):
            await client.delete(uri, if_match=etag)
        await client.delete(uri, if_match=etag2)
        with pytest.raises(XcapNotFoundError):
            await client.get(uri)
    async with XcapClient(root, username="alice", password="wrong", retries=0) as client:
        with pytest.raises(XcapHTTPError) as refused:
            await client.get(uri)
        assert refused.value.status == 401


async def test_two_devices_edit_the_same_list_at_once(xcap_kamailio, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sipd.xcap.trio.manager")
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    async with running_manager(root, me, tmp_path / "one") as one, \
            running_manager(root, me, tmp_path / "two") as two:
        await one.add_contact(f"sip:bob@{kam.domain}", groups=["Friends"])
        # `two` read the document before that: its copy is stale, its write gets 412 and is
        # replayed on a fresh copy.
        await two.add_contact(f"sip:carol@{kam.domain}", groups=["Friends"])
        async with trio.open_nursery() as nursery:
            for index in range(4):
                nursery.start_soon(one.add_contact, f"sip:one{index}@{kam.domain}")
                nursery.start_soon(two.add_contact, f"sip:two{index}@{kam.domain}")
        await one.refresh()
        await two.refresh()
        expected = ({f"sip:bob@{kam.domain}", f"sip:carol@{kam.domain}"}
                    | {f"sip:one{i}@{kam.domain}" for i in range(4)}
                    | {f"sip:two{i}@{kam.domain}" for i in range(4)})
        assert _uris(one.contacts()) == expected
        assert _uris(two.contacts()) == expected
        assert one.pending == two.pending == 0
    replays = [r for r in caplog.records if "reading it again to replay" in r.getMessage()]
    assert replays, "no write was refused with 412 and replayed"


async def test_edits_made_offline_survive_kill_and_land(kamailio_factory, tmp_path) -> None:
    kam = kamailio_factory(tls=False, features={"xcap"})
    root, me = xcap_root(kam), xui(kam)
    state = tmp_path / "state"
    async with running_manager(root, me, state) as manager:
        await manager.add_contact(f"sip:bob@{kam.domain}")
    kam.stop()

    # A sipd-like process adds three contacts while the server is down, then is killed -9.
    wanted = [f"sip:user{i}@{kam.domain}" for i in range(3)]
    child = subprocess.Popen(  # noqa: ASYNC220 - started here, read in a thread below
        [sys.executable, "-m", "tests.xcap.offline_editor", root, me, str(state), *wanted],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        with trio.fail_after(30):
            line = await trio.to_thread.run_sync(child.stdout.readline)
        assert line.strip() == "pending 3", line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    kam.start()  # an empty server again (its database lived in the run directory)
    events: list = []
    async with running_manager(root, me, state, events=events) as manager:
        assert manager.pending == 0
        assert _uris(manager.contacts()) == set(wanted)
    async with running_manager(root, me, tmp_path / "fresh") as other:
        assert _uris(other.contacts()) == set(wanted)
    assert ("xcap.journal", {"pending": 3}) in events
    assert events[-1] == ("xcap.journal", {"pending": 0})


async def test_raw_access_to_elements_and_documents(xcap_kamailio, tmp_path) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    async with running_manager(root, me, tmp_path) as manager:
        await manager.add_contact(f"sip:bob@{kam.domain}", groups=["Friends"])
        group = 'resource-lists/list[@name="Friends"]'
        # an element of its own, written without an ETag: conditional on the current one
        element = manager.raw_uri("resource-lists", node=f'{group}/entry[@uri="sip:new@x"]')
        await manager.put_raw(element, b'<entry uri="sip:new@x"><display-name>New'
                                       b"</display-name></entry>")
        assert {c.uri for c in manager.contacts()} == {f"sip:bob@{kam.domain}", "sip:new@x"}
        got = await manager.get_raw(element)
        assert b"New" in got.content
        with pytest.raises(XcapPreconditionFailed):
            await manager.put_raw(element, b'<entry uri="sip:new@x"/>', etag="stale")
        await manager.delete_raw(element)
        assert {c.uri for c in manager.contacts()} == {f"sip:bob@{kam.domain}"}
        with pytest.raises(XcapNotFoundError):
            await manager.get_raw(manager.raw_uri("resource-lists", "other"))
        # a whole document of another application usage
        doc = manager.raw_uri("pidf-manipulation")
        etag = await manager.put_raw(doc, b'<presence xmlns="urn:ietf:params:xml:ns:pidf" '
                                          b'entity="' + me.encode() + b'"/>')
        assert (await manager.get_raw(doc)).etag == etag
        await manager.delete_raw(doc, etag=etag)
