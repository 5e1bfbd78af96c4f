"""Contacts and presence policies through a real sipd daemon's RPC, on Kamailio's xcap_server
(and, for the 409 that Kamailio never sends, on the tiny server of tests/xcap/httpserver.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from sipctl.client import RpcCallError, connect
from sipd.xcap.commonpolicy import parse_ruleset
from sipd.xcap.contacts import contacts_from
from sipd.xcap.presrules import effective_action
from sipd.xcap.resourcelists import parse_resource_lists
from sipd.xcap.rlsservices import parse_rls_services
from sipd.xcap.trio.client import XcapClient, XcapResponse
from sipd.xcap.uri import XcapUri
from tests.harness.process import SipdProcess, running
from tests.peers.fixtures import PEER_USERS
from tests.xcap.conftest import running_manager, xcap_root, xui
from tests.xcap.httpserver import Reply, Request, serve_http

pytestmark = pytest.mark.interop

REMOTE_ERROR = -32006
NOT_FOUND = -32002
INVALID_PARAMS = -32602


def alice_settings(domain: str, root: str | None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "accounts.alice.aor": f"sip:alice@{domain}",
        "accounts.alice.password": PEER_USERS["alice"],
        "accounts.alice.register": False,
        "xcap.retries": 1,
        "xcap.timeout": 5,
    }
    if root is not None:
        settings["accounts.alice.xcap.root"] = root
    return settings


async def server_contacts(root: str, me: str) -> dict[str, Any]:
    """The contacts in alice's resource-lists on the server, read as another client would."""
    async with XcapClient(root, username="alice", password=PEER_USERS["alice"]) as client:
        got = await client.get(XcapUri(root, "resource-lists", "index", me))
    assert isinstance(got, XcapResponse)
    return {c.uri: c for c in contacts_from(parse_resource_lists(got.content))}


async def server_rules(root: str, me: str) -> Any:
    async with XcapClient(root, username="alice", password=PEER_USERS["alice"]) as client:
        got = await client.get(XcapUri(root, "pres-rules", "index", me))
    assert isinstance(got, XcapResponse)
    return parse_ruleset(got.content)


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     timeout: float = 30) -> None:
    with trio.move_on_after(timeout):
        while not await check():
            await trio.sleep(0.2)
        return
    raise AssertionError(f"not within {timeout} s: {what}")


def uris(listing: dict[str, Any]) -> set[str]:
    return {c["uri"] for c in listing["contacts"]}


