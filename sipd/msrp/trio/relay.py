"""Reaching an MSRP relay (RFC 4976): find it (configured URIs in order, or SRV
`_msrps._tcp.<domain>` for "auto"), connect over TCP or TLS (the relay's certificate verified
like any server's), AUTH with digest, and keep the authenticated connection for the session.
A relay that cannot be reached, refuses the TLS handshake or the AUTH is left for the next one;
the error names every relay tried and why it failed."""

from __future__ import annotations

import logging
import random
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ...sip.auth import Credentials
from ...sip.trio.dns import DnsCache, DnsClient, SrvRecord, make_resolver
from ...sip.trio.locator import order_srv
from ..errors import MsrpParseError
from ..message import MsrpResponse
from ..parser import Frame, FrameError, FrameParser
from ..relay import RelayAuthClient, RelayGranted, RelayRefused
from ..uri import DEFAULT_PORT, MsrpUri, parse_uri
from .connection import MsrpConnectError
from .tls import TlsIdentity, relay_context
from .tls_stream import TlsStream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelaySettings:
    """`relays`: relay URIs tried in order (`msrps://relay.example.com;tcp`), or ["auto"] for
    SRV `_msrps._tcp.<domain>` (the account's domain); `credentials` for AUTH."""

    relays: tuple[str, ...]
    credentials: Credentials | None = None
    domain: str | None = None
    ca_file: str | Path | None = None
    verify_tls: bool = True
    nameservers: Sequence[tuple[str, int]] | None = None
    expires: int | None = None
    timeout: float = 30.0


@dataclass
class RelayCandidate:
    uri: MsrpUri  # the AUTH's To-Path and digest-uri
    host: str  # where to connect
    port: int


@dataclass
class RelayLink:
    """An authenticated connection to a relay, ready to carry a session."""

    stream: trio.abc.Stream
    parser: FrameParser
    client: RelayAuthClient
    granted: RelayGranted
    description: str
    early_frames: list[Frame | FrameError] = field(default_factory=list)


async def relay_candidates(settings: RelaySettings) -> list[RelayCandidate]:
    candidates: list[RelayCandidate] = []
    for text in settings.relays:
        if text.strip().lower() == "auto":
            candidates += await _srv_candidates(settings)
            continue
        try:
            uri = parse_uri(text.strip())
        except MsrpParseError as exc:
            raise MsrpConnectError(f"msrp.relay {text!r}: {exc.detail}") from None
        candidates.append(RelayCandidate(uri, uri.host, uri.effective_port))
    return candidates


async def _srv_candidates(settings: RelaySettings) -> list[RelayCandidate]:
    if not settings.domain:
        raise MsrpConnectError("msrp.relay is auto but the account has no domain to look up")
    domain = settings.domain
    dns = DnsClient(make_resolver(settings.nameservers, 5.0),
                    DnsCache(max_entries=16, max_ttl=300, negative_ttl=30,
                             clock=trio.current_time))
    name = f"_msrps._tcp.{domain}"
    answer = await dns.query(name, "SRV")
    relay = MsrpUri(host=domain, secure=True)
    records = [r for r in answer.records if isinstance(r, SrvRecord) and r.target]
    if not records:
        log.info("no MSRP relay by SRV (%s); trying %s:%s", answer.describe(), domain,
                 DEFAULT_PORT)
        return [RelayCandidate(relay, domain, DEFAULT_PORT)]
    candidates = []
    for record in order_srv(records, random.Random()):
        # the target's addresses through the same servers the SRV came from
        addresses = await dns.query(record.target, "A")
        for address in addresses.records:
            if isinstance(address, str):
                candidates.append(RelayCandidate(relay, address, record.port))
        if not addresses.records:
            log.info("MSRP relay %s has no address: %s", record.target, addresses.describe())
    return candidates


async def open_relay_link(settings: RelaySettings, local_uri: MsrpUri,
                          identity: TlsIdentity | None) -> RelayLink:
    """Tries the relays in order; MsrpConnectError naming each failure when none works."""
    failures = []
    for candidate in await relay_candidates(settings):
        where = f"{candidate.uri} at {candidate.host}:{candidate.port}"
        try:
            with trio.fail_after(settings.timeout):
                return await _link(settings, candidate, local_uri, identity)
        except trio.TooSlowError:
            failures.append(f"{where}: no answer within {settings.timeout:g} s")
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            failures.append(f"{where}: {exc}")
        except MsrpConnectError as exc:
            failures.append(f"{where}: {exc}")
    if not failures:
        raise MsrpConnectError("no MSRP relay configured")
    raise MsrpConnectError("no MSRP relay could be used: " + "; ".join(failures))


async def _link(settings: RelaySettings, candidate: RelayCandidate, local_uri: MsrpUri,
                identity: TlsIdentity | None) -> RelayLink:
    tcp = await trio.open_tcp_stream(candidate.host, candidate.port)
    stream: trio.abc.Stream = tcp
    try:
        if candidate.uri.secure:
            context = relay_context(identity, ca_file=settings.ca_file,
                                    verify=settings.verify_tls)
            stream = TlsStream(tcp, context, server_hostname=candidate.uri.host)
            try:
                await stream.do_handshake()
            except trio.BrokenResourceError as exc:
                raise MsrpConnectError(f"TLS handshake failed: {exc.__cause__ or exc}") from exc
        client = RelayAuthClient(candidate.uri, local_uri, settings.credentials,
                                 expires=settings.expires, timeout=settings.timeout)
        parser = FrameParser()
        await stream.send_all(client.start(trio.current_time()))
        early: list[Frame | FrameError] = []
        while True:
            data = await stream.receive_some(65536)
            if not data:
                raise MsrpConnectError("the relay closed the connection during AUTH")
            for frame in parser.feed(data):
                if isinstance(frame, FrameError) and frame.fatal:
                    raise MsrpConnectError(f"the relay sent unusable data: {frame.detail}")
                if isinstance(frame, MsrpResponse) and client.owns(frame.transaction_id):
                    more = client.handle_response(frame, trio.current_time())
                    if more:
                        await stream.send_all(more)
                else:
                    early.append(frame)
            for event in client.events():
                if isinstance(event, RelayRefused):
                    raise MsrpConnectError(event.reason)
                if isinstance(event, RelayGranted):
                    log.info("MSRP relay %s granted %s for %s s", candidate.uri,
                             " ".join(map(str, event.use_path)), event.expires)
                    return RelayLink(stream, parser, client, event,
                                     f"relay {candidate.host}:{candidate.port}", early)
    except BaseException:
        with trio.CancelScope(shield=True):
            await stream.aclose()
        raise
