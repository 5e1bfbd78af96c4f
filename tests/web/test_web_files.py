"""Files through the web page's server of a real daemon: `POST /uploads` (the token, the
page's origin, the size cap, nothing half-written kept) and `files.send` of an upload to
another daemon; `GET /received/<session>` of a file an incoming transfer saved (only that, with
a safe name), and clear errors for ids that name nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from sipctl.client import RpcCallError, connect
from tests.harness.files import FILE_TOPICS, TRANSFER_TIMEOUT, make_file, push, sha1_of
from tests.harness.peer import DaemonPeer, daemon_settings
from tests.harness.process import SipdProcess

pytestmark = [pytest.mark.daemon, pytest.mark.peer]

PEER_TOPICS = FILE_TOPICS
MAX_UPLOAD = 300_000
DAEMON_SETTINGS = {**daemon_settings(), "web.max_upload_bytes": MAX_UPLOAD}


async def page_of(peer: DaemonPeer) -> str:
    url = (await peer.call("system.state"))["web"]["url"]
    assert url
    return url


def bearer(peer: DaemonPeer) -> dict[str, str]:
    return {"Authorization": f"Bearer {peer.daemon.endpoint.token}"}


def uploads_dir(peer: DaemonPeer) -> Path:
    return peer.daemon.state_dir / "uploads"


async def upload(http: httpx.AsyncClient, page: str, peer: DaemonPeer, body: bytes,
                 name: str, **headers: str) -> httpx.Response:
    return await http.post(page + "uploads", params={"name": name}, content=body,
                           headers={**bearer(peer), **headers})


async def test_upload_needs_the_token_and_the_page_origin(a: DaemonPeer) -> None:
    page = await page_of(a)
    async with httpx.AsyncClient() as http:
        nobody = await http.post(page + "uploads", content=b"x")
        assert nobody.status_code == 401 and nobody.headers["www-authenticate"] == "Bearer"
        wrong = await http.post(page + "uploads", content=b"x",
                                headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        foreign = await upload(http, page, a, b"x", "a.txt", Origin="http://evil.example")
        assert foreign.status_code == 403
        assert (await http.get(page + "uploads", headers=bearer(a))).status_code == 405
        own = await upload(http, page, a, b"x", "a.txt", Origin=page.rstrip("/"))
        assert own.status_code == 201 and own.json()["size"] == 1
        # the received files are behind the token too
        assert (await http.get(page + "received/anything")).status_code == 401
    assert not [p for p in os.listdir(uploads_dir(a)) if p.endswith(".part")]


async def test_oversized_upload_is_refused_and_nothing_kept(a: DaemonPeer) -> None:
    page = await page_of(a)
    before = set(os.listdir(uploads_dir(a)))
    async with httpx.AsyncClient() as http:
        declared = await upload(http, page, a, b"y" * (MAX_UPLOAD + 1), "big.bin")
        assert declared.status_code == 413
        assert "web.max_upload_bytes" in declared.json()["error"]

        async def chunks() -> Any:  # no Content-Length: the cap is found while streaming
            for _ in range(MAX_UPLOAD // 65536 + 2):
                yield b"z" * 65536
        streamed = await http.post(page + "uploads", content=chunks(), headers=bearer(a))
        assert streamed.status_code == 413
        just = await upload(http, page, a, b"w" * MAX_UPLOAD, "just.bin")
        assert just.status_code == 201 and just.json()["size"] == MAX_UPLOAD
    assert set(os.listdir(uploads_dir(a))) - before == {just.json()["upload"]}


async def test_unknown_upload_is_a_clear_rpc_error(a: DaemonPeer, b: DaemonPeer) -> None:
    with pytest.raises(RpcCallError) as unknown:
        await a.call("files.send", account=a.id, to=b.uri("tcp"), upload="no-such-upload")
    assert unknown.value.code == -32002
    assert "upload the file again" in unknown.value.data["reason"]
    with pytest.raises(RpcCallError) as both:
        await a.call("files.send", account=a.id, to=b.uri("tcp"), upload="x", path="/etc/hosts")
    assert both.value.code == -32602 and "either path" in both.value.data["reason"]


async def test_uploaded_file_is_sent_under_its_name(a: DaemonPeer, b: DaemonPeer,
                                                    tmp_path: Path) -> None:
    source = make_file(tmp_path / "source.bin", 200_000)
    page = await page_of(a)
    async with httpx.AsyncClient() as http:
        made = await upload(http, page, a, source.read_bytes(), "../Quarterly report ✓.pdf")
    assert made.status_code == 201
    upload_id, name = made.json()["upload"], made.json()["name"]
    assert name == "Quarterly report ✓.pdf"
    assert (uploads_dir(a) / upload_id).read_bytes() == source.read_bytes()

    mark = b.events.mark()
    started = await a.call("files.send", account=a.id, to=b.uri("tcp"), upload=upload_id)
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    assert new["file"]["name"] == name and new["file"]["type"] == "application/pdf"
    assert new["file"]["hash"] == sha1_of(source)
    await b.state(new["id"], "ringing")
    await b.call("sessions.answer", id=new["id"])
    done = await b.events.wait("file.transfer", session=new["id"], state="completed",
                               timeout=TRANSFER_TIMEOUT)
    assert sha1_of(done["path"]) == sha1_of(source) and done["path"].endswith(name)
    await a.state(started["id"], "ended", reason="completed")
    # one upload, one send: it is gone with its session
    await a.wait_until(lambda: not (uploads_dir(a) / upload_id).exists(),
                       what="the sent upload deleted")
    with pytest.raises(RpcCallError) as again:
        await a.call("files.send", account=a.id, to=b.uri("tcp"), upload=upload_id)
    assert again.value.code == -32002


async def test_received_file_downloads_with_a_safe_name(a: DaemonPeer, b: DaemonPeer,
                                                        tmp_path: Path) -> None:
    source = make_file(tmp_path / 'odd "name";ü.bin', 150_000)
    sent_id, received_id, done = await push(b, a, source)
    page = await page_of(a)
    async with httpx.AsyncClient() as http:
        got = await http.get(page + f"received/{received_id}", headers=bearer(a))
        assert got.status_code == 200
        assert got.content == source.read_bytes()
        assert got.headers["content-type"] == "application/octet-stream"
        assert got.headers["cache-control"] == "no-store"
        disposition = got.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="odd _name_;_.bin"')
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == 'odd _name_;ü.bin'
        # only what this daemon received: not what it sent, not an unknown session
        assert (await http.get(page + f"received/{sent_id}", headers=bearer(a))
                ).status_code == 404
        nothing = await http.get(page + "received/no-such-session", headers=bearer(a))
        assert nothing.status_code == 404 and "no-such-session" in nothing.json()["error"]
        for path in ("received/..%2f..%2fetc%2fpasswd", "received/../../etc/passwd",
                     "received/"):
            assert (await http.get(page + path, headers=bearer(a))).status_code in (400, 404)
        # a one-time link (asked for with the token) works once, without the token, for
        # that file only
        assert (await http.post(page + f"received/{received_id}")).status_code == 401
        made = await http.post(page + f"received/{received_id}", headers=bearer(a))
        assert made.status_code == 200 and made.json()["expires_in"] == 60
        link = made.json()["url"]
        assert link.startswith(f"/received/{received_id}?code=")
        code = link.split("?code=")[1]
        by_link = await http.get(page + link.lstrip("/"))
        assert by_link.status_code == 200 and by_link.content == source.read_bytes()
        assert "content-disposition" in by_link.headers
        assert (await http.get(page + link.lstrip("/"))).status_code == 401  # spent
        other = (await http.post(page + f"received/{received_id}", headers=bearer(a))
                 ).json()["url"].split("?code=")[1]
        assert (await http.get(page + f"received/{sent_id}?code={other}")).status_code == 401
        assert (await http.get(page + f"received/{received_id}?code={other}")
                ).status_code == 401  # spent by the wrong try
        assert (await http.get(page + f"received/{received_id}?code={code}x")
                ).status_code == 401
        assert (await http.post(page + "received/no-such-session", headers=bearer(a))
                ).status_code == 404
        # the file gone from the disk: a 404 that says so
        os.unlink(done["path"])
        gone = await http.get(page + f"received/{received_id}", headers=bearer(a))
        assert gone.status_code == 404 and "gone" in gone.json()["error"]


async def test_daemon_goes_on_when_uploads_cannot_be_kept(tmp_path: Path) -> None:
    daemon = SipdProcess(tmp_path, name="blocked")
    daemon.state_dir.mkdir(parents=True)
    (daemon.state_dir / "uploads").write_text("a file where the uploads folder would be")
    daemon.start()
    try:
        async with connect(daemon.endpoint) as rpc:
            page = (await rpc.call("system.state"))["web"]["url"]
            with pytest.raises(RpcCallError) as off:
                await rpc.call("files.send", {"account": "local", "to": "sip:x@127.0.0.1",
                                              "upload": "any"})
            assert off.value.code == -32005 and "uploads are off" in off.value.data["reason"]
        async with httpx.AsyncClient() as http:
            refused = await http.post(page + "uploads", content=b"x", headers={
                "Authorization": f"Bearer {daemon.endpoint.token}"})
        assert refused.status_code == 503 and "uploads are off" in refused.json()["error"]
        assert "uploads from the web page are off" in daemon.log()
    finally:
        daemon.stop()
