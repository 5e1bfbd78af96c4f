"""dnsmasq as the authoritative DNS server of a test domain, for RFC 3263 server location.

    with Dnsmasq(tmp_path,
                 naptr=[Naptr("example.test", 10, 10, "S", "SIP+D2T", "",
                              "_sip._tcp.example.test")],
                 srv=[Srv("_sip._tcp.example.test", "sip.example.test", kam.tcp_port)],
                 a={"sip.example.test": "127.0.0.1"}) as dns:
        resolver.nameservers = ["127.0.0.1"]; resolver.port = dns.port

It listens on 127.0.0.1 only, reads no config file, hosts file or resolv.conf, and never
forwards: names it has no record for get NXDOMAIN (the test domains are --local). Addresses
must be loopback ones, so nothing a test resolves can send traffic off the host.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .ports import HOST, free_port
from .proc import Process, require_binary, wait_until


@dataclass(frozen=True)
class Naptr:
    name: str  # e.g. "example.test"
    order: int
    preference: int
    flags: str  # "S" (next: SRV), "A", "U" or ""
    service: str  # e.g. "SIP+D2U", "SIP+D2T", "SIPS+D2T"
    regexp: str = ""
    replacement: str = ""  # e.g. "_sip._udp.example.test"

    def option(self) -> str:
        fields = [self.name, str(self.order), str(self.preference), self.flags, self.service,
                  self.regexp]
        if self.replacement:
            fields.append(self.replacement)
        return "--naptr-record=" + ",".join(fields)


@dataclass(frozen=True)
class Srv:
    name: str  # e.g. "_sip._udp.example.test"
    target: str  # host name with an A record here
    port: int
    priority: int = 0
    weight: int = 0

    def option(self) -> str:
        return f"--srv-host={self.name},{self.target},{self.port},{self.priority},{self.weight}"


def _as(kind: type, items: Iterable[object]) -> list:
    return [item if isinstance(item, kind) else kind(*item) for item in items]


class Dnsmasq:
    def __init__(
        self,
        tmpdir: Path,
        *,
        naptr: Sequence[Naptr | tuple] = (),
        srv: Sequence[Srv | tuple] = (),
        a: Mapping[str, str | Sequence[str]] | None = None,
        local_domains: Sequence[str] = ("example.test",),
        start_timeout: float = 5.0,
        max_lifetime: float = 600,
    ) -> None:
        self.binary = require_binary("dnsmasq")
        self.tmpdir = Path(tmpdir) / f"dnsmasq-{uuid.uuid4().hex[:6]}"
        self.tmpdir.mkdir(parents=True)
        self.naptr = _as(Naptr, naptr)
        self.srv = _as(Srv, srv)
        self.a = {name: [v] if isinstance(v, str) else list(v) for name, v in (a or {}).items()}
        for name, addresses in self.a.items():
            for address in addresses:
                if not ipaddress.ip_address(address).is_loopback:
                    raise ValueError(f"{name} -> {address}: "
                                     "test DNS serves loopback addresses only")
        self.local_domains = list(local_domains)
        self.start_timeout = start_timeout
        self.max_lifetime = max_lifetime
        self.port = free_port()
        self.host = HOST
        self.process: Process | None = None

    def argv(self) -> list[str]:
        args = [
            self.binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", "--no-poll",
            f"--listen-address={HOST}", f"--port={self.port}", "--bind-interfaces",
            "--pid-file=",  # none
            "--log-facility=-", "--log-queries",
            "--cache-size=0",
        ]
        args += [f"--local=/{d}/" for d in self.local_domains]
        args += [n.option() for n in self.naptr]
        args += [s.option() for s in self.srv]
        for name, addresses in self.a.items():
            args += [f"--host-record={name},{address}" for address in addresses]
        return args

    def start(self) -> Dnsmasq:
        self.process = Process(self.argv(), name="dnsmasq", log_path=self.tmpdir / "dnsmasq.log",
                               max_lifetime=self.max_lifetime).start()
        try:
            wait_until(self._answers, timeout=self.start_timeout,
                       what=f"dnsmasq to answer on {HOST}:{self.port}",
                       on_timeout=self.process.log_tail)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=3)

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""

    def resolver(self):
        """A dnspython Resolver that asks this server only."""
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [HOST]
        resolver.port = self.port
        resolver.lifetime = 2.0
        return resolver

    def _answers(self) -> bool:
        import dns.exception
        import dns.message
        import dns.query
        import dns.rcode

        assert self.process is not None
        if not self.process.alive():
            raise RuntimeError(f"dnsmasq exited\n{self.process.log_tail()}")
        zone = self.local_domains[0] if self.local_domains else "test"
        query = dns.message.make_query(f"{zone}.", "SOA")
        try:
            dns.query.udp(query, HOST, port=self.port, timeout=0.3)
        except (dns.exception.Timeout, OSError):
            return False
        return True
