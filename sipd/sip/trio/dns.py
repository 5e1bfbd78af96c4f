"""The DNS half of RFC 3263 server location: typed NAPTR/SRV/address records, a TTL cache and one
query function that never raises for what the DNS answers (see `locator.py` for the rules).

dnspython's `dns.asyncresolver` runs under trio (it picks its trio backend through sniffio);
its own cache is switched off in favour of `DnsCache`, which also caches negative answers and
reads time from the locator's clock.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, NamedTuple, Sequence, Union

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

log = logging.getLogger(__name__)


class NaptrRecord(NamedTuple):
    order: int
    preference: int
    flags: str  # lower case: "s" means "the replacement is an SRV name"
    service: str  # upper case, e.g. "SIP+D2U", "SIPS+D2T"
    replacement: str  # without the trailing dot; "" for "."


class SrvRecord(NamedTuple):
    priority: int
    weight: int
    port: int
    target: str  # without the trailing dot; "" for "." (service decidedly not available)


Record = Union[NaptrRecord, SrvRecord, str]  # str: an address of an A or AAAA record


@dataclass(frozen=True)
class DnsAnswer:
    """What one query brought: records, a negative answer (`negative` says which) or a
    failure that says nothing about the name (`failure`: "timeout", "dns-failure", or
    "bad-name" when the name cannot be put in a query)."""

    name: str
    rdtype: str
    records: tuple[Record, ...] = ()
    negative: str | None = None  # "NXDOMAIN" or "no records"
    failure: str | None = None
    detail: str = ""
    cached: bool = False

    @property
    def nxdomain(self) -> bool:
        return self.negative == "NXDOMAIN"

    def describe(self) -> str:
        """One line for logs and error messages, e.g. `SRV _sip._udp.example.test: NXDOMAIN`."""
        if self.failure:
            outcome = f"{self.failure} ({self.detail})" if self.detail else self.failure
        elif self.negative:
            outcome = self.negative
        else:
            outcome = ", ".join(_describe_record(r) for r in self.records)
        return f"{self.rdtype} {self.name}: {outcome}{' [cached]' if self.cached else ''}"


def _describe_record(record: Record) -> str:
    if isinstance(record, NaptrRecord):
        return f"{record.order} {record.preference} {record.flags.upper() or '-'} " \
               f"{record.service} {record.replacement or '.'}"
    if isinstance(record, SrvRecord):
        return f"{record.priority} {record.weight} {record.port} {record.target or '.'}"
    return record


class DnsCache:
    """Answers by (name, type) until their TTL runs out, capped at `max_ttl`; negative answers
    for `negative_ttl` (less when the zone's SOA says so, RFC 2308). At most `max_entries`
    entries: the least recently used one goes first. Failures are never cached."""

    def __init__(self, *, max_entries: int, max_ttl: float, negative_ttl: float,
                 clock: Callable[[], float]) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self.clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, DnsAnswer]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, rdtype: str) -> DnsAnswer | None:
        key = (name, rdtype)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, answer = entry
        if self.clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return answer

    def put(self, answer: DnsAnswer, ttl: float) -> None:
        if answer.failure:
            return
        cap = self.negative_ttl if answer.negative else self.max_ttl
        ttl = min(ttl, cap)
        if ttl <= 0:
            return  # TTL 0: use once, keep never (dnsmasq serves its local records so)
        key = (answer.name, answer.rdtype)
        self._entries[key] = (self.clock() + ttl, answer)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def make_resolver(nameservers: Sequence[tuple[str, int]] | None,
                  timeout: float) -> dns.asyncresolver.Resolver:
    """A resolver that asks `nameservers` only, or the system's (resolv.conf) when None."""
    if nameservers is None:
        resolver = dns.asyncresolver.Resolver()
    else:
        if not nameservers:
            raise ValueError("nameservers: at least one (host, port), or None for the system's")
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                                for host, port in nameservers]
    resolver.cache = None  # DnsCache does it, with negative answers and our clock
    resolver.lifetime = timeout
    resolver.timeout = min(2.0, timeout)  # per try: a lost UDP query is retried within lifetime
    return resolver


class DnsClient:
    """Queries through `resolver`, answers from `cache` when it can."""

    def __init__(self, resolver: dns.asyncresolver.Resolver, cache: DnsCache) -> None:
        self.resolver = resolver
        self.cache = cache

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        name = name.rstrip(".").lower()
        cached = self.cache.get(name, rdtype)
        if cached is not None:
            return cached
        answer, ttl = await self._ask(name, rdtype)
        log.debug("DNS %s (ttl %s)", answer.describe(), ttl)
        self.cache.put(replace(answer, cached=True), ttl)
        return answer

    async def _ask(self, name: str, rdtype: str) -> tuple[DnsAnswer, float]:
        try:
            qname = dns.name.from_text(name)  # absolute: no search list is ever applied
        except dns.exception.DNSException as exc:  # label too long, empty label, ...
            return DnsAnswer(name, rdtype, failure="bad-name", detail=str(exc)), 0
        try:
            result = await self.resolver.resolve(qname, rdtype, search=False,
                                                 raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            ttl = _negative_ttl(exc.responses().values())  # type: ignore[no-untyped-call]
            return DnsAnswer(name, rdtype, negative="NXDOMAIN"), ttl
        except dns.exception.Timeout:
            return DnsAnswer(name, rdtype, failure="timeout",
                             detail=f"no answer within {self.resolver.lifetime:g} s"), 0
        except dns.resolver.NoNameservers as exc:
            return DnsAnswer(name, rdtype, failure="dns-failure", detail=_server_errors(exc)), 0
        except dns.exception.DNSException as exc:  # bad name, YXDOMAIN, ...
            return DnsAnswer(name, rdtype, failure="dns-failure", detail=str(exc)), 0
        if result.rrset is None:
            return DnsAnswer(name, rdtype, negative="no records"), \
                _negative_ttl([result.response])
        records = tuple(_convert(rdata) for rdata in result.rrset)
        return DnsAnswer(name, rdtype, records), result.chaining_result.minimum_ttl


def _convert(rdata: Any) -> Record:
    if rdata.rdtype == dns.rdatatype.NAPTR:
        return NaptrRecord(rdata.order, rdata.preference,
                           rdata.flags.decode("ascii", "replace").lower(),
                           rdata.service.decode("ascii", "replace").upper(),
                           _host_name(rdata.replacement))
    if rdata.rdtype == dns.rdatatype.SRV:
        return SrvRecord(rdata.priority, rdata.weight, rdata.port, _host_name(rdata.target))
    return str(rdata.address)


def _host_name(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower() if name != dns.name.root else ""


def _negative_ttl(responses: Iterable[Any]) -> float:
    """The SOA's word on how long a negative answer holds (RFC 2308 §5); infinity when the
    response has no SOA (dnsmasq sends none): the cache's own `negative_ttl` applies then."""
    ttls = [min(rrset.ttl, rrset[0].minimum)
            for response in responses
            if isinstance(response, dns.message.Message)
            for rrset in response.authority
            if rrset.rdtype == dns.rdatatype.SOA and len(rrset)]
    return min(ttls, default=float("inf"))


def _server_errors(exc: dns.resolver.NoNameservers) -> str:
    """What each server said, e.g. `Do53:127.0.0.1@53: answered REFUSED`."""
    parts = [f"{server}: {error}" for server, _tcp, _port, error, _answer
             in exc.kwargs.get("errors", [])]
    return "; ".join(parts) or str(exc)
