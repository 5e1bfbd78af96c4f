"""A server that answers what no packaged XCAP server does: hostile documents, 409 with an
xcap-error document, 5xx that goes away, xcap-caps. Served by a tiny trio + h11 server."""

from __future__ import annotations

import ssl
from functools import partial

import pytest
import trio

from sipd.xcap.errors import (
    XcapConflictError,
    XcapDocumentError,
    XcapHTTPError,
    XcapUnavailableError,
)
from sipd.xcap.trio.client import MAX_CONNECTIONS, XcapClient
from sipd.xcap.uri import XcapUri
from tests.peers.certs import TestCA
from tests.xcap.conftest import running_manager
from tests.xcap.httpserver import Reply, Request, serve_http

XUI = "sip:alice@example.test"
RL = "urn:ietf:params:xml:ns:resource-lists"

LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
          b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
          b'<resource-lists xmlns="' + RL.encode() + b'"><list name="&lol3;"/></resource-lists>')
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<resource-lists xmlns="' + RL.encode() + b'"><list name="&x;"/></resource-lists>')
DEEP = (b'<resource-lists xmlns="' + RL.encode() + b'">' + b"<list>" * 60 + b"</list>" * 60
        + b"</resource-lists>")
VERY_DEEP = b"<a>" * 5000 + b"</a>" * 5000
WRONG = b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>'
HUGE = (b'<resource-lists xmlns="' + RL.encode() + b'"><list name="x">'
        + b"<entry uri='sip:x@y'/>" * 300_000 + b"</list></resource-lists>")


def document_server(body: bytes, content_type: str = "application/resource-lists+xml"):
    def handler(request: Request) -> Reply:
        if request.method == "GET" and "/resource-lists/" in request.target:
            return Reply(200, body, [("Content-Type", content_type), ("ETag", '"e1"')])
        return Reply(404)
    return handler


@pytest.mark.parametrize("body, reason", [
    (LAUGHS, "DOCTYPE"),
    (EXTERNAL, "entity"),
    (DEEP, "nested deeper"),
    (VERY_DEEP, "refused"),
    (WRONG, "root element is html"),
    (HUGE, "too large"),
    (b"<resource-lists", "not well-formed"),
])
async def test_hostile_documents_are_refused_with_the_reason(tmp_path, body, reason) -> None:
    async with serve_http(document_server(body)) as server:
        events: list = []
        async with running_manager(server.root, XUI, tmp_path, events=events) as manager:
            refused = [data["error"] for name, data in events if name == "xcap.refused"]
            assert len(refused) == 1 and reason in refused[0], refused
            assert manager.contacts() == []
            with pytest.raises(XcapDocumentError, match=reason):
                await manager.refresh([manager.resource_lists_key])
            # an edit of a document we refuse to read is refused too, and not kept
            with pytest.raises(XcapDocumentError, match=reason):
                await manager.add_contact("sip:bob@example.test")
            assert manager.pending == 0
        assert not any(r.method == "PUT" for r in server.requests)
        assert not (tmp_path / "documents").exists() or not any(
            "resource-lists" in p.name for p in (tmp_path / "documents").iterdir())


async def test_conflict_shows_the_servers_error_document(tmp_path) -> None:
    error = (b'<?xml version="1.0" encoding="UTF-8"?>'
             b'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error">'
             b'<uniqueness-failure phrase="list name taken"><exists field="list/@name">'
             b'<alt-value>friends2</alt-value></exists></uniqueness-failure></xcap-error>')

    def handler(request: Request) -> Reply:
        if request.method == "PUT":
            assert request.headers["if-none-match"] == "*"
            return Reply(409, error, [("Content-Type", "application/xcap-error+xml")])
        return Reply(404)

    async with serve_http(handler) as server:
        events: list = []
        async with running_manager(server.root, XUI, tmp_path, events=events) as manager:
            with pytest.raises(XcapConflictError) as refused:
                await manager.add_contact("sip:bob@example.test", groups=["friends"])
            assert refused.value.error.reason == "uniqueness-failure"
            assert refused.value.error.alt_values == (("list/@name", ("friends2",)),)
            assert "list name taken" in str(refused.value)
            assert "friends2" in str(refused.value)
            assert manager.pending == 0 and manager.contacts() == []
        assert [name for name, _ in events if name == "xcap.refused"] == ["xcap.refused"]


async def test_5xx_is_retried_and_caps_are_read(tmp_path) -> None:
    answers = [503, 500]
    caps = (b'<xcap-caps xmlns="urn:ietf:params:xml:ns:xcap-caps"><auids>'
            b'<auid>resource-lists</auid><auid>pres-rules</auid></auids><extensions/>'
            b'<namespaces><namespace>urn:ietf:params:xml:ns:resource-lists</namespace>'
            b'</namespaces></xcap-caps>')

    def handler(request: Request) -> Reply:
        if "/xcap-caps/global/index" in request.target:
            return Reply(200, caps, [("Content-Type", "application/xcap-caps+xml")])
        if answers:
            return Reply(answers.pop(0))
        return Reply(404)

    async with serve_http(handler) as server:
        async with XcapClient(server.root, retries=2, backoff=0.01) as client:
            with pytest.raises(Exception) as missing:
                await client.get(XcapUri(server.root, "resource-lists", "index", XUI))
            assert "404" in str(missing.value)
            assert len(server.requests) == 3
            found = await client.caps()
            assert found is not None and found.supports("pres-rules")
            assert found.namespaces == ("urn:ietf:params:xml:ns:resource-lists",)
        answers[:] = [503, 503, 503]
        async with XcapClient(server.root, retries=1, backoff=0.01) as client:
            with pytest.raises(XcapUnavailableError, match="503"):
                await client.get(XcapUri(server.root, "resource-lists", "index", XUI))


