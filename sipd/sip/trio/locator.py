"""RFC 3263 server location: from a sip: or sips: URI to the ordered list of (transport,
address, port) targets a client tries in turn.

    locator = Locator([("127.0.0.1", 5353)])        # nameservers; None: the system's resolv.conf
    targets = await locator.locate("sip:alice@example.test")

Rules (RFC 3263 §4), for TARGET = the URI's maddr, else its host:
- a sips: URI uses TLS only; a transport parameter picks the transport (sips + tcp means TLS);
- TARGET an IP address: no DNS at all; transport from the parameter, else UDP (sip:) or TLS
  (sips:); port from the URI, else 5060 (UDP, TCP) or 5061 (TLS);
- a port in the URI: A/AAAA of TARGET only, no NAPTR, no SRV;
- a transport parameter and no port: SRV for that transport, else A/AAAA at the default port;
- otherwise NAPTR of TARGET: the SIP+D2U, SIP+D2T and SIPS+D2T records this client can use
  (SIPS+D2T only for sips:), by order then preference, each through its SRV to A/AAAA. Without
  NAPTR: SRV for each supported transport, most preferred first (`_sips._tcp`, `_sip._tcp`,
  `_sip._udp` by default). Without SRV either: A/AAAA, UDP (sip:) or TLS (sips:), default port.
SRV records are ordered by priority, then by weighted random choice (RFC 2782), afresh on every
call. The addresses of one host come in `ip_versions` order (IPv4 first by default).

Failover (RFC 3263 §4.3): the list holds every candidate. Send to the first target; when that
fails with a transport error (refused, reset, unreachable, TLS handshake failure), a transaction
timeout (Timer B or F) or a 503 response, send again to the next target in a *new* transaction
(new branch):

    for target in await locator.locate(uri):
        try:
            return await send_in_new_transaction(request, target)
        except (TransportError, TransactionTimeout):
            locator.mark_failed(target)   # later locate() calls try it last, for a while
    raise ...                             # every target failed

`mark_failed` only reorders: for `failure_hold` seconds the target comes after the healthy
ones, so a lone server is still tried. `mark_succeeded` forgets the failure at once.

TLS: `Target.server_name` is the name to send as SNI and to verify the certificate against: the
URI's host, never a name learned from unsigned DNS (RFC 5922 §4). `Target.host` is the name the
address was found for (an SRV target, or the URI's host), for logs.

Queries of one stage (SRV of several services, A and AAAA of several hosts) run concurrently;
the stages NAPTR, SRV, A/AAAA follow each other, so a dead name server costs up to three
`timeout`s (wrap locate() in a cancel scope for a tighter bound). Answers are cached per record
for their TTL (at most `max_ttl`), negative ones (NXDOMAIN, no records) for `negative_ttl`;
timeouts and server failures never. Errors are `LocationError`s that say what was looked up
and why nothing usable came of it.
"""

from __future__ import annotations

import ipaddress
import logging
import random as random_module
from dataclasses import dataclass
from functools import partial
from typing import Awaitable, Callable, Sequence, TypeVar

import trio

from ..errors import SipParseError
from .dns import (
    DnsAnswer,
    DnsCache,
    DnsClient,
    NaptrRecord,
    SrvRecord,
    make_resolver,
)
from ..uri import SipUri, format_host, parse_host, parse_sip_uri

__all__ = ["LocationError", "Locator", "Target", "order_srv", "NaptrRecord", "SrvRecord"]

log = logging.getLogger(__name__)

TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}
# NAPTR service field -> transport (RFC 3263 §4.1); SCTP and WebSocket ones are not ours.
NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
SRV_PREFIX = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """One place to send a request to."""

    transport: str  # "udp", "tcp" or "tls"
    host: str  # the name `address` was found for (SRV target, URI host), or the IP itself
    address: str  # IPv4 or IPv6 address, IPv6 without brackets
    port: int
    server_name: str  # what TLS sends as SNI and verifies: the URI's host (RFC 5922 §4)

    @property
    def key(self) -> tuple[str, str, int]:
        """What identifies the destination (for failure marks, de-duplication)."""
        return self.transport, self.address, self.port

    @property
    def sockaddr(self) -> tuple[str, int]:
        return self.address, self.port

    def __str__(self) -> str:
        return f"{self.transport}:{format_host(self.address)}:{self.port}"


