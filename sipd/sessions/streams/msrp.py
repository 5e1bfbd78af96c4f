"""What the MSRP stream kinds share (chat now; file transfer and screen sharing later): a line of
theirs read and checked, our line with its path, a connection once the exchange is complete,
and the end of it (docs/design.md, "Sessions and streams").

    kind.refusal(offer, line, context)   # why an offered line cannot be taken (None: it can)
    line = await stream.offer()          # our path reserved (at our relay, when the account
                                         # has one), a=path, a=accept-types, a=setup...
    line = await stream.answer(offer, offered)
    await stream.start(local, remote)    # connects (or waits for the peer to), then runs the
                                         # kind's `converse` over the connection until it ends
    await stream.end(reason)             # closes the connection (or gives the path back)

The connection role follows a=setup (RFC 6135): we offer actpass, except behind a relay where
we offer active (an endpoint behind a relay binds the session itself, docs/decisions.md, MSRP).
An actpass offer over TLS that gives no a=fingerprint for a peer reached directly (Blink and
python-sipsimple never send one) is answered passive: as the active side we could not check
the peer's certificate and would refuse it, as the passive side the peer connects to us and is
known by the session-id, as every passive side knows its peer.
A connection that ends while the session is up (the peer vanished, its certificate does not
match its a=fingerprint, a relay stopped) fails the stream, and the session ends with that
reason; messages not delivered were told so before.

The line checks and line building are plain functions of the SDP model; the coroutines reach
the MSRP service the user agent puts in the context's resources under "msrp".
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, ClassVar

import trio

from ...msrp.errors import MsrpParseError
from ...msrp.sdp import MsrpMedia, Setup, answer_setup, connection_role, media_protocol
from ...msrp.session import media_type_matches
from ...msrp.trio.connection import MsrpConnectError, MsrpConnection
from ...msrp.trio.endpoint import MsrpEndpoint, MsrpReservation
from ...msrp.trio.relay import RelaySettings
from ...msrp.trio.service import MsrpService, MsrpUnavailable
from ...msrp.uri import MsrpUri, format_path
from ..sdp import Connection, MediaDescription, SessionDescription
from .base import Stream, StreamContext, StreamKind, StreamRefused, StreamState

log = logging.getLogger(__name__)

PROTOCOLS = ("TCP/MSRP", "TCP/TLS/MSRP")
# How long a connection the peer closed waits for the session to end by signalling (its BYE
# usually travels beside the close) before the stream counts as failed.
PEER_CLOSE_GRACE = 2.0


def describe(media: MediaDescription) -> str:
    """How a reason names the line it is about: `m=message TCP/MSRP`."""
    return f"m={media.type} {media.proto}"


def read_line(media: MediaDescription) -> MsrpMedia:
    """The MSRP attributes of a remote line (MsrpParseError: what is missing or wrong)."""
    return MsrpMedia.from_attributes((a.name, a.value) for a in media.attributes)


def path_refusal(path: list[MsrpUri]) -> str | None:
    """Why we cannot reach the peer along its a=path (None: we can). Only the first hop is ours
    to reach, over TCP; the hops after it are its relays' business: a WebSocket client (RFC
    7977) behind a relay ends its path with a `;ws` URI of its own."""
    first = path[0]
    if first.transport.lower() != "tcp":
        return f"a=path URI {first} has transport {first.transport}, not tcp"
    return None


def unverifiable(theirs: MsrpMedia, *, secure: bool) -> bool:
    """True when connecting to the peer over TLS would fail for want of its certificate's
    fingerprint: its a=path is the peer itself (no relay of its) and it gives no a=fingerprint."""
    return secure and len(theirs.path) == 1 and not theirs.fingerprints


def answered_setup(theirs: Setup | None, *, we_offered: bool) -> Setup | None:
    """The peer's a=setup as we take it: an answer saying actpass (RFC 4145 forbids it; some
    answerers echo the offer) counts as saying nothing, and RFC 4975 has the offerer connect."""
    if we_offered and theirs is Setup.ACTPASS:
        return None
    return theirs


def msrp_service(resources: dict[str, Any]) -> MsrpService | None:
    service = resources.get("msrp")
    return service if isinstance(service, MsrpService) else None


def msrp_problem(resources: dict[str, Any]) -> str | None:
    """Why this daemon cannot carry MSRP now (None: it can)."""
    service = msrp_service(resources)
    if service is None:
        return "MSRP is not available in this daemon"
    return service.problem


class MsrpKind(StreamKind):
    """A kind carried over MSRP: its m= type, what our line accepts and what we send."""

    media_type: ClassVar[str] = "message"
    accept_types: ClassVar[tuple[str, ...]]
    accept_wrapped_types: ClassVar[tuple[str, ...]] = ()
    sends: ClassVar[tuple[str, ...]]  # the peer's a=accept-types must take one of these

    def recognises(self, media: MediaDescription) -> bool:
        return bool(media.type == self.media_type and media.is_msrp)

    def refusal(self, offer: SessionDescription, media: MediaDescription,
                context: StreamContext) -> str | None:
        where = describe(media)
        problem = msrp_problem(context.resources)
        if problem is not None:
            return f"{where}: {problem}"
        proto = media.proto.upper()
        if proto not in PROTOCOLS:
            return f"{where}: unknown transport {media.proto} (we take {' or '.join(PROTOCOLS)})"
        try:
            theirs = read_line(media)
        except MsrpParseError as exc:
            return f"{where}: {exc.detail}"
        service = msrp_service(context.resources)
        assert service is not None
        secure = service.endpoint.secure
        if (proto == "TCP/TLS/MSRP") != secure:
            return (f"{where}: MSRP here is over {'TLS' if secure else 'TCP'} "
                    f"(msrp.transport), not {'TLS' if not secure else 'plain TCP'}")
        problem = path_refusal(theirs.path)
        if problem is not None:
            return f"{where}: {problem}"
        if self.sends and not any(media_type_matches(sent, theirs.accept_types)
                                  for sent in self.sends):
            return (f"{where}: a=accept-types {' '.join(theirs.accept_types)} takes none of "
                    f"the types we send ({' '.join(self.sends)})")
        try:
            answer_setup(theirs.setup)
        except MsrpParseError as exc:
            return f"{where}: {exc.detail}"
        return self.line_refusal(theirs, media)

    def unavailable(self, resources: dict[str, Any]) -> str | None:
        return msrp_problem(resources)

    def line_refusal(self, theirs: MsrpMedia, media: MediaDescription) -> str | None:
        """What the kind itself finds wrong with a line the checks above passed."""
        return None


class MsrpStream(Stream):
    kind: MsrpKind

    def __init__(self, kind: MsrpKind, context: StreamContext, index: int) -> None:
        super().__init__(kind, context, index)
        self.reservation: MsrpReservation | None = None
        self.connection: MsrpConnection | None = None
        self.local_media: MsrpMedia | None = None
        self.remote_media: MsrpMedia | None = None
        self._line: MediaDescription | None = None
        self._we_offered = False
        self._connecting: trio.CancelScope | None = None
        self.connected = trio.Event()  # set once the connection runs (or the stream is over)
        self.ending: str | None = None  # why we end it
        self._ended = trio.Event()
        self.failure: str | None = None  # why it broke

    def view(self) -> dict[str, Any]:
        view = super().view()
        if self.local_media is not None:
            view["local_path"] = [str(uri) for uri in self.local_media.path]
        if self.remote_media is not None:
            view["remote_path"] = [str(uri) for uri in self.remote_media.path]
        view["connected"] = self.connection is not None and not self.connection.closed
        if self.failure is not None:
            view["failure"] = self.failure
        return view

    # -- our line ------------------------------------------------------------------------------
    async def offer(self) -> MediaDescription:
        if self._line is not None:  # a re-offer keeps the path
            return self._line.copy()
        relay = self._relay()
        await self._reserve(relay)
        self._we_offered = True
        return self._make_line(Setup.ACTIVE if relay is not None else Setup.ACTPASS)

    async def answer(self, offer: SessionDescription,
                     offered: MediaDescription) -> MediaDescription:
        where = describe(offered)
        try:
            theirs = read_line(offered)
            setup = answer_setup(theirs.setup)
        except MsrpParseError as exc:
            raise StreamRefused(f"{where}: {exc.detail}") from None
        self.remote_media = theirs
        relay = self._relay()
        if relay is None and setup is Setup.ACTIVE and theirs.setup is Setup.ACTPASS \
                and unverifiable(theirs, secure=self._endpoint().secure):
            setup = Setup.PASSIVE
        await self._reserve(relay)
        return self._make_line(setup)

    def _service(self) -> MsrpService:
        service = msrp_service(self.context.resources)
        if service is None:
            raise StreamRefused("MSRP is not available in this daemon")
        return service

    def _endpoint(self) -> MsrpEndpoint:
        try:
            return self._service().endpoint
        except MsrpUnavailable as exc:
            raise StreamRefused(str(exc)) from None

    def _relay(self) -> RelaySettings | None:
        account = self.context.account
        if account is None:
            return None
        return self._service().relay_for(username=account.auth_username,
                                         password=account.password,
                                         domain=account.aor_uri.host)

    async def _reserve(self, relay: RelaySettings | None) -> None:
        endpoint = self._endpoint()
        try:
            self.reservation = await endpoint.reserve(use_relay=relay is not None, relay=relay)
        except MsrpConnectError as exc:
            raise StreamRefused(f"MSRP relay: {exc}") from None

    def _make_line(self, setup: Setup) -> MediaDescription:
        reservation = self.reservation
        assert reservation is not None
        ours = MsrpMedia(reservation.local_path, list(self.kind.accept_types),
                         list(self.kind.accept_wrapped_types), setup=setup,
                         fingerprints=reservation.fingerprints,
                         max_size=self._service().max_message_size)
        uri = reservation.local_uri
        line = MediaDescription.new(
            self.kind.media_type, uri.effective_port, media_protocol(reservation.local_path),
            ["*"], connection=Connection(uri.host, "IP6" if ":" in uri.host else "IP4"))
        for name, value in ours.attributes():
            line.add_attribute(name, value)
        for name, value in self.extra_attributes():
            line.add_attribute(name, value)
        self.local_media, self._line = ours, line
        return line.copy()

    def connect_options(self) -> dict[str, Any]:
        """How the kind's MSRP session is made (MsrpSession's options): a file receiver
        takes chunks as they come, confirms a message once stored, and has no size limit."""
        return {"accept_types": self.kind.accept_types,
                "max_message_size": self._service().max_message_size}

    def extra_attributes(self) -> list[tuple[str, str | None]]:
        """The kind's own a= lines (a=file-selector...)."""
        return []

    # -- the connection ------------------------------------------------------------------------
    async def start(self, local: MediaDescription, remote: MediaDescription) -> None:
        self.state = StreamState.ACTIVE
        try:
            reason = await self._connect_and_converse(remote)
        finally:
            self.connected.set()
        if reason is None or self.ending is not None:
            return
        if self.connection is not None:
            # The peer may have closed because it hangs up: its BYE comes beside the close.
            with trio.move_on_after(PEER_CLOSE_GRACE):
                await self._ended.wait()
        if self.ending is None:
            self._failed(reason)

    async def _connect_and_converse(self, remote: MediaDescription) -> str | None:
        """The reason the connection ended (None: we ended it before it was up)."""
        reservation, ours = self.reservation, self.local_media
        assert reservation is not None and ours is not None
        try:
            theirs = read_line(remote)
            active = connection_role(ours.setup or Setup.ACTPASS,
                                     answered_setup(theirs.setup, we_offered=self._we_offered),
                                     we_offered=self._we_offered)
        except MsrpParseError as exc:
            return f"{describe(remote)}: {exc.detail}"
        self.remote_media = theirs
        with trio.CancelScope() as self._connecting:
            try:
                connection = await reservation.connect(
                    theirs, active=active, **self.connect_options())
            except MsrpConnectError as exc:
                return f"MSRP: {exc}"
        self._connecting = None
        if self.ending is not None or self.state is StreamState.ENDED:
            return None
        self.connection = connection
        async with trio.open_nursery() as nursery:
            await nursery.start(connection.run)
            return await self.converse(connection, theirs)

    def relay_path_changed(self, path: list[MsrpUri]) -> None:
        """Our relay's refresh gave us a new Use-Path: our line says so, and the session
        tells the peer (the old path works until the old grant runs out)."""
        line, ours = self._line, self.local_media
        if line is None or ours is None or self.state is StreamState.ENDED:
            return
        ours.path = list(path)
        line = line.copy()
        line.set_attribute("path", format_path(path))
        self._line = line
        self.context.line_changed(self.index, line.copy())

    def takes_update(self, remote: MediaDescription) -> bool:
        """A re-offer that keeps the peer's own URI (its relays changed, say) is followed on
        the same connection; a new URI would be a new MSRP session, which we do not take."""
        if self.remote_media is None or remote.is_rejected or not remote.is_msrp:
            return False
        try:
            theirs = read_line(remote)
        except MsrpParseError:
            return False
        return theirs.path[-1].same_as(self.remote_media.path[-1])

    async def update(self, local: MediaDescription, remote: MediaDescription) -> None:
        try:
            theirs = read_line(remote)
        except MsrpParseError:
            return
        self.remote_media = theirs
        if self.connection is not None:
            self.connection.session.set_remote_path(theirs.path)

    @abstractmethod
    async def converse(self, connection: MsrpConnection, theirs: MsrpMedia) -> str:
        """The kind's life over its running connection: it sets `connected` once the user
        may use it, and returns why the connection ended (once its ConnectionClosed came)."""

    def _failed(self, reason: str) -> None:
        self.failure = reason
        log.info("session %s: %s stream failed: %s", self.context.session_id, self.kind.name,
                 reason)
        self.context.fail(reason)

    async def end(self, reason: str | None = None) -> None:
        self.ending = reason or "ended"
        self.state = StreamState.ENDED
        self._ended.set()
        if self._connecting is not None:
            self._connecting.cancel()
        if self.connection is not None:
            await self.connection.close(self.ending)
        elif self.reservation is not None:
            await self.reservation.aclose()
        self.connected.set()

