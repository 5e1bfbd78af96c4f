"""The web page's server in a real daemon: files with security headers and nothing outside
clients/web, the one-time login link, the RPC WebSocket at /rpc with its origin rules, HTTPS
and WSS with a certificate, and a daemon that goes on without its page."""

from __future__ import annotations

import datetime
import http.client
import json
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from trio_websocket import ConnectionRejected, open_websocket_url

from sipctl.client import RpcCallError, connect
from tests.harness.process import SipdProcess
from tests.harness.sipctl import run_sipctl, sipctl


async def system_state(daemon: SipdProcess) -> dict[str, Any]:
    async with connect(daemon.endpoint) as rpc:
        return await rpc.call("system.state")


async def login_link(daemon: SipdProcess) -> str:
    async with connect(daemon.endpoint) as rpc:
        return (await rpc.call("web.link"))["url"]


@pytest.fixture
async def page(sipd: SipdProcess) -> str:
    url = (await system_state(sipd))["web"]["url"]
    assert url and url.startswith("http://127.0.0.1:")
    return url


def raw_get(url: str, path: str) -> http.client.HTTPResponse:
    """A GET with the path exactly as given (httpx would resolve the dots first)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


async def test_page_has_security_headers(page: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<html" in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "server" not in response.headers


@pytest.mark.parametrize("path", [
    "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/..%2f..%2fpyproject.toml",
    "/../../sipd/daemon.py", "/.git/config", "/index.html/..", "//etc/passwd", "/nothing.js",
])
async def test_nothing_outside_the_page(page: str, path: str) -> None:
    response = await trio.to_thread.run_sync(raw_get, page, path)
    assert response.status in (400, 404), (path, response.status)


async def test_only_get_and_head(page: str) -> None:
    async with httpx.AsyncClient() as http:
        assert (await http.put(page, content=b"x")).status_code == 405
        head = await http.head(page)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0


async def test_login_link_works_once(sipd: SipdProcess, page: str) -> None:
    link = await login_link(sipd)
    base, _, fragment = link.partition("#")
    assert base == page and fragment.startswith("login=")
    code = fragment.removeprefix("login=")
    async with httpx.AsyncClient() as http:
        first = await http.post(page + "login", json={"code": code})
        assert first.status_code == 200
        assert first.json() == {"token": sipd.endpoint.token}
        assert first.headers["cache-control"] == "no-store"
        again = await http.post(page + "login", json={"code": code})
        assert again.status_code == 403 and "sipctl web" in again.json()["error"]
        assert (await http.post(page + "login", content=b"{not json")).status_code == 403
        assert (await http.post(page + "login", content=b"x" * 5000)).status_code == 403
        other = await http.post(page + "login", json={"code": code},
                                headers={"Origin": "http://evil.example"})
        assert other.status_code == 403
    assert code not in sipd.log() and sipd.endpoint.token not in sipd.log()


async def test_sipctl_web_prints_a_one_time_link(sipd: SipdProcess, page: str) -> None:
    result = await trio.to_thread.run_sync(sipctl, sipd, "web")
    link = result.stdout.strip()
    assert link.startswith(page + "#login=") and "\n" not in link
    async with httpx.AsyncClient() as http:
        code = link.split("#login=")[1]
        assert (await http.post(page + "login", json={"code": code})).status_code == 200


async def test_page_origin_may_use_rpc(sipd: SipdProcess, page: str) -> None:
    rpc_url = page.replace("http://", "ws://") + "rpc"
    origin = page.rstrip("/")
    endpoint = type(sipd.endpoint)(rpc_url, sipd.endpoint.token)
    async with connect(endpoint, login=True, extra_headers=[("Origin", origin)]) as rpc:
        assert (await rpc.call("system.version"))["name"] == "sipd"
    # the same origin on the front door's own port (rpc.listen): allowed too
    async with connect(sipd.endpoint, login=True, extra_headers=[("Origin", origin)]) as rpc:
        assert (await rpc.call("system.version"))["name"] == "sipd"
    for foreign in ("http://evil.example", origin.replace("127.0.0.1", "localhost") + "1"):
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(rpc_url, extra_headers=[(b"Origin", foreign.encode())]):
                pass
        assert refused.value.status_code == 403
    # no Origin (a program): the token decides
    with pytest.raises(ConnectionRejected) as refused:
        async with open_websocket_url(rpc_url, extra_headers=[(b"Authorization", b"Bearer x")]):
            pass
    assert refused.value.status_code == 401
    async with connect(endpoint) as rpc:  # bearer token on the handshake
        assert (await rpc.call("system.version"))["name"] == "sipd"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "web.crt", directory / "web.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_https_and_wss_with_a_certificate(tmp_path: Path) -> None:
    cert_file, key_file = self_signed(tmp_path)
    daemon = SipdProcess(tmp_path, {"web.listen": "localhost:0",
                                    "web.certificate": str(cert_file),
                                    "web.private_key": str(key_file)})
    daemon.start()
    try:
        url = (await system_state(daemon))["web"]["url"]
        assert url.startswith("https://localhost:")
        trusted = ssl.create_default_context(cafile=str(cert_file))
        async with httpx.AsyncClient(verify=trusted) as http:
            response = await http.get(url)
            assert response.status_code == 200 and "<html" in response.text
        origin = url.rstrip("/")
        async with open_websocket_url(url.replace("https://", "wss://") + "rpc",
                                      ssl_context=trusted,
                                      extra_headers=[(b"Origin", origin.encode())]) as ws:
            await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "auth.login",
                                              "params": {"token": daemon.endpoint.token}}))
            assert json.loads(await ws.get_message())["result"] == {"authenticated": True}
    finally:
        daemon.stop()


async def test_daemon_goes_on_without_its_page(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = SipdProcess(tmp_path, {"web.listen": f"127.0.0.1:{port}"})
        daemon.start()
        try:
            web = (await system_state(daemon))["web"]
            assert web["url"] is None and f"127.0.0.1:{port}" in web["error"]
            async with connect(daemon.endpoint) as rpc:
                with pytest.raises(RpcCallError) as refused:
                    await rpc.call("web.link")
                assert refused.value.code == -32005
                assert "127.0.0.1" in refused.value.data["reason"]
            result = await trio.to_thread.run_sync(run_sipctl, daemon, "web")
            assert result.returncode == 1 and f"127.0.0.1:{port}" in result.stderr
        finally:
            daemon.stop()


async def test_empty_listen_turns_the_page_off(tmp_path: Path) -> None:
    daemon = SipdProcess(tmp_path, {"web.listen": ""})
    daemon.start()
    try:
        assert (await system_state(daemon))["web"] == {"url": None, "error": None}
        assert "web page at" not in daemon.log() and "web page off" in daemon.log()
    finally:
        daemon.stop()