class LocationError(Exception):
    """No target could be found for a URI. `reason` is one of the constants below, `detail`
    says what went wrong, `lookups` lists the DNS queries made and their outcomes."""

    BAD_URI = "bad-uri"  # not a sip:/sips: URI, or an invalid host name
    NO_TRANSPORT = "no-transport"  # the URI or the domain asks for a transport we cannot use
    NXDOMAIN = "nxdomain"  # the URI's host does not exist
    NO_ADDRESS = "no-address"  # the names exist, but lead to no address
    TIMEOUT = "timeout"  # a name server did not answer in time
    DNS_FAILURE = "dns-failure"  # a name server answered SERVFAIL, REFUSED, ...

    def __init__(self, uri: str, reason: str, detail: str, lookups: Sequence[str] = ()) -> None:
        self.uri = uri
        self.reason = reason
        self.detail = detail
        self.lookups = tuple(lookups)
        text = f"cannot locate {uri}: {detail}"
        if self.lookups:
            text += " (looked up: " + "; ".join(self.lookups) + ")"
        super().__init__(text)


def order_srv(records: Sequence[SrvRecord], rng: random_module.Random) -> list[SrvRecord]:
    """RFC 2782 order: lowest priority first; within a priority, repeatedly pick one at random
    with a chance proportional to its weight (weight 0 records first, so they get a small
    chance). The "." target is kept (the caller skips it)."""
    ordered: list[SrvRecord] = []
    for priority in sorted({r.priority for r in records}):
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight != 0)
        while group:
            pick = rng.randint(0, sum(r.weight for r in group))
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    break
            ordered.append(group.pop(index))
    return ordered


def _ip_literal(host: str) -> str | None:
    """The address when `host` is an IPv4 or IPv6 address (brackets allowed), else None."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


async def _gather(jobs: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Runs the jobs concurrently; their results in the order of `jobs`."""
    if len(jobs) == 1:
        return [await jobs[0]()]
    results: list[T] = [None] * len(jobs)  # type: ignore[list-item]

    async def run(index: int) -> None:
        results[index] = await jobs[index]()

    async with trio.open_nursery() as nursery:
        for index in range(len(jobs)):
            nursery.start_soon(run, index)
    return results


class Locator:
    """Finds the targets of SIP URIs (see the module documentation).

    `nameservers`: (address, port) pairs asked, in order; None reads the system's resolv.conf.
    `supported`: the transports this client can use, most preferred first (it orders the SRV
    queries made when a domain has no NAPTR records). `ip_versions`: which address records to
    ask for, preferred first. `timeout`: seconds one DNS query may take, retries included.
    `clock`: seconds, monotonic (for TTLs and failure marks). `random`: for SRV weights.
    """

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] | None = None,
        *,
        supported: Sequence[str] = ("tls", "tcp", "udp"),
        ip_versions: Sequence[int] = (4, 6),
        timeout: float = 5.0,
        clock: Callable[[], float] = trio.current_time,
        random: random_module.Random | None = None,
        cache_size: int = 1000,
        max_ttl: float = 3600.0,
        negative_ttl: float = 30.0,
        failure_hold: float = 60.0,
    ) -> None:
        supported = tuple(t.lower() for t in supported)
        if not supported or len(set(supported)) != len(supported) or \
                not set(supported) <= set(TRANSPORTS):
            raise ValueError(f"supported: distinct transports among {TRANSPORTS}, got {supported}")
        ip_versions = tuple(ip_versions)
        if not ip_versions or not set(ip_versions) <= {4, 6} or \
                len(set(ip_versions)) != len(ip_versions):
            raise ValueError(f"ip_versions: 4 and/or 6, got {ip_versions}")
        self.supported = supported
        self.ip_versions = ip_versions
        self.clock = clock
        self.random = random if random is not None else random_module.Random()
        self.failure_hold = failure_hold
        self.cache = DnsCache(max_entries=cache_size, max_ttl=max_ttl,
                              negative_ttl=negative_ttl, clock=clock)
        self.dns = DnsClient(make_resolver(nameservers, timeout), self.cache)
        self._failed: dict[tuple[str, str, int], float] = {}
        self._max_failed = cache_size

    # -- failover ----------------------------------------------------------------------------
    def mark_failed(self, target: Target, hold: float | None = None) -> None:
        """`target` failed (transport error or timeout): put it last for `hold` seconds."""
        now = self.clock()
        if len(self._failed) >= self._max_failed:
            self._failed = {k: until for k, until in self._failed.items() if until > now}
            while len(self._failed) >= self._max_failed:  # all still held: drop the oldest
                del self._failed[next(iter(self._failed))]
        self._failed.pop(target.key, None)
        self._failed[target.key] = now + (self.failure_hold if hold is None else hold)

    def mark_succeeded(self, target: Target) -> None:
        self._failed.pop(target.key, None)

    def is_failed(self, target: Target) -> bool:
        until = self._failed.get(target.key)
        return until is not None and self.clock() < until

    def _healthy_first(self, targets: list[Target]) -> list[Target]:
        seen: set[tuple[str, str, int]] = set()
        unique = []
        for target in targets:  # the same destination twice (two SRV names): the first counts
            if target.key not in seen:
                seen.add(target.key)
                unique.append(target)
        if not self._failed:
            return unique
        return [t for t in unique if not self.is_failed(t)] + \
            [t for t in unique if self.is_failed(t)]

    # -- location ----------------------------------------------------------------------------
    async def locate(self, uri: SipUri | str) -> list[Target]:
        """All targets for `uri`, in the order to try them. Raises LocationError."""
        if isinstance(uri, str):
            text = uri
            try:
                uri = parse_sip_uri(text.strip())
            except SipParseError as exc:
                raise LocationError(text, LocationError.BAD_URI, exc.detail) from None
        run = _Run(self, uri)
        targets = await run.locate()
        if not targets:
            raise run.error()
        log.debug("located %s: %s", uri, ", ".join(map(str, targets)))
        return self._healthy_first(targets)


