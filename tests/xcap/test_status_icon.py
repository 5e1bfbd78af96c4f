"""The status icon (OMA pres-content) on Kamailio's xcap_server through xcap.set_icon, read
back by another client at the URI the call gives; the document format on its own."""

from __future__ import annotations

import base64
import zlib

import pytest
import trio

from sipctl.client import RpcCallError, connect
from sipd.xcap.errors import XcapDocumentError, XcapEditError
from sipd.xcap.prescontent import StatusIcon, build_icon, parse_icon
from sipd.xcap.trio.client import XcapClient, XcapResponse
from sipd.xcap.uri import XcapUri
from tests.harness.process import SipdProcess
from tests.harness.sipctl import sipctl
from tests.peers.fixtures import PEER_USERS
from tests.xcap.conftest import xcap_root, xui
from tests.xcap.test_daemon import INVALID_PARAMS, alice_settings


def png(colour: bytes) -> bytes:
    """A 1x1 PNG of one RGB colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" + colour)) + chunk(b"IEND", b""))


def test_an_icon_document_round_trips() -> None:
    icon = StatusIcon(png(b"\xff\x00\x00"), "image/png", "red")
    body = build_icon(icon)
    assert b"urn:oma:xml:prs:pres-content" in body and b"<encoding>base64</encoding>" in body
    assert parse_icon(body) == icon


@pytest.mark.parametrize("mime_type", ["text/html", "image", "image/png; x=1 y", ""])
def test_an_icon_must_be_an_image(mime_type: str) -> None:
    with pytest.raises(XcapEditError, match="image"):
        StatusIcon(b"x", mime_type)


@pytest.mark.parametrize(("body", "reason"), [
    (b'<content xmlns="urn:oma:xml:prs:pres-content"><mime-type>image/png</mime-type>'
     b"<data>!!not base64!!</data></content>", "refused"),
    (b'<content xmlns="urn:oma:xml:prs:pres-content"><mime-type>image/png</mime-type>'
     b"<encoding>quoted-printable</encoding><data>x</data></content>", "quoted-printable"),
    (b'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY e "e">]>'
     b'<content xmlns="urn:oma:xml:prs:pres-content">&e;</content>', "refused"),
    (b"<presence/>", "root element"),
])
def test_unreadable_icon_documents_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(XcapDocumentError, match=reason):
        parse_icon(body)


@pytest.mark.interop
async def test_the_icon_is_set_on_kamailio_and_read_by_another_client(xcap_kamailio,
                                                                      tmp_path) -> None:
    kam = xcap_kamailio
    root, me = xcap_root(kam), xui(kam)
    daemon = SipdProcess(tmp_path, alice_settings(kam.domain, root)).start()
    try:
        async with connect(daemon.endpoint) as rpc:
            red, blue = png(b"\xff\x00\x00"), png(b"\x00\x00\xff")
            first = await rpc.call("xcap.set_icon", {
                "account": "alice", "content_base64": base64.b64encode(red).decode(),
                "mime_type": "image/png", "description": "red"})
            uri = XcapUri(root, "org.openmobilealliance.pres-content", "oma_status-icon/icon",
                          me)
            assert first["uri"] == str(uri) and first["etag"]
            # a second one replaces it (the write is conditional on the first's ETag)
            second = await rpc.call("xcap.set_icon", {
                "account": "alice", "content_base64": base64.b64encode(blue).decode(),
                "mime_type": "image/png"})
            assert second["etag"] != first["etag"]
            async with XcapClient(root, username="alice",
                                  password=PEER_USERS["alice"]) as client:
                got = await client.get(uri)
            assert isinstance(got, XcapResponse) and got.etag == second["etag"]
            assert got.content_type == "application/vnd.oma.pres-content+xml"
            assert parse_icon(got.content) == StatusIcon(blue, "image/png")
            raw = await rpc.call("xcap.get", {"account": "alice",
                                              "auid": "org.openmobilealliance.pres-content",
                                              "document": "oma_status-icon/icon"})
            assert raw["etag"] == second["etag"]

            # sipctl: from a file, the type from its name; prints the URL
            green = tmp_path / "green.png"
            green.write_bytes(png(b"\x00\xff\x00"))
            printed = await trio.to_thread.run_sync(
                lambda: sipctl(daemon, "xcap", "icon", "alice", str(green)))
            assert printed.stdout.strip() == str(uri)
            async with XcapClient(root, username="alice",
                                  password=PEER_USERS["alice"]) as client:
                got = await client.get(uri)
            assert isinstance(got, XcapResponse)
            assert parse_icon(got.content).data == green.read_bytes()

            for bad in ({"content_base64": "not base64!", "mime_type": "image/png"},
                        {"content_base64": "aGVsbG8=", "mime_type": "text/html"}):
                with pytest.raises(RpcCallError) as refused:
                    await rpc.call("xcap.set_icon", {"account": "alice", **bad})
                assert refused.value.code == INVALID_PARAMS
    finally:
        daemon.stop()