async def test_contacts_round_trip_on_the_server(xcap_kamailio, tmp_path) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    bob, carol = f"sip:bob@{kam.domain}", f"sip:carol@{kam.domain}"
    service = f"sip:alice-buddies@{kam.domain}"
    settings = alice_settings(kam.domain, root)
    settings["accounts.alice.xcap.presence_service_uri"] = service
    daemon = SipdProcess(tmp_path, settings).start()
    try:
        async with connect(daemon.endpoint) as rpc:
            await rpc.call("events.subscribe", {"topics": ["contacts", "xcap"]})
            added = await rpc.call("contacts.add", {"account": "alice", "uri": bob,
                                                    "name": "Bob", "groups": ["Friends"],
                                                    "presence": True})
            assert added["store"] == "xcap" and added["pending"] == 0
            assert added["contact"] == {"uri": bob, "name": "Bob", "groups": ["Friends"],
                                        "presence": True}
            event = await rpc.next_event("contact.added")
            assert event["topic"] == "contacts" and event["data"]["account"] == "alice"
            assert event["data"]["contact"]["uri"] == bob
            await rpc.call("contacts.add", {"account": "alice", "uri": carol})
            updated = await rpc.call("contacts.update", {"account": "alice", "uri": bob,
                                                         "name": "Robert", "groups": ["Work"]})
            assert updated["contact"]["groups"] == ["Work"] and updated["contact"]["presence"]
            assert (await rpc.next_event("contact.updated"))["data"]["contact"]["name"] == \
                "Robert"
            listing = await rpc.call("contacts.list", {"account": "alice"})
            assert uris(listing) == {bob, carol}
            assert listing["accounts"] == [{"account": "alice", "store": "xcap",
                                            "online": True, "pending": 0}]
            groups = await rpc.call("contacts.groups", {"account": "alice"})
            assert {"account": "alice", "name": "Work", "contacts": 1} in groups["groups"]

            # what the server holds, read as another client would
            on_server = await server_contacts(root, me)
            assert on_server[bob].name == "Robert" and on_server[bob].groups == ("Work",)
            assert on_server[bob].presence and carol in on_server
            # the contacts with presence are the account's presence list service
            async with XcapClient(root, username="alice",
                                  password=PEER_USERS["alice"]) as client:
                rls = await client.get(XcapUri(root, "rls-services", "index", me))
            assert isinstance(rls, XcapResponse)
            listed = parse_rls_services(rls.content).service(service)
            assert listed is not None and "oma_buddylist" in listed.resource_list

            # presence policies are pres-rules on the server
            await rpc.call("presence.authorize", {"account": "alice", "watcher": bob,
                                                  "action": "allow"})
            await rpc.call("presence.authorize", {"account": "alice", "domain": "spam.example",
                                                  "action": "block"})
            rules = await server_rules(root, me)
            assert effective_action(rules, bob) == "allow"
            assert effective_action(rules, "sip:x@spam.example") == "block"
            policies = (await rpc.call("presence.policies", {"account": "alice"}))["policies"]
            assert {"target": "spam.example", "kind": "domain", "action": "block"} in policies

            # raw access
            raw = await rpc.call("xcap.get", {"account": "alice", "auid": "resource-lists"})
            assert "Robert" in raw["content"] and raw["etag"]
            assert raw["content_type"] == "application/resource-lists+xml"
            element = await rpc.call("xcap.get", {
                "account": "alice", "auid": "resource-lists",
                "node": f'resource-lists/list[@name="oma_buddylist"]/entry[@uri="{bob}"]'})
            assert "Robert" in element["content"]

            removed = await rpc.call("contacts.remove", {"account": "alice", "uri": bob})
            assert removed["uri"] == bob
            assert (await rpc.next_event("contact.removed"))["data"]["contact"]["uri"] == bob
            assert bob not in await server_contacts(root, me)

            # errors a user can act on
            with pytest.raises(RpcCallError) as missing:
                await rpc.call("contacts.update", {"account": "alice", "uri": bob, "name": "x"})
            assert missing.value.code == NOT_FOUND
            with pytest.raises(RpcCallError) as bad:
                await rpc.call("contacts.add", {"account": "alice", "uri": "not a uri"})
            assert bad.value.code == INVALID_PARAMS and "contact URI" in str(bad.value)
            with pytest.raises(RpcCallError) as nobody:
                await rpc.call("contacts.list", {"account": "nobody"})
            assert nobody.value.code == NOT_FOUND
            with pytest.raises(RpcCallError) as nothing:
                await rpc.call("xcap.get", {"account": "alice", "auid": "resource-lists",
                                            "document": "nothing-here"})
            assert nothing.value.code == NOT_FOUND

            shown = await rpc.call("accounts.get", {"id": "alice"})
            assert shown["xcap"]["root"] == root and "password" not in shown["xcap"]

            # a global xcap setting restarts the manager; removing the account stops it
            await rpc.call("settings.set", {"key": "xcap.timeout", "value": 7})
            assert uris(await rpc.call("contacts.list", {"account": "alice"})) == {carol}
            await rpc.call("accounts.remove", {"id": "alice"})
            assert [a["account"] for a in
                    (await rpc.call("contacts.list", {}))["accounts"]] == ["local"]
    finally:
        daemon.stop()
    log = daemon.log()
    assert PEER_USERS["alice"] not in log
    assert "alice: stopping its XCAP document manager (settings changed)" in log
    assert "alice: stopping its XCAP document manager (no XCAP any more)" in log