class _Run:
    """One locate() call: the URI, the lookups made so far (for the error message)."""

    def __init__(self, locator: Locator, uri: SipUri) -> None:
        self.locator = locator
        self.uri = uri
        shown = uri.without_headers()
        shown.password = None  # error messages and logs never carry it
        self.text = str(shown)
        self._slots: list[DnsAnswer | None] = []  # in the order the queries were made
        self.host = self._target_host()
        # Transports usable for this URI, in the client's preference order.
        self.allowed = ("tls",) if uri.secure else locator.supported
        if uri.secure and "tls" not in locator.supported:
            raise self._fail(LocationError.NO_TRANSPORT, "a sips: URI needs TLS, which is not "
                             f"among the supported transports ({', '.join(locator.supported)})")
        self.explicit = self._explicit_transport()

    @property
    def answers(self) -> list[DnsAnswer]:
        return [a for a in self._slots if a is not None]

    def _fail(self, reason: str, detail: str) -> LocationError:
        return LocationError(self.text, reason, detail, [a.describe() for a in self.answers])

    def _target_host(self) -> str:
        maddr = self.uri.maddr
        if maddr is not None:
            try:
                maddr = parse_host(maddr, "maddr")
            except SipParseError as exc:
                raise self._fail(LocationError.BAD_URI, exc.detail) from None
        return (maddr or self.uri.host).lower().rstrip(".")

    def _explicit_transport(self) -> str | None:
        param = self.uri.transport
        if param is None:
            return None
        transport = "tls" if self.uri.secure and param == "tcp" else param
        if self.uri.secure and transport != "tls":
            raise self._fail(LocationError.NO_TRANSPORT,
                             f"transport={param} cannot carry a sips: URI (TLS only)")
        if transport not in self.locator.supported:
            raise self._fail(LocationError.NO_TRANSPORT,
                             f"transport={param} is not supported "
                             f"(supported: {', '.join(self.locator.supported)})")
        return transport

    def _default_transport(self) -> str:
        """UDP for sip:, TLS for sips: (RFC 3263 §4.1), if this client has it."""
        if self.uri.secure:
            return "tls"
        return "udp" if "udp" in self.allowed else self.allowed[0]

    def _target(self, transport: str, host: str, address: str, port: int) -> Target:
        return Target(transport, host, address, port, self.uri.host)

    async def locate(self) -> list[Target]:
        address = _ip_literal(self.host)
        if address is not None:  # no DNS at all
            transport = self.explicit or self._default_transport()
            port = DEFAULT_PORT[transport] if self.uri.port is None else self.uri.port
            return [self._target(transport, address, address, port)]
        if self.uri.port is not None:
            transport = self.explicit or self._default_transport()
            return await self.addresses(self.host, transport, self.uri.port)
        if self.explicit is not None:
            return await self.via_srv([(self.explicit, self.srv_name(self.explicit))],
                                      self.explicit)
        return await self.via_naptr()

    def srv_name(self, transport: str) -> str:
        return f"{SRV_PREFIX[transport]}.{self.host}"

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        slot = len(self._slots)
        self._slots.append(None)
        answer = await self.locator.dns.query(name, rdtype)
        self._slots[slot] = answer
        return answer

    async def via_naptr(self) -> list[Target]:
        naptr = await self.query(self.host, "NAPTR")
        if naptr.failure:  # unknown which transports the domain offers: do not guess
            raise self.error()
        records = sorted((r for r in naptr.records if isinstance(r, NaptrRecord)),
                         key=lambda r: (r.order, r.preference))
        if not records:
            services = [(t, self.srv_name(t)) for t in self.allowed]
            return await self.via_srv(services, self._default_transport())
        services = []
        for record in records:
            transport = NAPTR_SERVICES.get(record.service)
            if record.flags == "s" and transport in self.allowed and record.replacement and \
                    (transport, record.replacement) not in services:
                services.append((transport, record.replacement))
        if not services:
            offered = ", ".join(dict.fromkeys(f"{r.service} ({r.flags.upper() or '-'})"
                                              for r in records))
            usable = "/".join(self.allowed) + (" for a sips: URI" if self.uri.secure else "")
            raise self._fail(LocationError.NO_TRANSPORT,
                             f"{self.host} offers {offered} by NAPTR, none usable with {usable}")
        return await self.via_srv(services, services[0][0])

    async def via_srv(self, services: list[tuple[str, str]], fallback: str) -> list[Target]:
        """Targets of the SRV records of `services` ((transport, SRV name) pairs, preferred
        first); the host's A/AAAA with `fallback` at its default port when none exist."""
        answers = await _gather([partial(self.query, name, "SRV") for _, name in services])
        if not any(a.records for a in answers):
            if any(a.failure for a in answers):
                return []  # SRV may exist behind the failure: do not guess (error() says why)
            return await self.addresses(self.host, fallback, DEFAULT_PORT[fallback])
        chosen: list[tuple[str, SrvRecord]] = []
        for (transport, _), answer in zip(services, answers):
            records = [r for r in answer.records if isinstance(r, SrvRecord)]
            # A lone "." target: the service is decidedly not available (RFC 2782).
            chosen += [(transport, r) for r in order_srv(records, self.locator.random) if r.target]
        hosts = list(dict.fromkeys(r.target for _, r in chosen))
        resolved = dict(zip(hosts, await _gather([partial(self.resolve_host, h)
                                                  for h in hosts])))
        return [self._target(transport, r.target, address, r.port)
                for transport, r in chosen for address in resolved[r.target]]

    async def addresses(self, host: str, transport: str, port: int) -> list[Target]:
        return [self._target(transport, host, address, port)
                for address in await self.resolve_host(host)]

    async def resolve_host(self, host: str) -> list[str]:
        """The addresses of `host`, `ip_versions` order; [] when it has none or DNS failed."""
        literal = _ip_literal(host)  # not allowed in SRV targets, but harmless
        if literal is not None:
            return [literal]
        kinds = ["A" if version == 4 else "AAAA" for version in self.locator.ip_versions]
        answers = await _gather([partial(self.query, host, kind) for kind in kinds])
        return [address for answer in answers for address in answer.records
                if isinstance(address, str)]

    def error(self) -> LocationError:
        """Why the lookups made so far gave no target."""
        failures = [a for a in self.answers if a.failure]
        if failures:
            first = failures[0]
            if first.failure == "bad-name":
                return self._fail(LocationError.BAD_URI, f"{first.name}: {first.detail}")
            reason = LocationError.TIMEOUT if first.failure == "timeout" \
                else LocationError.DNS_FAILURE
            what = "did not answer" if first.failure == "timeout" else "failed"
            return self._fail(reason, f"the DNS {what} {first.rdtype} {first.name}"
                                      f"{f' ({first.detail})' if first.detail else ''}")
        if any(a.rdtype == "SRV" and a.records for a in self.answers):
            srv_targets = sorted({a.name for a in self.answers if a.rdtype in ("A", "AAAA")})
            if srv_targets:
                return self._fail(LocationError.NO_ADDRESS, f"no address for the SRV targets "
                                  f"of {self.host} ({', '.join(srv_targets)})")
            return self._fail(LocationError.NO_ADDRESS,
                              f"the SRV records of {self.host} say the service is not available")
        own = [a for a in self.answers if a.name == self.host]
        if own and all(a.nxdomain for a in own):
            return self._fail(LocationError.NXDOMAIN, f"{self.host} does not exist (NXDOMAIN)")
        return self._fail(LocationError.NO_ADDRESS, f"no address for {self.host}")
