"""What a stream kind uses to get an MSRP connection (one MsrpEndpoint per daemon).

    endpoint = MsrpEndpoint(EndpointSettings(host="192.0.2.10", port=0, transport="tls",
                                             state_dir=state_dir))
    await nursery.start(endpoint.serve)                     # the listener on msrp.local_port

    reservation = await endpoint.reserve(use_relay=False)   # our URI (and relay path)
    ours = MsrpMedia(reservation.local_path, ["message/cpim"], setup=Setup.ACTPASS,
                     fingerprints=reservation.fingerprints)    # -> our m-line
    theirs = MsrpMedia.from_attributes(...)                   # <- their m-line
    active = connection_role(ours.setup, theirs.setup, we_offered=True)
    connection = await reservation.connect(theirs, active=active, accept_types=[...])
    await nursery.start(connection.run)                      # then connection.events

Direct and active: a TCP or TLS connection to the first URI of their a=path; over TLS, when
that URI is the peer itself (no relay in its path), its certificate must match its
a=fingerprint, or the connection is refused with that reason. Direct and passive: the listener
hands over the connection whose first request names our session; over TLS, when the peer's SDP
gives an a=fingerprint and its a=path is the peer itself, the certificate it showed in the
handshake must match it (none shown: refused too). A peer that gives no a=fingerprint (Blink)
is taken as it comes: nothing to check it against. Through a relay (RFC 4976):
the reservation already holds an authenticated connection to our relay and our a=path starts
with its Use-Path; the active side sends the first SEND (empty when it has nothing to say).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from ..sdp import Fingerprint, MsrpMedia
from ..session import MsrpSession
from ..uri import MsrpUri
from .connection import MsrpConnectError, MsrpConnection
from .listener import IncomingConnection, MsrpListener
from .relay import RelayLink, RelaySettings, open_relay_link
from .tls import (
    TlsIdentity,
    ensure_identity,
    fingerprint_mismatch,
    load_identity,
    passive_context,
    peer_context,
)
from .tls_stream import TlsStream

CONNECT_TIMEOUT = 30.0
RELAY_CHUNK_SIZE = 2048
DIRECT_CHUNK_SIZE = 256 * 1024


@dataclass
class EndpointSettings:
    """`host`: the address we bind and put in our URIs; `port` 0 picks one; `transport` tcp
    or tls; TLS identity from `cert_file`/`key_file`, else made in `state_dir`; `relay` for
    sessions that use one. Chunks of our messages: `chunk_size` bytes when a relay stands on
    the path (ours or the peer's: Kamailio's msrp module takes frames under 10 KB only),
    `direct_chunk_size` when we talk to the peer itself (docs/decisions.md, MSRP)."""

    host: str = "127.0.0.1"
    port: int = 0
    transport: str = "tls"
    state_dir: str | Path | None = None
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    relay: RelaySettings | None = None
    chunk_size: int = RELAY_CHUNK_SIZE
    direct_chunk_size: int = DIRECT_CHUNK_SIZE
    connect_timeout: float = CONNECT_TIMEOUT


class MsrpEndpoint:
    def __init__(self, settings: EndpointSettings, *,
                 may_accept: Callable[[], bool] = lambda: True) -> None:
        if settings.transport not in ("tcp", "tls"):
            raise ValueError(f"msrp.transport must be tcp or tls, not {settings.transport!r}")
        self.settings = settings
        self.identity: TlsIdentity | None = None
        if settings.transport == "tls" or settings.cert_file is not None:
            if settings.cert_file is not None:
                self.identity = load_identity(settings.cert_file,
                                              settings.key_file or settings.cert_file)
            elif settings.state_dir is not None:
                self.identity = ensure_identity(settings.state_dir)
            else:
                raise ValueError("MSRP over TLS needs a certificate or a state directory")
        tls = passive_context(self.identity) if settings.transport == "tls" and self.identity \
            else None
        self.listener = MsrpListener(settings.host, settings.port, tls=tls,
                                     may_accept=may_accept)

    @property
    def secure(self) -> bool:
        return self.settings.transport == "tls"

    @property
    def fingerprint(self) -> Fingerprint | None:
        return self.identity.fingerprint if self.identity else None

    @property
    def port(self) -> int:
        return self.listener.port

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        await self.listener.serve(task_status=task_status)

    def new_local_uri(self) -> MsrpUri:
        return MsrpUri(host=self.settings.host, port=self.listener.port,
                       session_id=secrets.token_urlsafe(12).replace("_", "").replace("-", "")
                       or secrets.token_hex(8), secure=self.secure)

    async def reserve(self, *, use_relay: bool = False,
                      relay: RelaySettings | None = None) -> MsrpReservation:
        """Our URI for a new session; through a relay, its path reserved by AUTH."""
        local_uri = self.new_local_uri()
        reservation = MsrpReservation(self, local_uri)
        relay = relay or self.settings.relay
        if use_relay:
            if relay is None:
                raise MsrpConnectError("no MSRP relay configured")
            reservation.relay_link = await open_relay_link(relay, local_uri, self.identity)
        else:
            reservation.incoming = self.listener.expect(local_uri.session_id or "")
        return reservation


@dataclass
class MsrpReservation:
    endpoint: MsrpEndpoint
    local_uri: MsrpUri
    relay_link: RelayLink | None = None
    incoming: trio.MemoryReceiveChannel[IncomingConnection] | None = None
    _used: bool = field(default=False, repr=False)

    @property
    def local_path(self) -> list[MsrpUri]:
        """Our a=path: the relay's Use-Path (if any), then our URI."""
        if self.relay_link is not None:
            return self.relay_link.granted.use_path + [self.local_uri]
        return [self.local_uri]

    @property
    def fingerprints(self) -> list[Fingerprint]:
        fingerprint = self.endpoint.fingerprint
        return [fingerprint] if fingerprint is not None and self.endpoint.secure else []

    async def connect(self, remote: MsrpMedia, *, active: bool,
                      **session_options: Any) -> MsrpConnection:
        """The connection of this session (see the module documentation). `session_options`
        go to MsrpSession (accept_types, max_message_size, deliver_chunks...)."""
        if self._used:
            raise RuntimeError("this reservation was used already")
        self._used = True
        options = {"chunk_size": self.chunk_size_for(remote)} | session_options
        try:
            with trio.fail_after(self.endpoint.settings.connect_timeout):
                if self.relay_link is not None:
                    return self._through_relay(remote, active, options)
                if active:
                    return await self._open(remote, options)
                return await self._accept(remote, options)
        except trio.TooSlowError:
            raise MsrpConnectError(
                f"no MSRP connection within {self.endpoint.settings.connect_timeout:g} s "
                f"({'to ' + str(remote.path[0]) if active else 'from the peer'})") from None
        finally:
            self._release()

    def chunk_size_for(self, remote: MsrpMedia) -> int:
        """The size of our chunks toward `remote`: the relay size when a relay stands on our
        path or on the peer's, else the direct one."""
        settings = self.endpoint.settings
        relayed = self.relay_link is not None or len(remote.path) > 1
        return settings.chunk_size if relayed else settings.direct_chunk_size

    async def aclose(self) -> None:
        """Gives the reservation up unused (the call failed before the media was up)."""
        self._release()
        if not self._used and self.relay_link is not None:
            self._used = True
            await self.relay_link.stream.aclose()

    def _release(self) -> None:
        if self.incoming is not None:
            self.endpoint.listener.forget(self.local_uri.session_id or "")

    def _through_relay(self, remote: MsrpMedia, active: bool,
                       options: dict[str, Any]) -> MsrpConnection:
        link = self.relay_link
        assert link is not None
        session = MsrpSession(self.local_path, remote.path, active=active, parser=link.parser,
                              **options)
        session.take_over(link.early_frames, trio.current_time())
        if active:
            session.send_empty()
        return MsrpConnection(link.stream, session, relay_client=link.client,
                              description=link.description)

    async def _open(self, remote: MsrpMedia, options: dict[str, Any]) -> MsrpConnection:
        first = remote.path[0]
        where = f"{first.host}:{first.effective_port}"
        try:
            tcp = await trio.open_tcp_stream(first.host, first.effective_port)
        except OSError as exc:
            raise MsrpConnectError(f"cannot connect to {first}: {exc.strerror or exc}") from exc
        stream: trio.abc.Stream = tcp
        try:
            if first.secure:
                stream = TlsStream(tcp, peer_context(self.endpoint.identity),
                                        server_hostname=None)
                try:
                    await stream.do_handshake()
                except trio.BrokenResourceError as exc:
                    raise MsrpConnectError(
                        f"TLS handshake with {where} failed: {exc.__cause__ or exc}") from exc
                if len(remote.path) == 1:  # the peer itself, not a relay of its
                    der = stream.getpeercert(binary_form=True)
                    mismatch = fingerprint_mismatch(der, remote.fingerprints)
                    if mismatch is not None:
                        raise MsrpConnectError(mismatch)
        except BaseException:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            raise
        session = MsrpSession(self.local_path, remote.path, active=True, **options)
        session.send_empty()
        return MsrpConnection(stream, session, description=f"to {where}")

    def _passive_mismatch(self, incoming: IncomingConnection, remote: MsrpMedia) -> str | None:
        """Why the certificate the connecting peer showed is refused (None: taken)."""
        stream = incoming.stream
        if not isinstance(stream, TlsStream) or len(remote.path) != 1 or not remote.fingerprints:
            return None
        return fingerprint_mismatch(stream.getpeercert(binary_form=True), remote.fingerprints)

    async def _accept(self, remote: MsrpMedia, options: dict[str, Any]) -> MsrpConnection:
        assert self.incoming is not None
        incoming = await self.incoming.receive()
        mismatch = self._passive_mismatch(incoming, remote)
        if mismatch is not None:
            with trio.CancelScope(shield=True):
                await incoming.stream.aclose()
            raise MsrpConnectError(mismatch)
        session = MsrpSession(self.local_path, remote.path, active=False, parser=incoming.parser,
                              **options)
        session.take_over(incoming.frames, trio.current_time())
        return MsrpConnection(incoming.stream, session, description=f"from {incoming.peer}")