async def test_a_second_device_sees_the_contacts_and_concurrent_edits_survive(
        xcap_kamailio, tmp_path) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    people = [f"sip:{name}@{kam.domain}" for name in ("carol", "dave", "eve", "frank",
                                                           "grace")]
    with running(tmp_path, alice_settings(kam.domain, root)) as (a, b):
        async with connect(a.endpoint) as rpc_a:
            await rpc_a.call("contacts.add", {"account": "alice", "uri": people[0]})
        b.stop()
        b.start()  # the other device starts again: it reads the changed document
        async with connect(b.endpoint) as rpc_b:
            assert uris(await rpc_b.call("contacts.list", {"account": "alice"})) == {people[0]}
            async with connect(a.endpoint) as rpc_a:
                # both edit the same document at once: one PUT gets 412 and is replayed
                async with trio.open_nursery() as nursery:
                    for rpc, uri in ((rpc_a, people[1]), (rpc_b, people[2]),
                                     (rpc_a, people[3])):
                        nursery.start_soon(rpc.call, "contacts.add",
                                           {"account": "alice", "uri": uri})
            # and one more from b alone: a's copy is stale now
            await rpc_b.call("contacts.add", {"account": "alice", "uri": people[4]})
        assert set(await server_contacts(root, me)) == set(people)
        # SIGHUP: the documents are read again, other devices' changes show
        async with connect(a.endpoint) as rpc_a:
            await rpc_a.call("events.subscribe", {"topics": ["contacts", "xcap"]})
            a.signal(signal.SIGHUP)
            changed = await rpc_a.next_event("xcap.changed")
            assert changed["data"]["account"] == "alice"
            assert changed["data"]["auid"] == "resource-lists" and changed["data"]["etag"]
            assert uris(await rpc_a.call("contacts.list", {"account": "alice"})) == set(people)
        a.stop()
        a.start()
        async with connect(a.endpoint) as rpc_a:
            assert uris(await rpc_a.call("contacts.list", {"account": "alice"})) == set(people)


async def test_edits_made_while_the_server_is_down_land_after_a_kill(
        kamailio_factory, tmp_path) -> None:
    kam = kamailio_factory(tls=False, features={"xcap"})
    root, me = xcap_root(kam), xui(kam)
    kam.stop()
    wanted = {f"sip:user{i}@{kam.domain}" for i in range(3)}
    daemon = SipdProcess(tmp_path, alice_settings(kam.domain, root)).start()
    try:
        async with connect(daemon.endpoint) as rpc:
            for n, uri in enumerate(sorted(wanted), 1):
                result = await rpc.call("contacts.add", {"account": "alice", "uri": uri})
                assert result["store"] == "xcap" and result["pending"] == n
                assert not result["online"]
            assert uris(await rpc.call("contacts.list", {"account": "alice"})) == wanted
        daemon.proc.kill()
        daemon.proc.wait(10)
        kam.start()
        daemon.start()

        async with connect(daemon.endpoint) as rpc:
            async def landed() -> bool:
                listing = await rpc.call("contacts.list", {"account": "alice"})
                return listing["accounts"][0]["pending"] == 0 and uris(listing) == wanted
            await eventually(landed, "the journalled contacts sent")
        assert set(await server_contacts(root, me)) == wanted
    finally:
        daemon.stop()


async def test_a_refusal_409_is_shown_with_the_servers_reason(tmp_path) -> None:
    error = (b'<?xml version="1.0" encoding="UTF-8"?>'
             b'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error">'
             b'<constraint-failure phrase="contact lists are full on this server"/>'
             b'</xcap-error>')

    def handler(request: Request) -> Reply:
        if request.method == "PUT":
            return Reply(409, error, [("Content-Type", "application/xcap-error+xml")])
        return Reply(404)

    async with serve_http(handler) as server:
        daemon = SipdProcess(tmp_path, alice_settings("example.test", server.root)).start()
        try:
            async with connect(daemon.endpoint) as rpc:
                with pytest.raises(RpcCallError) as refused:
                    await rpc.call("contacts.add", {"account": "alice",
                                                    "uri": "sip:bob@example.test"})
                assert refused.value.code == REMOTE_ERROR
                assert refused.value.data["status"] == 409
                assert "contact lists are full" in refused.value.data["error"]
                assert "constraint-failure" in refused.value.data["error"]
                listing = await rpc.call("contacts.list", {"account": "alice"})
                assert listing["contacts"] == [] and listing["accounts"][0]["pending"] == 0
                with pytest.raises(RpcCallError) as raw:
                    await rpc.call("xcap.put", {"account": "alice", "auid": "pres-rules",
                                                "content": "<ruleset xmlns='urn:ietf:params:"
                                                           "xml:ns:common-policy'/>"})
                assert raw.value.code == REMOTE_ERROR
                assert "contact lists are full" in str(raw.value)
        finally:
            daemon.stop()


