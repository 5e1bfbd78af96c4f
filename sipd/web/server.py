"""The web page's server: hypercorn (trio worker) on `web.listen`, plain or with TLS.

We bind the socket ourselves, so a port of 0 (tests) gives a URL with the real port and a taken
port fails the start with the address in the error, like the RPC's. Connections are served by
hypercorn's trio connection handler (TCPServer) under our own listener loop rather than its
worker_serve, so that one connection's failure stays that connection's (see `run`); that
handler is hypercorn's internal API, hence the version range in pyproject.toml.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from ..files.trio.uploads import UploadStore
from .app import RpcEndpoint, WebApp
from .audio import AudioChannels
from .files import PageFiles, default_root
from .login import LoginCodes
from .received import ReceivedFiles
from .transfers import FileEndpoints

log = logging.getLogger(__name__)
# hypercorn's own info lines repeat "Running on ..."; we say where the page is ourselves.
logging.getLogger("sipd.web.hypercorn").setLevel(logging.WARNING)

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class WebSettingError(Exception):
    """web.listen or the certificate cannot be used; the message says which and why."""


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def _bind(listen: str) -> socket.socket:
    host, port = _split_listen(listen)
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class WebServer:
    def __init__(self, settings: Any, token: str, rpc: RpcEndpoint | None,
                 find_session: Callable[[str], Any] | None = None,
                 root: Path | None = None,
                 may_accept: Callable[[], bool] = lambda: True,
                 uploads: UploadStore | None = None,
                 history: Callable[[], Any] = lambda: None) -> None:
        self._settings = settings
        self.codes = LoginCodes()
        audio = (AudioChannels(find_session, rpc.token_matches)
                 if find_session is not None and rpc is not None else None)
        transfers = FileEndpoints(uploads, ReceivedFiles(history),
                                  lambda: settings.get("web.max_upload_bytes"))
        self.app = WebApp(PageFiles(root or default_root()), self.codes, token, rpc, audio,
                          may_accept, transfers)
        self.url: str | None = None
        self.error: str | None = None  # why the page is not served

    def state(self) -> dict[str, Any]:
        """The `web` section of system.state: its URL (None: off), and why it is off."""
        return {"url": self.url, "error": self.error}

    def login_link(self) -> dict[str, Any]:
        """A one-time link to the page that logs it in (the code is in the fragment, which
        browsers never send: it stays out of every access log)."""
        if self.url is None:
            raise WebSettingError(self.error or "the web page is off (web.listen is empty)")
        code = self.codes.issue(trio.current_time())
        return {"url": f"{self.url}#login={code}", "expires_in": self.codes.lifetime}

    def _config(self) -> Config:
        config = Config()
        config.accesslog = None  # paths only, but nobody asked for a log of page loads
        config.errorlog = logging.getLogger("sipd.web.hypercorn")
        config.websocket_max_message_size = self._settings.get("rpc.max_message_bytes")
        config.graceful_timeout = 1.0
        config.include_server_header = False
        certificate = self._settings.get("web.certificate")
        if certificate:
            config.certfile = str(Path(certificate).expanduser())
            key = self._settings.get("web.private_key")
            config.keyfile = str(Path(key).expanduser()) if key else config.certfile
            try:
                config.create_ssl_context()
            except (OSError, ssl.SSLError) as exc:
                raise WebSettingError(f"web.certificate {certificate} cannot be used: "
                                      f"{exc}") from None
        return config

    def _shown_url(self, sock: socket.socket, secure: bool, host: str) -> str:
        port = sock.getsockname()[1]
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname() if secure else "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if secure else 'http'}://{shown}:{port}/"

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; started() with the page's URL, or None when web.listen is
        empty (then this returns at once)."""
        listen = self._settings.get("web.listen")
        if not listen:
            task_status.started(None)
            return
        config = self._config()
        try:
            sock = _bind(listen)
        except OSError as exc:
            raise WebSettingError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        ssl_context = config.create_ssl_context()
        secure = ssl_context is not None
        listener: trio.abc.Listener[Any] = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        if ssl_context is not None:
            listener = trio.SSLListener(listener, ssl_context, https_compatible=True)
        host, _ = _split_listen(listen)
        self.url = self._shown_url(sock, secure, host)
        if host not in LOOPBACK_HOSTS:
            log.warning("the web page listens on %s, not on loopback: anyone who can reach it "
                        "can load the page (driving the daemon still needs the token)", host)
        log.info("web page at %s", self.url)
        app = wrap_app(cast(Any, self.app), config.wsgi_max_body_size, "asgi")
        context = WorkerContext(None)

        async def connection(stream: Any) -> None:
            # hypercorn's own connection task, with its failures kept to that connection:
            # its worker_serve lets one connection's error (e.g. trio's BusyResourceError
            # when a close and a pong race on a WebSocket) end the whole server, and here
            # the daemon with it.
            try:
                await TCPServer(app, config, context, ConnectionState({}), stream)
            except Exception as exc:  # noqa: BLE001 - one connection lost, the rest go on
                log.debug("a web page connection failed: %r", exc)
                await trio.aclose_forcefully(stream)

        try:
            async with trio.open_nursery() as nursery:
                task_status.started(self.url)
                await trio.serve_listeners(connection, [listener], handler_nursery=nursery)
        finally:
            self.url = None
            sock.close()
