"""RFC 3263 server location against a real dnsmasq on loopback (and without DNS where the rules
say none is needed).

Which queries the locator made is read from dnsmasq's query log: `queries()` sends a sentinel
query and waits for it to appear, so every query made before it is in the log by then.
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import dns.asyncresolver
import dns.nameserver
import dns.resolver
import pytest
import trio

from sipd.sip.trio.dns import DnsAnswer, DnsCache
from sipd.sip.trio.locator import LocationError, Locator, SrvRecord, Target, order_srv
from sipd.sip.uri import parse_sip_uri
from tests.peers.dnsmasq import Dnsmasq, Naptr, Srv
from tests.peers.ports import free_port

# -- the test domain ------------------------------------------------------------------------
# example.test offers TLS, then TCP (two servers of equal priority and different weights, and
# a backup), then UDP, by NAPTR; an SCTP service comes first but no client here speaks SCTP.
EXAMPLE = dict(
    naptr=[
        Naptr("example.test", 5, 10, "S", "SIP+D2S", "", "_sip._sctp.example.test"),
        Naptr("example.test", 10, 10, "S", "SIPS+D2T", "", "_sips._tcp.example.test"),
        Naptr("example.test", 20, 10, "S", "SIP+D2T", "", "_sip._tcp.example.test"),
        Naptr("example.test", 30, 10, "S", "SIP+D2U", "", "_sip._udp.example.test"),
    ],
    srv=[
        Srv("_sip._sctp.example.test", "sctp.example.test", 5060, 10, 0),
        Srv("_sips._tcp.example.test", "tls.example.test", 15061, 10, 0),
        Srv("_sip._tcp.example.test", "big.example.test", 15060, 10, 75),
        Srv("_sip._tcp.example.test", "small.example.test", 15060, 10, 25),
        Srv("_sip._tcp.example.test", "backup.example.test", 25060, 20, 0),
        Srv("_sip._udp.example.test", "udp.example.test", 15062, 10, 0),
        # srv-only.example.test: SRV and no NAPTR
        Srv("_sip._udp.srv-only.example.test", "udp.example.test", 35060, 10, 0),
        Srv("_sip._tcp.srv-only.example.test", "backup.example.test", 35061, 10, 0),
        # broken.example.test: an SRV target without any address
        Srv("_sip._udp.broken.example.test", "nothing-here.example.test", 5060, 10, 0),
        # closed.example.test: target "." = "decidedly not available" (RFC 2782)
        Srv("_sip._udp.closed.example.test", ".", 0),
    ],
    a={
        "example.test": "127.0.0.10",
        "sctp.example.test": "127.0.0.9",
        "tls.example.test": "127.0.0.1",
        "big.example.test": "127.0.0.2",
        "small.example.test": "127.0.0.3",
        "backup.example.test": "127.0.0.4",
        "udp.example.test": "127.0.0.5",
        "plain.example.test": "127.0.0.6",  # A only: no NAPTR, no SRV
        "closed.example.test": "127.0.0.11",
        "dual.example.test": ["127.0.0.7", "::1"],
        "v6.example.test": "::1",
    },
)
# udp-only.test: its NAPTR offers UDP only, which a sips: URI cannot use.
UDP_ONLY = dict(
    naptr=[Naptr("udp-only.test", 10, 10, "S", "SIP+D2U", "", "_sip._udp.udp-only.test")],
    srv=[Srv("_sip._udp.udp-only.test", "sip.udp-only.test", 5060, 10, 0)],
    a={"sip.udp-only.test": "127.0.0.8"},
)


class TtlDnsmasq(Dnsmasq):
    """dnsmasq serves the records of its command line with TTL 0 unless told (--local-ttl)."""

    ttl = 60

    def argv(self) -> list[str]:
        return [*super().argv(), f"--local-ttl={self.ttl}"]


@pytest.fixture
def dns_server(dnsmasq_factory: Callable[..., Dnsmasq]) -> Dnsmasq:
    """The test domains, with TTL 0: nothing is cached."""
    return dnsmasq_factory(**_merge(EXAMPLE, UDP_ONLY),
                           local_domains=["example.test", "udp-only.test"])


@pytest.fixture
def dns_server_ttl60(peers: Any, tmp_path: Any) -> Dnsmasq:
    """The test domains with a TTL of 60 s, so that answers are cached."""
    server = TtlDnsmasq(tmp_path, **EXAMPLE)
    peers.add(server)
    return server.start()


def _merge(*zones: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {"naptr": [], "srv": [], "a": {}}
    for zone in zones:
        merged["naptr"] += zone["naptr"]
        merged["srv"] += zone["srv"]
        merged["a"].update(zone["a"])
    return merged


def locator_for(server: Dnsmasq, **kwargs: Any) -> Locator:
    kwargs.setdefault("random", random.Random(3263))
    kwargs.setdefault("timeout", 2.0)
    return Locator([(server.host, server.port)], **kwargs)


_sentinels = itertools.count()
_QUERY_LINE = re.compile(r"query\[(\w+)\] (\S+) from")


async def queries(server: Dnsmasq, since: int = 0) -> list[tuple[str, str]]:
    """(type, name) of every query the server got, from the `since`-th on (sentinels and the
    readiness probe left out)."""
    sentinel = f"sentinel-{next(_sentinels)}.example.test"
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(server.host, server.port)]
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve(sentinel, "A", search=False)
    with trio.fail_after(5):
        while True:
            seen = [(kind, name) for kind, name in _QUERY_LINE.findall(server.log_text())]
            if ("A", sentinel) in seen:
                break
            await trio.sleep(0.02)
    seen = seen[:seen.index(("A", sentinel))]
    return [q for q in seen if q[1] != "example.test" or q[0] != "SOA"
            if not q[1].startswith("sentinel-")][since:]


def summary(targets: list[Target]) -> list[tuple[str, str, str, int]]:
    return [(t.transport, t.host, t.address, t.port) for t in targets]


# -- NAPTR -> SRV -> A ---------------------------------------------------------------------
@pytest.mark.interop
async def test_naptr_then_srv_then_address_in_order(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    targets = await locator.locate("sip:alice@example.test")

    tcp_first = summary(targets)[1:3]
    assert sorted(tcp_first) == [("tcp", "big.example.test", "127.0.0.2", 15060),
                                 ("tcp", "small.example.test", "127.0.0.3", 15060)]
    assert summary(targets) == [
        ("tls", "tls.example.test", "127.0.0.1", 15061),  # NAPTR order 10
        *tcp_first,  # order 20, SRV priority 10
        ("tcp", "backup.example.test", "127.0.0.4", 25060),  # SRV priority 20
        ("udp", "udp.example.test", "127.0.0.5", 15062),  # NAPTR order 30
    ]  # and no SCTP target (SIP+D2S is not ours)
    # TLS verifies the domain of the URI, not a name learned from DNS (RFC 5922)
    assert {t.server_name for t in targets} == {"example.test"}
    made = await queries(dns_server)
    assert made[0] == ("NAPTR", "example.test")
    assert ("SRV", "_sip._sctp.example.test") not in made
    assert ("SRV", "_sip._udp.example.test") in made


@pytest.mark.interop
async def test_srv_weights_share_the_first_place(dns_server_ttl60: Dnsmasq) -> None:
    locator = locator_for(dns_server_ttl60, random=random.Random(2782))
    firsts: Counter[str] = Counter()

    for _ in range(400):
        tcp = [t.host for t in await locator.locate("sip:alice@example.test;transport=tcp")]
        assert tcp[-1] == "backup.example.test"  # priority 20 always after priority 10
        firsts[tcp[0]] += 1

    # weights 75 and 25: both come first, the heavier one about three times as often
    assert set(firsts) == {"big.example.test", "small.example.test"}
    assert 2 * firsts["small.example.test"] < firsts["big.example.test"] < \
        4 * firsts["small.example.test"]
    # the records were asked for once: the order is drawn again from the cache each time
    assert Counter(await queries(dns_server_ttl60))[("SRV", "_sip._tcp.example.test")] == 1


def test_order_srv_follows_rfc_2782() -> None:
    records = [SrvRecord(20, 0, 1, "backup"), SrvRecord(10, 10, 1, "a"),
               SrvRecord(10, 0, 1, "zero"), SrvRecord(10, 30, 1, "b")]

    class Fixed(random.Random):
        """randint returns 0: the first record whose running weight sum reaches 0."""

        def randint(self, a: int, b: int) -> int:
            return a

    # weight 0 first in its priority, so that it gets a (small) chance; priorities ascending
    assert [r.target for r in order_srv(records, Fixed())] == ["zero", "a", "b", "backup"]
    rng = random.Random(1)
    counts = Counter(order_srv(records, rng)[0].target for _ in range(2000))
    assert counts["b"] > 2 * counts["a"] > 0  # 30 vs 10
    assert counts["zero"] < counts["a"]
    assert order_srv([SrvRecord(5, 0, 1, "x"), SrvRecord(5, 0, 2, "y")], rng) == \
        [SrvRecord(5, 0, 1, "x"), SrvRecord(5, 0, 2, "y")]


# -- transports: sips:, supported, NAPTR filtering --------------------------------------------
@pytest.mark.interop
async def test_sips_uses_only_sips_naptr_records(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    targets = await locator.locate("sips:alice@example.test")

    assert summary(targets) == [("tls", "tls.example.test", "127.0.0.1", 15061)]
    assert targets[0].server_name == "example.test"


@pytest.mark.interop
async def test_naptr_records_of_unsupported_transports_are_skipped(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server, supported=("udp", "tcp"))

    targets = await locator.locate("sip:alice@example.test")

    assert {t.transport for t in targets} == {"tcp", "udp"}
    assert targets[-1].transport == "udp"  # NAPTR order, not our preference, decides


@pytest.mark.interop
async def test_sips_to_a_domain_without_tls_fails_clearly(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    with pytest.raises(LocationError) as caught:
        await locator.locate("sips:bob@udp-only.test")

    assert caught.value.reason == LocationError.NO_TRANSPORT
    assert "udp-only.test offers SIP+D2U" in str(caught.value)
    assert "NAPTR udp-only.test" in str(caught.value)  # what was looked up


# -- explicit port, transport, IP: no or fewer queries --------------------------------------
@pytest.mark.parametrize("uri, expected", [
    ("sip:alice@127.0.0.1", ("udp", "127.0.0.1", 5060)),
    ("sip:127.0.0.1:5070;transport=tcp", ("tcp", "127.0.0.1", 5070)),
    ("sip:127.0.0.1;transport=TLS", ("tls", "127.0.0.1", 5061)),
    ("sips:alice@127.0.0.1", ("tls", "127.0.0.1", 5061)),
    ("sips:127.0.0.1:6000;transport=tcp", ("tls", "127.0.0.1", 6000)),  # sips + tcp = TLS
    ("sip:[::1]:5080;transport=tcp", ("tcp", "::1", 5080)),
    ("sip:bob@[0:0::1]", ("udp", "::1", 5060)),
    ("sips:[::1]", ("tls", "::1", 5061)),
    ("sip:proxy.example.test;maddr=127.0.0.9;lr", ("udp", "127.0.0.9", 5060)),
    ("sip:proxy.example.test:5090;maddr=[::1]", ("udp", "::1", 5090)),
])
async def test_ip_address_targets_need_no_dns(uri: str, expected: tuple[str, str, int]) -> None:
    # the only name server configured is a closed port: any query would time out
    locator = Locator([("127.0.0.1", free_port())], timeout=0.3)

    (target,) = await locator.locate(uri)

    assert (target.transport, target.address, target.port) == expected
    assert target.server_name == parse_sip_uri(uri).host  # maddr is where, not who


async def test_a_dead_name_server_is_a_timeout() -> None:
    # the counterpart of the test above: a name does need the (closed) name server
    locator = Locator([("127.0.0.1", free_port())], timeout=0.3)

    with pytest.raises(LocationError) as caught:
        await locator.locate("sip:alice@example.test")

    assert caught.value.reason == LocationError.TIMEOUT
    assert "did not answer NAPTR example.test" in str(caught.value)


@pytest.mark.interop
async def test_explicit_port_asks_for_addresses_only(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    targets = await locator.locate("sip:alice@example.test:5070")
    secure = await locator.locate("sips:alice@example.test:5071")

    assert summary(targets) == [("udp", "example.test", "127.0.0.10", 5070)]
    assert summary(secure) == [("tls", "example.test", "127.0.0.10", 5071)]
    assert set(await queries(dns_server)) == {("A", "example.test"), ("AAAA", "example.test")}


@pytest.mark.interop
async def test_explicit_transport_asks_for_its_srv_only(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    targets = await locator.locate("sip:alice@example.test;transport=udp")

    assert summary(targets) == [("udp", "udp.example.test", "127.0.0.5", 15062)]
    made = await queries(dns_server)
    assert made[0] == ("SRV", "_sip._udp.example.test")
    assert not [q for q in made if q[0] == "NAPTR"]


@pytest.mark.interop
async def test_explicit_transport_without_srv_uses_the_default_port(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    targets = await locator.locate("sip:plain.example.test;transport=tcp")

    assert summary(targets) == [("tcp", "plain.example.test", "127.0.0.6", 5060)]


# -- fallbacks: SRV without NAPTR, A without SRV ------------------------------------------
@pytest.mark.interop
async def test_without_naptr_srv_is_asked_in_our_preference_order(dns_server: Dnsmasq) -> None:
    default = await locator_for(dns_server).locate("sip:srv-only.example.test")
    udp_first = await locator_for(dns_server, supported=("udp", "tcp")).locate(
        "sip:srv-only.example.test")

    assert summary(default) == [("tcp", "backup.example.test", "127.0.0.4", 35061),
                                ("udp", "udp.example.test", "127.0.0.5", 35060)]
    assert summary(udp_first) == summary(default)[::-1]
    made = await queries(dns_server)
    assert ("SRV", "_sips._tcp.srv-only.example.test") in made  # TLS was tried first
    assert made.count(("SRV", "_sips._tcp.srv-only.example.test")) == 1  # not without TLS


@pytest.mark.interop
async def test_without_srv_the_address_and_default_port(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    sip = await locator.locate("sip:plain.example.test")
    sips = await locator.locate("sips:plain.example.test")

    assert summary(sip) == [("udp", "plain.example.test", "127.0.0.6", 5060)]
    assert summary(sips) == [("tls", "plain.example.test", "127.0.0.6", 5061)]
    assert sips[0].server_name == "plain.example.test"


@pytest.mark.interop
async def test_ipv4_and_ipv6_addresses(dns_server: Dnsmasq) -> None:
    both = await locator_for(dns_server).locate("sip:dual.example.test")
    v6_first = await locator_for(dns_server, ip_versions=(6, 4)).locate("sip:dual.example.test")
    v4_only = await locator_for(dns_server, ip_versions=(4,)).locate("sip:dual.example.test")
    v6_only_host = await locator_for(dns_server).locate("sips:v6.example.test")

    assert [t.address for t in both] == ["127.0.0.7", "::1"]
    assert [t.address for t in v6_first] == ["::1", "127.0.0.7"]
    assert [t.address for t in v4_only] == ["127.0.0.7"]
    assert summary(v6_only_host) == [("tls", "v6.example.test", "::1", 5061)]
    assert str(v6_only_host[0]) == "tls:[::1]:5061"


# -- errors -------------------------------------------------------------------------------
@pytest.mark.interop
async def test_nxdomain_is_a_location_error(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    with pytest.raises(LocationError) as caught:
        await locator.locate("sip:alice:secret@nowhere.example.test")

    error = caught.value
    assert error.reason == LocationError.NXDOMAIN
    assert "nowhere.example.test does not exist (NXDOMAIN)" in str(error)
    assert "NAPTR nowhere.example.test: NXDOMAIN" in error.lookups
    assert "A nowhere.example.test: NXDOMAIN" in error.lookups
    assert "secret" not in str(error)


@pytest.mark.interop
async def test_srv_target_without_address_is_a_location_error(dns_server: Dnsmasq) -> None:
    with pytest.raises(LocationError) as caught:
        await locator_for(dns_server).locate("sip:broken.example.test")

    assert caught.value.reason == LocationError.NO_ADDRESS
    assert "nothing-here.example.test" in caught.value.detail


@pytest.mark.interop
async def test_srv_target_dot_means_no_service(dns_server: Dnsmasq) -> None:
    with pytest.raises(LocationError) as caught:
        await locator_for(dns_server).locate("sip:closed.example.test")

    assert caught.value.reason == LocationError.NO_ADDRESS
    assert "not available" in caught.value.detail
    # SRV records exist, so the host's own address is no fallback
    assert ("A", "closed.example.test") not in await queries(dns_server)


@pytest.mark.interop
async def test_a_refusing_name_server_is_a_dns_failure(dns_server: Dnsmasq) -> None:
    # dnsmasq refuses names outside its local domains (it never forwards)
    with pytest.raises(LocationError) as caught:
        await locator_for(dns_server).locate("sip:alice@elsewhere.invalid")

    assert caught.value.reason == LocationError.DNS_FAILURE
    assert "REFUSED" in str(caught.value)


@pytest.mark.parametrize("uri, supported, reason", [
    ("tel:+15551234", ("tls", "tcp", "udp"), LocationError.BAD_URI),
    ("sip:", ("tls", "tcp", "udp"), LocationError.BAD_URI),
    ("sip:a@host;maddr=bad_host!", ("tls", "tcp", "udp"), LocationError.BAD_URI),
    ("sip:a@" + "x" * 64 + ".example.test", ("tls", "tcp", "udp"), LocationError.BAD_URI),
    ("sips:127.0.0.1;transport=udp", ("tls", "tcp", "udp"), LocationError.NO_TRANSPORT),
    ("sip:127.0.0.1;transport=sctp", ("tls", "tcp", "udp"), LocationError.NO_TRANSPORT),
    ("sip:127.0.0.1;transport=tcp", ("udp",), LocationError.NO_TRANSPORT),
    ("sips:127.0.0.1", ("udp", "tcp"), LocationError.NO_TRANSPORT),
])
async def test_unusable_uris_fail_without_dns(uri: str, supported: tuple[str, ...],
                                              reason: str) -> None:
    locator = Locator([("127.0.0.1", free_port())], supported=supported, timeout=0.3)

    with pytest.raises(LocationError) as caught:
        await locator.locate(uri)

    assert caught.value.reason == reason
    assert not any("timeout" in lookup for lookup in caught.value.lookups)  # nothing was sent


def test_locator_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        Locator([("127.0.0.1", 53)], supported=("udp", "sctp"))
    with pytest.raises(ValueError):
        Locator([("127.0.0.1", 53)], ip_versions=(5,))
    with pytest.raises(ValueError):
        Locator([])


# -- caching ------------------------------------------------------------------------------
@pytest.mark.interop
async def test_cached_answers_outlive_the_name_server(dns_server_ttl60: Dnsmasq) -> None:
    locator = locator_for(dns_server_ttl60, timeout=0.5)
    first = await locator.locate("sips:alice@example.test")
    with pytest.raises(LocationError):
        await locator.locate("sip:nowhere.example.test")

    dns_server_ttl60.stop()

    assert await locator.locate("sips:alice@example.test") == first
    with pytest.raises(LocationError) as caught:  # negative answers are cached too
        await locator.locate("sip:nowhere.example.test")
    assert caught.value.reason == LocationError.NXDOMAIN
    assert "[cached]" in str(caught.value)


@pytest.mark.interop
async def test_answers_expire_with_their_ttl(dns_server_ttl60: Dnsmasq) -> None:
    now = [1000.0]
    locator = locator_for(dns_server_ttl60, clock=lambda: now[0], negative_ttl=5)
    uri = "sips:alice@example.test"
    await locator.locate(uri)
    with pytest.raises(LocationError):
        await locator.locate("sip:nowhere.example.test")
    asked = len(await queries(dns_server_ttl60))

    now[0] += 4  # both still fresh
    await locator.locate(uri)
    with pytest.raises(LocationError):
        await locator.locate("sip:nowhere.example.test")
    assert await queries(dns_server_ttl60, asked) == []

    now[0] += 2  # the negative answers (5 s) expired, the records (60 s) did not
    with pytest.raises(LocationError):
        await locator.locate("sip:nowhere.example.test")
    await locator.locate(uri)
    again = await queries(dns_server_ttl60, asked)
    assert ("NAPTR", "nowhere.example.test") in again
    assert ("AAAA", "tls.example.test") in again  # "no AAAA record" is negative, too
    assert not {("NAPTR", "example.test"), ("SRV", "_sips._tcp.example.test"),
                ("A", "tls.example.test")} & set(again)
    asked += len(again)

    now[0] += 60  # past the TTL: asked again
    await locator.locate(uri)
    assert ("NAPTR", "example.test") in await queries(dns_server_ttl60, asked)


@pytest.mark.interop
async def test_ttl_zero_is_not_cached(dns_server: Dnsmasq) -> None:
    locator = locator_for(dns_server)

    await locator.locate("sip:plain.example.test:5060")
    await locator.locate("sip:plain.example.test:5060")

    assert Counter(await queries(dns_server))[("A", "plain.example.test")] == 2


def test_cache_caps_ttls_and_size() -> None:
    now = [0.0]
    cache = DnsCache(max_entries=2, max_ttl=10, negative_ttl=3, clock=lambda: now[0])
    cache.put(DnsAnswer("a.test", "A", ("127.0.0.1",)), 3600)
    cache.put(DnsAnswer("b.test", "A", negative="NXDOMAIN"), float("inf"))
    cache.put(DnsAnswer("c.test", "A", failure="timeout"), 60)  # failures are never kept

    assert cache.get("c.test", "A") is None
    now[0] = 2.9
    assert cache.get("b.test", "A") is not None
    now[0] = 3.0
    assert cache.get("b.test", "A") is None  # negative TTL
    assert cache.get("a.test", "A") is not None
    now[0] = 10.0
    assert cache.get("a.test", "A") is None  # capped at max_ttl

    for name in ("x.test", "y.test", "z.test"):
        cache.put(DnsAnswer(name, "A", ("127.0.0.1",)), 5)
        cache.get("x.test", "A")  # x is used: y is the least recently used
    assert len(cache) == 2
    assert cache.get("y.test", "A") is None
    assert cache.get("x.test", "A") is not None and cache.get("z.test", "A") is not None


# -- failover -----------------------------------------------------------------------------
@pytest.mark.interop
async def test_a_failed_target_goes_last_for_a_while(dns_server: Dnsmasq) -> None:
    now = [0.0]
    locator = locator_for(dns_server, clock=lambda: now[0], failure_hold=30)
    first, second = await locator.locate("sip:dual.example.test")

    locator.mark_failed(first)

    assert await locator.locate("sip:dual.example.test") == [second, first]
    now[0] = 30.0
    assert await locator.locate("sip:dual.example.test") == [first, second]
    locator.mark_failed(first, hold=100)
    locator.mark_succeeded(first)
    assert await locator.locate("sip:dual.example.test") == [first, second]