async def test_contacts_kept_without_xcap_are_uploaded_when_it_is_turned_on(
        xcap_kamailio, tmp_path) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    bob, carol, dave = (f"sip:{n}@{kam.domain}" for n in ("bob", "carol", "dave"))
    # what another device put on the server already
    async with running_manager(root, me, tmp_path / "other") as other:
        await other.add_contact(dave, name="Dave")
        await other.add_contact(bob, name="Bobby", groups=["Old"])

    daemon = SipdProcess(tmp_path, alice_settings(kam.domain, None)).start()
    try:
        async with connect(daemon.endpoint) as rpc:
            added = await rpc.call("contacts.add", {"account": "alice", "uri": bob,
                                                    "groups": ["Friends"], "presence": True})
            assert added["store"] == "local"
            await rpc.call("contacts.add", {"account": "alice", "uri": carol, "name": "Carol"})
            await rpc.call("presence.authorize", {"account": "alice", "watcher": carol,
                                                  "action": "polite-block"})
            assert uris(await rpc.call("contacts.list", {"account": "alice"})) == {bob, carol}

            await rpc.call("accounts.update", {"id": "alice", "changes": {"xcap": {
                "root": root}}})

            async def uploaded() -> bool:
                listing = await rpc.call("contacts.list", {"account": "alice"})
                return (listing["accounts"][0]["store"] == "xcap"
                        and uris(listing) == {bob, carol, dave})
            await eventually(uploaded, "the local contacts merged with the server's")
            on_server = await server_contacts(root, me)
            assert set(on_server) == {bob, carol, dave}
            assert set(on_server[bob].groups) == {"Old", "Friends"}
            assert on_server[bob].name == "Bobby" and on_server[bob].presence
            assert on_server[carol].name == "Carol"
            assert effective_action(await server_rules(root, me), carol) == "polite-block"

            # XCAP off again: the account is back on sipd's (now empty) store; the server
            # keeps its contacts
            await rpc.call("accounts.update", {"id": "alice", "changes": {"xcap.root": ""}})
            listing = await rpc.call("contacts.list", {"account": "alice"})
            assert listing["accounts"][0]["store"] == "local" and listing["contacts"] == []
            assert set(await server_contacts(root, me)) == {bob, carol, dave}
        local = daemon.state_dir / "contacts" / "alice" / "local"
        assert (local / "resource-lists.xml.uploaded").exists()
        assert not (local / "resource-lists.xml").exists()
    finally:
        daemon.stop()


def sipctl(daemon: SipdProcess, *args: str, stdin: str | None = None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "sipctl", "--runtime-dir", str(daemon.runtime_dir), *args],
        input=stdin, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