async def test_caps_choose_the_oma_pres_rules_auid(tmp_path) -> None:
    caps = (b'<xcap-caps xmlns="urn:ietf:params:xml:ns:xcap-caps"><auids>'
            b"<auid>resource-lists</auid><auid>org.openmobilealliance.pres-rules</auid>"
            b"</auids><extensions/><namespaces/></xcap-caps>")
    stored: dict[str, bytes] = {}

    def handler(request: Request) -> Reply:
        if "/xcap-caps/global/index" in request.target:
            return Reply(200, caps, [("Content-Type", "application/xcap-caps+xml")])
        if request.method == "PUT":
            stored[request.target] = request.body
            return Reply(201, headers=[("ETag", '"n1"')])
        return Reply(404)

    async with serve_http(handler) as server:
        async with running_manager(server.root, XUI, tmp_path) as manager:
            assert manager.caps is not None and manager.caps.supports("resource-lists")
            assert manager.pres_rules_auid == "org.openmobilealliance.pres-rules"
            await manager.set_policy("sip:bob@example.test", "allow")
            assert [(p.target, p.action) for p in manager.watcher_policies()] == [
                ("sip:bob@example.test", "allow")]
    assert list(stored) == [
        "/xcap-root/org.openmobilealliance.pres-rules/users/sip:alice@example.test/index"]


async def test_tls_is_verified_unless_told_otherwise(tmp_path) -> None:
    ca = TestCA(tmp_path / "ca")
    leaf = ca.issue("xcap", ["localhost"], ["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(leaf.cert_path, leaf.key_path)
    body = b'<resource-lists xmlns="' + RL.encode() + b'"/>'
    async with serve_http(document_server(body), tls=context) as server:
        uri = XcapUri(server.root, "resource-lists", "index", XUI)
        async with XcapClient(server.root, retries=0) as client:
            with pytest.raises(XcapUnavailableError,
                               match="TLS certificate is not trusted.*CERTIFICATE_VERIFY"):
                await client.get(uri)
        async with XcapClient(server.root, verify=str(ca.ca_cert_path)) as client:
            assert (await client.get(uri)).content == body
        async with XcapClient(server.root, verify=False) as client:
            assert (await client.get(uri)).etag == "e1"


async def test_basic_auth_only_over_tls(tmp_path) -> None:
    def handler(request: Request) -> Reply:
        if request.headers.get("authorization") != "Basic YWxpY2U6c2VjcmV0":
            return Reply(401, headers=[("WWW-Authenticate", 'Basic realm="x"')])
        return Reply(200, b'<resource-lists xmlns="' + RL.encode() + b'"/>')

    async with serve_http(handler) as server:
        uri = XcapUri(server.root, "resource-lists", "index", XUI)
        async with XcapClient(server.root, username="alice", password="secret") as client:
            with pytest.raises(XcapHTTPError) as refused:
                await client.get(uri)  # plain HTTP: the password is not sent in the clear
            assert refused.value.status == 401
            assert all("authorization" not in r.headers for r in server.requests)
        async with XcapClient(server.root, username="alice", password="secret",
                              basic_in_clear=True) as client:
            assert (await client.get(uri)).content.startswith(b"<resource-lists")


async def test_requests_at_once_share_a_few_connections() -> None:
    """However many requests run at once, the client opens at most MAX_CONNECTIONS
    connections to the server (each is a descriptor of the daemon's budget)."""
    open_now = most = served = 0

    async def slow_server(stream: trio.SocketStream) -> None:
        nonlocal open_now, most, served
        open_now += 1
        most = max(most, open_now)
        try:
            buffer = b""
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    _request, buffer = buffer.split(b"\r\n\r\n", 1)
                    await trio.sleep(0.05)
                    served += 1
                    await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        except trio.BrokenResourceError:
            pass
        finally:
            open_now -= 1

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, slow_server, 0,
                                                host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        root = f"http://127.0.0.1:{port}/xcap-root"

        async def fetch(n: int) -> None:
            with pytest.raises(XcapHTTPError):
                await client.get(XcapUri(root, "resource-lists", f"doc{n}", XUI))

        async with XcapClient(root, retries=0) as client:
            async with trio.open_nursery() as requests:
                for n in range(40):
                    requests.start_soon(fetch, n)
        nursery.cancel_scope.cancel()

    assert served == 40
    assert 0 < most <= MAX_CONNECTIONS, most