async def test_sipctl_contacts_and_raw_xcap(xcap_kamailio, tmp_path) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    bob = f"sip:bob@{kam.domain}"
    daemon = SipdProcess(tmp_path, alice_settings(kam.domain, None)).start()
    run = trio.to_thread.run_sync
    try:
        await run(lambda: sipctl(daemon, "accounts", "update", "alice", "--xcap-root", root,
                                 "--xcap-password", "-", stdin=PEER_USERS["alice"] + "\n"))
        shown = json.loads(await run(lambda: sipctl(daemon, "--json", "accounts", "get",
                                                    "alice").stdout))
        assert shown["xcap"]["root"] == root and shown["xcap"]["password_set"]
        await run(lambda: sipctl(daemon, "contacts", "add", "alice", bob, "--name", "Bob",
                                 "--group", "Friends", "--group", "Work", "--presence"))
        listing = await run(lambda: sipctl(daemon, "contacts", "list").stdout)
        assert bob in listing and "Bob" in listing
        shown = json.loads(await run(lambda: sipctl(daemon, "--json", "contacts", "list",
                                                    "--account", "alice").stdout))
        assert shown["contacts"][0]["groups"] == ["Friends", "Work"]
        await run(lambda: sipctl(daemon, "contacts", "update", "alice", bob, "--no-groups"))
        assert (await server_contacts(root, me))[bob].groups == ()
        await run(lambda: sipctl(daemon, "presence", "authorize", "alice", "spam.example",
                                 "block"))
        assert effective_action(await server_rules(root, me), "sip:x@spam.example") == "block"

        document = await run(lambda: sipctl(daemon, "xcap", "get", "alice",
                                            "resource-lists").stdout)
        assert document.lstrip().startswith("<?xml") and bob in document
        # a document of our own from stdin, then read back by node
        pidf = (f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{me}"><tuple id="t">'
                '<status><basic>closed</basic></status><note>Away</note></tuple></presence>')
        await run(lambda: sipctl(daemon, "xcap", "put", "alice", "pidf-manipulation",
                                 stdin=pidf))
        note = await run(lambda: sipctl(
            daemon, "xcap", "get", "alice", "pidf-manipulation", "--node",
            'presence/tuple[@id="t"]/note').stdout)
        assert "Away" in note
        await run(lambda: sipctl(daemon, "xcap", "delete", "alice", "pidf-manipulation"))
        missing = await run(lambda: sipctl(daemon, "xcap", "get", "alice", "pidf-manipulation",
                                           check=False))
        assert missing.returncode == 1 and "404" in missing.stderr

        await run(lambda: sipctl(daemon, "contacts", "remove", "alice", bob))
        assert bob not in await server_contacts(root, me)
    finally:
        daemon.stop()


async def test_a_hostile_document_is_refused_with_the_reason(tmp_path) -> None:
    hostile = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "boom">]>'
               b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
               b'<list name="x"><entry uri="sip:&e;@example.test"/></list></resource-lists>')

    def handler(request: Request) -> Reply:
        if request.method == "GET" and "/resource-lists/" in request.target:
            return Reply(200, hostile, [("Content-Type", "application/resource-lists+xml"),
                                        ("ETag", '"1"')])
        return Reply(404)

    async with serve_http(handler) as server:
        daemon = SipdProcess(tmp_path, alice_settings("example.test", server.root)).start()
        try:
            async with connect(daemon.endpoint) as rpc:
                with pytest.raises(RpcCallError) as refused:
                    await rpc.call("contacts.add", {"account": "alice",
                                                    "uri": "sip:bob@example.test"})
                assert refused.value.code == REMOTE_ERROR
                assert "DOCTYPE" in str(refused.value) and "resource-lists" in str(refused.value)
                listing = await rpc.call("contacts.list", {"account": "alice"})
                assert listing["contacts"] == [] and listing["accounts"][0]["pending"] == 0
                # the daemon still serves everything else
                assert (await rpc.call("system.version"))["name"] == "sipd"
            assert not any(r.method == "PUT" for r in server.requests)
        finally:
            daemon.stop()


async def test_wrong_credentials_keep_edits_until_the_settings_are_fixed(
        xcap_kamailio, tmp_path) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    settings = alice_settings(kam.domain, root)
    settings["accounts.alice.xcap.password"] = "wrong-password"
    daemon = SipdProcess(tmp_path, settings).start()
    try:
        async with connect(daemon.endpoint) as rpc:
            result = await rpc.call("contacts.add", {"account": "alice",
                                                     "uri": f"sip:bob@{kam.domain}"})
            assert result["store"] == "xcap" and not result["online"]
            assert result["pending"] == 1
            # the right password (here: the account's own, by clearing the override)
            await rpc.call("accounts.update", {"id": "alice",
                                               "changes": {"xcap.password": ""}})

            async def landed() -> bool:
                listing = await rpc.call("contacts.list", {"account": "alice"})
                return listing["accounts"][0]["pending"] == 0 and listing["contacts"] != []
            await eventually(landed, "the edit sent once the credentials are right")
        assert set(await server_contacts(root, me)) == {f"sip:bob@{kam.domain}"}
    finally:
        daemon.stop()
    assert "wrong-password" not in daemon.log()
